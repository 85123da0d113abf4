import { LRUCache } from 'lru-cache';
import { CacheError } from '../../shared/errors.ts';
import { type InvalidationEvent, invalidationEventSchema } from '../../shared/schemas.ts';
import type { CacheService } from '../cache-service.ts';
import type { InvalidationSourceKind } from './source.ts';

/** What happened to one event. */
export type ApplyOutcome =
  /** Purged at the store and published to the purge bus. */
  | 'applied'
  /** Its `id` was applied recently (inside the dedup window); nothing done. */
  | 'duplicate';

/** An undecodable or invalid event, with a one-line reason for logs and the DLQ header. */
export type DecodeResult = { ok: true; event: InvalidationEvent } | { ok: false; reason: string };

/**
 * Decodes one raw event (JSON text or bytes) and validates it with
 * `invalidationEventSchema` (ARCHITECTURE.md §4). Never throws.
 */
export function decodeInvalidation(raw: Uint8Array | string | null | undefined): DecodeResult {
  if (raw === null || raw === undefined) return { ok: false, reason: 'empty message value' };
  const text = typeof raw === 'string' ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    return { ok: false, reason: `not JSON: ${(error as Error).message}` };
  }
  return validateInvalidation(json);
}

/** Validates an already-parsed event with `invalidationEventSchema`. Never throws. */
export function validateInvalidation(json: unknown): DecodeResult {
  const result = invalidationEventSchema.safeParse(json);
  if (result.success) return { ok: true, event: result.data };
  const reason = result.error.issues.map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`).join('; ');
  return { ok: false, reason: `invalid event: ${reason}` };
}

export interface InvalidationApplierOptions {
  readonly service: CacheService;
  /** How many event ids are remembered for idempotency (LRU). */
  readonly dedupWindow: number;
  readonly now?: () => number;
  /** Told about every outcome, for metrics; `lagMs` is now − event timestamp, for applied events. */
  readonly onOutcome?: (source: InvalidationSourceKind, outcome: ApplyOutcome | 'failed', lagMs?: number) => void;
}

/**
 * The one path every invalidation takes, whatever its source: skip an event
 * whose `id` was applied within the last `dedupWindow` ids, else purge the
 * store (keys, tag members, prefix) and publish to the purge bus through
 * {@link CacheService.purge}. The id is remembered only after that
 * succeeded, so a failed event is applied again on redelivery.
 *
 * Idempotency is best-effort over a bounded window: a redelivery after the
 * window (or after an origin restart) is applied again, which is harmless
 * because a purge is idempotent; the window only saves work and edge churn.
 */
export class InvalidationApplier {
  readonly #o: InvalidationApplierOptions;
  readonly #now: () => number;
  readonly #seen: LRUCache<string, true>;

  constructor(options: InvalidationApplierOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#seen = new LRUCache({ max: options.dedupWindow });
  }

  /** Event ids remembered now. */
  get remembered(): number {
    return this.#seen.size;
  }

  /**
   * Applies one validated event.
   * @throws CacheError CACHE_005 when the store fails, or — for a Kafka event —
   *   when Redis is down and only the origin's local tier took the purge (the
   *   edges are purged all the same); the event is not marked seen, so the
   *   consumer retries it and commits the offset only once Redis has it.
   */
  async apply(event: InvalidationEvent, source: InvalidationSourceKind): Promise<ApplyOutcome> {
    if (this.#seen.has(event.id)) {
      this.#o.onOutcome?.(source, 'duplicate');
      return 'duplicate';
    }
    try {
      const result = await this.#o.service.purge(
        event.namespace,
        { keys: event.keys, tags: event.tags, prefix: event.prefix, soft: event.soft },
        event.action,
      );
      // At-least-once means the purge must be durable before Kafka forgets the event: a purge only
      // the local tier took (Redis down) would be lost with this process, so the offset must wait.
      const store = this.#o.service.store;
      if (source === 'kafka' && store.acceptedLocally(result)) {
        throw new CacheError('CACHE_005', 'Purge reached only the local tier; retrying until Redis takes it', {
          details: { id: event.id, operation: 'invalidate' },
        });
      }
    } catch (error) {
      this.#o.onOutcome?.(source, 'failed');
      throw error;
    }
    this.#seen.set(event.id, true);
    this.#o.onOutcome?.(source, 'applied', this.#now() - event.timestamp);
    return 'applied';
  }
}
