import { LRUCache } from 'lru-cache';
import { CacheError } from '../../shared/errors.ts';
import {
  type InvalidationEvent,
  invalidationEventSchema,
  type RegionResetEvent,
  regionResetEventSchema,
} from '../../shared/schemas.ts';
import type { CacheService } from '../cache-service.ts';
import type { InvalidationSourceKind } from './source.ts';

/** What happened to one event. */
export type ApplyOutcome =
  /** Purged at the store and published to the purge bus. */
  | 'applied'
  /** Its `id` was applied recently (inside the dedup window), or by an apply in flight that then succeeded; nothing done. */
  | 'duplicate'
  /** Forwarded from this origin's own region (`origin_region`): already applied here; nothing done. */
  | 'own_region';

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

/**
 * Decodes a region-wide reset (`regionResetEventSchema`), for a message that
 * is not an invalidation event; null when it is not one either. Never throws.
 */
export function decodeRegionReset(raw: Uint8Array | string | null | undefined): RegionResetEvent | null {
  if (raw === null || raw === undefined) return null;
  const text = typeof raw === 'string' ? raw : Buffer.from(raw.buffer, raw.byteOffset, raw.byteLength).toString('utf8');
  try {
    const parsed = regionResetEventSchema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
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
  /**
   * Told about every outcome, for metrics. For applied events: `lagMs` is
   * now − the event's timestamp (the producer's clock), `applyMs` the time
   * the apply itself took (store purge and purge log append, this process's
   * clock), so `lagMs − applyMs` is what delivery took (produce, broker,
   * fetch).
   */
  readonly onOutcome?: (
    source: InvalidationSourceKind,
    outcome: ApplyOutcome | 'failed',
    lagMs?: number,
    applyMs?: number,
  ) => void;
  /** This origin's region (`STRATA_REGION`): events forwarded from it are skipped. */
  readonly region?: string;
  /**
   * Empties `namespaces` (every namespace when null) in this region's store
   * and edges, for a region-wide reset from `sourceRegion`.
   * @throws when the store or purge log fails (the reset is then retried).
   */
  readonly resetNamespaces?: (namespaces: readonly string[] | null, sourceRegion: string) => Promise<void>;
  /** Told about every event applied from another region: its source and ms since that region acknowledged it. */
  readonly onRegionApplied?: (sourceRegion: string, lagMs: number) => void;
}

/**
 * The one path every invalidation takes, whatever its source: skip an event
 * whose `id` was applied within the last `dedupWindow` ids, else purge the
 * store (keys, tag members, prefix) and publish to the purge bus through
 * {@link CacheService.purge}. The id is remembered only after that
 * succeeded, so a failed event is applied again on redelivery.
 *
 * An id also counts while its apply is in flight: a second apply of it (the
 * Kafka consumer and its fetch sampler reading the same event) waits for the
 * first to end, then answers `duplicate` if it succeeded, or applies the
 * event itself if it failed. So one event is never applied twice at once,
 * and a key's later event never starts before its earlier one ended.
 *
 * A Kafka event's purge logs no intent before its store purge
 * (`redelivered`): its offset is committed only after the apply, so a crash
 * in between is repaired by Kafka delivering it again, to this replica after
 * a restart or to the group's next owner of the partition.
 *
 * Idempotency is best-effort over a bounded window: a redelivery after the
 * window (or after an origin restart) is applied again, which is harmless
 * because a purge is idempotent; the window only saves work and edge churn.
 */
export class InvalidationApplier {
  readonly #o: InvalidationApplierOptions;
  readonly #now: () => number;
  readonly #seen: LRUCache<string, true>;
  /** Applies in flight, by event id: a second apply of an id waits for the first. */
  readonly #inFlight = new Map<string, Promise<unknown>>();

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
    if (event.origin_region !== undefined && event.origin_region === this.#o.region) {
      this.#o.onOutcome?.(source, 'own_region');
      return 'own_region';
    }
    return await this.#once(event.id, source, () => this.#purge(event, source));
  }

  /**
   * Runs `work` for event `id` unless the id was applied within the window
   * or is being applied: then waits for that apply to end and answers
   * `duplicate` when it succeeded (runs `work` when it failed). Marks the id
   * seen when `work` succeeded.
   */
  async #once(id: string, source: InvalidationSourceKind, work: () => Promise<void>): Promise<ApplyOutcome> {
    for (;;) {
      if (this.#seen.has(id)) {
        this.#o.onOutcome?.(source, 'duplicate');
        return 'duplicate';
      }
      const running = this.#inFlight.get(id);
      if (!running) break;
      await running.catch(() => {});
    }
    const running = work().then(() => {
      this.#seen.set(id, true);
    });
    this.#inFlight.set(id, running);
    try {
      await running;
    } finally {
      this.#inFlight.delete(id);
    }
    return 'applied';
  }

  /** Purges one event's keys, tags or prefix and reports the outcome; throws (reported `failed`) when it did not take. */
  async #purge(event: InvalidationEvent, source: InvalidationSourceKind): Promise<void> {
    const fromRegion = event.origin_region;
    const startedAt = performance.now();
    try {
      // Another region's purge keeps that region's acknowledgement time (edges' purge lag then spans regions)
      // and its name (so this region's forwarder does not send it back).
      const result = await this.#o.service.purge(
        event.namespace,
        { keys: event.keys, tags: event.tags, prefix: event.prefix, soft: event.soft },
        {
          action: event.action,
          ...(fromRegion === undefined ? {} : { acknowledgedAtMs: event.timestamp, originRegion: fromRegion }),
          // Kafka delivers the event again unless its apply ended (the offset is committed after it).
          redelivered: source === 'kafka',
        },
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
    this.#o.onOutcome?.(source, 'applied', this.#now() - event.timestamp, performance.now() - startedAt);
    if (fromRegion !== undefined) this.#o.onRegionApplied?.(fromRegion, Math.max(0, this.#now() - event.timestamp));
  }

  /**
   * Applies a region-wide reset from another region: empties the namespaces
   * it names (all when null) here, through `resetNamespaces`. Skips this
   * region's own resets and ids applied within the dedup window.
   * @throws when `resetNamespaces` fails or is not configured; the event is not marked seen.
   */
  async applyReset(event: RegionResetEvent, source: InvalidationSourceKind): Promise<ApplyOutcome> {
    if (event.origin_region === this.#o.region) {
      this.#o.onOutcome?.(source, 'own_region');
      return 'own_region';
    }
    return await this.#once(event.id, source, async () => {
      const startedAt = performance.now();
      try {
        if (!this.#o.resetNamespaces) throw new Error('region resets are not wired to a store');
        await this.#o.resetNamespaces(event.namespaces, event.origin_region);
      } catch (error) {
        this.#o.onOutcome?.(source, 'failed');
        throw error;
      }
      this.#o.onOutcome?.(source, 'applied', this.#now() - event.timestamp, performance.now() - startedAt);
    });
  }
}
