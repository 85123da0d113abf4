/**
 * The invalidation seam (STYLE.md §1): where purge events come from. Two
 * implementations feed the same {@link InvalidationApplier}: `kafka-source.ts`
 * (a consumer group on `KAFKA_INVALIDATION_TOPIC`) and `in-process-source.ts`
 * (events handed in by the origin itself, when no Kafka is configured).
 */

/** Which implementation a source is; also the `source` label of the invalidation metrics. */
export type InvalidationSourceKind = 'kafka' | 'in-process';

/** A running (or startable) source of invalidation events. */
export interface InvalidationSource {
  readonly kind: InvalidationSourceKind;
  /**
   * Starts delivering events to the applier. Resolves once delivery has been
   * set up; for Kafka that does not wait for the broker (see {@link InvalidationSource.ready}).
   */
  start(): Promise<void>;
  /**
   * Resolves once events flow: at once for the in-process source; for Kafka
   * when the consumer has joined its group and holds its partitions.
   * @throws after `timeoutMs` (default 30 000).
   */
  ready(timeoutMs?: number): Promise<void>;
  /**
   * Stops taking events, lets the one being applied finish, records progress
   * (Kafka: commits the offsets applied and leaves the group) and releases
   * connections. Idempotent.
   */
  stop(): Promise<void>;
}
