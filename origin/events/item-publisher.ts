import type { Cluster, Redis } from 'ioredis';
import type { Producer } from 'kafkajs';
import type { Logger } from 'pino';
import { lazySender } from '../kafka/lazy-sender.ts';
import type { PurgeBus } from '../purge/bus.ts';
import { type LogGroupBatch, PurgeLogGroupReader } from '../purge/log-group-reader.ts';
import { type ItemEventSource, itemEventsOf, itemLossEvent, type KafkaRecord } from './item-events.ts';

/** Consumer group of the item event publisher on the region's purge log stream. */
export const itemEventsGroup = 'strata-item-events';

/** What the publisher reports, for logs and metrics (all optional). */
export interface ItemPublisherEvents {
  /** This replica became (true) or stopped being (false) the region's publisher (purge log only). */
  onLeadership?(leader: boolean): void;
  /** Kafka acknowledged `count` events. */
  onPublished?(count: number): void;
  /** Entries were lost before they were published; a `reset` event said so. */
  onLoss?(reason: string): void;
  /** A send failed: retried after `retryInMs` (purge log), or dropped (`retryInMs` null, in-process bus). */
  onError?(error: unknown, retryInMs: number | null): void;
}

export interface ItemPublisherOptions extends ItemEventSource {
  /** A connected-on-demand producer; idempotent (`idempotent: true`, at most 1 request in flight) keeps order. */
  readonly producer: Producer;
  /** `KAFKA_ITEM_UPDATED_TOPIC`. */
  readonly topic: string;
  readonly logger: Logger;
  readonly events?: ItemPublisherEvents;
}

/** Publishes `cache.item.updated` until closed. */
export interface ItemPublisher {
  /** `log`: from the region's purge log, at least once; `in-process`: from this process's bus, best effort. */
  readonly kind: 'log' | 'in-process';
  start(): void;
  /** Whether this replica publishes now (always true in process; the lease holder on the purge log). */
  leader(): boolean;
  /** Stops publishing, releases the lease, disconnects the producer. Idempotent. */
  close(): Promise<void>;
}

/**
 * `cache.item.updated` from the region's purge log, where every acknowledged
 * change is appended before it is acknowledged (docs/message-hub.md): read
 * by a {@link PurgeLogGroupReader} in group {@link itemEventsGroup} (one
 * lease-holding replica, `XAUTOCLAIM` on takeover) and acknowledged in the
 * log only after Kafka acknowledged the events, so a crash loses none and
 * re-sends at most the unacknowledged tail (same event ids). Per-key order
 * holds: the log is read in order, sent in order by an idempotent producer
 * with one request in flight, keyed `namespace:key`.
 */
export function logItemPublisher(
  options: ItemPublisherOptions & {
    readonly client: Redis | Cluster;
    readonly logKey?: string | undefined;
    readonly replicaId: string;
    readonly leaseMs: number;
  },
): ItemPublisher {
  const sender = lazySender(options.producer, options.topic);
  const deliver = async ({ entries, loss, firstId }: LogGroupBatch) => {
    const records: KafkaRecord[] = [];
    if (loss) {
      options.logger.warn({ reason: loss }, 'item events: purge log entries lost; publishing a reset');
      records.push(itemLossEvent(`${options.region}:reset:${firstId}`, Date.now(), options));
    }
    for (const d of entries) {
      if (!d.intent) records.push(...itemEventsOf(d.entry, `${options.region}:${d.inc}:${d.id}`, options));
    }
    if (records.length === 0) return;
    await sender.send(records);
    if (loss) options.events?.onLoss?.(loss);
    options.events?.onPublished?.(records.length);
  };
  const reader = new PurgeLogGroupReader({
    client: options.client,
    logKey: options.logKey,
    group: itemEventsGroup,
    name: 'item-events',
    replicaId: options.replicaId,
    leaseMs: options.leaseMs,
    deliver,
    logger: options.logger,
    label: 'item event publisher',
    verb: 'published',
    events: {
      onLeadership: options.events?.onLeadership,
      onError: (error, retryInMs) => options.events?.onError?.(error, retryInMs),
    },
  });
  return {
    kind: 'log',
    start: () => reader.start(),
    leader: () => reader.status().leader,
    async close() {
      await reader.close();
      await sender.close();
    },
  };
}

/**
 * `cache.item.updated` from this process's in-process purge bus (the memory
 * store: one replica, no shared log). Best effort: events are sent in
 * order, after the change was acknowledged, and a send that fails, or a
 * crash before it, loses them (logged and counted, never retried past
 * kafkajs's own retries).
 */
export function inProcessItemPublisher(options: ItemPublisherOptions & { readonly bus: PurgeBus }): ItemPublisher {
  const sender = lazySender(options.producer, options.topic);
  let chain: Promise<void> = Promise.resolve();
  let stop: (() => void) | null = null;
  return {
    kind: 'in-process',
    start() {
      stop ??= options.bus.observe((message) => {
        const records = itemEventsOf(message, `${options.region}:${message.position}`, options);
        if (records.length === 0) return;
        // One send at a time keeps the bus's order.
        chain = chain
          .then(() => sender.send(records).then(() => options.events?.onPublished?.(records.length)))
          .catch((error: unknown) => options.events?.onError?.(error, null));
      });
    },
    leader: () => true,
    async close() {
      stop?.();
      stop = null;
      await chain;
      await sender.close();
    },
  };
}
