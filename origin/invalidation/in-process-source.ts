import { CacheError } from '../../shared/errors.ts';
import type { ApplyOutcome, InvalidationApplier } from './applier.ts';
import { validateInvalidation } from './applier.ts';
import type { InvalidationSource } from './source.ts';

/** The in-process source: events are handed in by the origin itself (REST, scripts, tests). */
export interface InProcessSource extends InvalidationSource {
  readonly kind: 'in-process';
  /**
   * Validates one event with `invalidationEventSchema` and applies it through
   * the same {@link InvalidationApplier} the Kafka source uses.
   * @throws CacheError CACHE_004 for an invalid event; CACHE_005 when the
   *   store fails or the source is stopped.
   */
  publish(event: unknown): Promise<ApplyOutcome>;
}

/**
 * The invalidation source used when `KAFKA_BROKERS` is unset, so `npm start`
 * without a broker takes the same path (validation, idempotency by id, store
 * purge, purge bus) as a Kafka deployment. `POST /api/v1/invalidations`
 * (`route.ts`) and `npm run invalidate` without brokers feed it.
 */
export function inProcessSource(applier: InvalidationApplier): InProcessSource {
  let stopped = false;
  // Events being applied now: stop() waits for them, as the Kafka source waits for its batch in hand.
  const inFlight = new Set<Promise<unknown>>();
  return {
    kind: 'in-process',
    async start() {
      stopped = false;
    },
    async ready() {},
    async stop() {
      stopped = true;
      await Promise.allSettled([...inFlight]);
    },
    async publish(event) {
      if (stopped)
        throw new CacheError('CACHE_005', 'Invalidation source stopped', { details: { operation: 'invalidate' } });
      const decoded = validateInvalidation(event);
      if (!decoded.ok) {
        throw new CacheError('CACHE_004', decoded.reason, { details: { operation: 'invalidate' } });
      }
      const applying = applier.apply(decoded.event, 'in-process');
      inFlight.add(applying);
      try {
        return await applying;
      } finally {
        inFlight.delete(applying);
      }
    },
  };
}
