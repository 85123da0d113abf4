import type { Cluster, Redis } from 'ioredis';
import type { HubResponseData } from '../../shared/hub.ts';

/**
 * What the hub remembers of a change it applied, by `correlation_id`: a
 * fingerprint of the request (its content and credential, not its
 * timestamp) and the response it produced. A redelivered request with the
 * same fingerprint is answered with the recorded response instead of being
 * applied again.
 */
export interface DedupRecord {
  readonly fingerprint: string;
  readonly response: HubResponseData;
}

/**
 * The hub's response records: in process for the embedded store, beside the
 * entries on Redis. They answer a redelivered request with exactly the first
 * response; what keeps its change from being applied twice is the per-key
 * record the store writes with the change (`OnceRecord`).
 */
export interface HubDedup {
  /** The record of `correlationId`, or null when none is kept. */
  get(correlationId: string): Promise<DedupRecord | null>;
  /**
   * Keeps `record` for `ttlMs` milliseconds unless one is already kept (the first one wins).
   * @throws the store's error when it cannot be written (the hub then aborts its transaction and retries).
   */
  put(correlationId: string, record: DedupRecord, ttlMs: number): Promise<void>;
}

/** Records kept by the in-process dedup at most; the oldest go first past it. */
const memoryLimit = 100_000;

/** Records in this process (the embedded memory store's origin: a crash loses both the entries and the records). */
export function memoryDedup(now: () => number = Date.now): HubDedup {
  const records = new Map<string, { record: DedupRecord; untilMs: number }>();
  return {
    async get(id) {
      const found = records.get(id);
      if (!found) return null;
      if (found.untilMs <= now()) {
        records.delete(id);
        return null;
      }
      return found.record;
    },
    async put(id, record, ttlMs) {
      const found = records.get(id);
      if (found && found.untilMs > now()) return;
      records.delete(id);
      records.set(id, { record, untilMs: now() + ttlMs });
      // Map keeps insertion order: the first keys are the oldest.
      while (records.size > memoryLimit) records.delete(records.keys().next().value!);
    },
  };
}

/** Key of a record on Redis (one key each, so any Cluster slot serves it). */
export const redisDedupKey = (prefix: string, correlationId: string) => `${prefix}${correlationId}`;

/**
 * Records on the store's Redis (standalone, Sentinel or Cluster): `SET key
 * value PX ttl NX`, so the first record wins and Redis expires it.
 */
export function redisDedup(client: Redis | Cluster, prefix = 'strata:hub:done:'): HubDedup {
  return {
    async get(id) {
      const text = await client.get(redisDedupKey(prefix, id));
      return text === null ? null : (JSON.parse(text) as DedupRecord);
    },
    async put(id, record, ttlMs) {
      await client.set(redisDedupKey(prefix, id), JSON.stringify(record), 'PX', Math.max(1, Math.ceil(ttlMs)), 'NX');
    },
  };
}
