import type { ItemOperation, ItemUpdatedEvent } from '../../shared/hub-events.ts';
import type { PurgeLogEntry } from '../../shared/schemas.ts';

/** One Kafka message: key and JSON value. */
export interface KafkaRecord {
  readonly key: string;
  readonly value: string;
}

/** Who publishes: this origin's region and replica name. */
export interface ItemEventSource {
  /** `STRATA_REGION`; a change carrying another region's `origin_region` is that region's to publish. */
  readonly region: string;
  /** `ORIGIN_ID` (or host and process), the event's `service_id`. */
  readonly serviceId: string;
}

/**
 * The `cache.item.updated` messages of one acknowledged change, in the order
 * a consumer must see them (shared/hub-events.ts): one per key, keyed
 * `namespace:key`, then one of key null for a purge by tags or prefix or a
 * flush, keyed `namespace`. None for a change another region acknowledged
 * (it publishes its own), for an intent's empty closing entry, or for a
 * namespace-less entry. Pure.
 * @param id unique and stable per change (the purge log's stream id, or the in-process log's position);
 *   each message's `id` is `<id>` or `<id>:<n>` for the n-th key.
 */
export function itemEventsOf(entry: PurgeLogEntry, id: string, source: ItemEventSource): KafkaRecord[] {
  if (entry.origin_region !== undefined && entry.origin_region !== source.region) return [];
  const base = {
    namespace: entry.namespace,
    version: entry.version,
    timestamp: new Date(entry.ts).toISOString(),
    timestamp_ms: entry.ts,
    service_id: source.serviceId,
    origin_region: source.region,
  };
  if (entry.action === 'flush') {
    return [record(entry.namespace, id, { ...base, key: null, operation: 'flush', tags: [], prefix: null })];
  }
  const purge = entry.purge === true || entry.tags.length > 0 || entry.prefix !== null;
  const operation: ItemOperation = entry.action === 'update' ? 'set' : purge ? 'purge' : 'delete';
  const records = entry.keys.map((key, n) =>
    record(`${entry.namespace}:${key}`, entry.keys.length === 1 ? id : `${id}:${n}`, {
      ...base,
      key,
      operation,
      tags: [],
      prefix: null,
    }),
  );
  if (entry.tags.length > 0 || entry.prefix !== null) {
    records.push(
      record(entry.namespace, `${id}:selector`, {
        ...base,
        key: null,
        operation: 'purge',
        tags: entry.tags,
        prefix: entry.prefix,
      }),
    );
  }
  return records;
}

/**
 * The message that reports a loss (entries of the purge log trimmed or
 * unreadable before they were published): `operation: "reset"` for every
 * namespace, key null, keyed `reset:<region>`. Pure.
 */
export function itemLossEvent(id: string, atMs: number, source: ItemEventSource): KafkaRecord {
  return record(`reset:${source.region}`, id, {
    namespace: null,
    key: null,
    operation: 'reset',
    version: 0,
    tags: [],
    prefix: null,
    timestamp: new Date(atMs).toISOString(),
    timestamp_ms: atMs,
    service_id: source.serviceId,
    origin_region: source.region,
  });
}

function record(key: string, id: string, data: ItemUpdatedEvent['data']): KafkaRecord {
  const event: ItemUpdatedEvent = { event: 'cache.item.updated', id, data };
  return { key, value: JSON.stringify(event) };
}
