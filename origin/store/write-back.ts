import type { Cluster, Redis } from 'ioredis';
import { asBuffer, type StrataCommands } from './redis.ts';
import { entryKey, tagSetKey } from './redis-codec.ts';
import { tombstoneTtlMs } from './redis-scripts.ts';
import type { StoredEntry } from './store.ts';

/**
 * Conditional writes used to replay the local tier's dirty entries after an
 * outage. Both compare versions inside one Lua script on the key's master
 * (`redis-scripts.ts`), so nothing newer in Redis is ever overwritten or
 * deleted, whichever origin wrote it.
 */
export interface WriteBack {
  /**
   * Writes `entry` with its own version, expiry and creation time, only when
   * Redis holds no entry or an older version, and the entry has not expired.
   * @returns true when written, false when Redis held a newer or equal version.
   */
  setIfNewer(namespace: string, key: string, entry: StoredEntry): Promise<boolean>;
  /**
   * Deletes the key only when Redis holds a version below `version` (a
   * tombstone of a delete accepted during the outage).
   * @returns true when Redis held an older entry that is now gone.
   */
  deleteIfOlder(namespace: string, key: string, version: number): Promise<boolean>;
}

/**
 * {@link WriteBack} on an ioredis standalone or Cluster client that has the
 * Strata scripts defined (`defineStrataCommands`).
 *
 * Errors: rejects with the client's errors; callers keep the entry dirty.
 */
export function redisWriteBack(client: (Redis | Cluster) & StrataCommands): WriteBack {
  return {
    async setIfNewer(namespace, key, entry) {
      const k = entryKey(namespace, key);
      const written = await client.strataSetIfNewer(
        k,
        asBuffer(entry.value),
        entry.contentType,
        entry.expiresAtMs,
        entry.tags.join(','),
        entry.version,
        entry.createdAtMs,
      );
      if (Number(written) === 1 && entry.tags.length > 0) {
        const ttlMs = Math.max(1, entry.expiresAtMs - Date.now());
        await Promise.all(
          entry.tags.map(async (tag) => {
            const set = tagSetKey(namespace, tag);
            await client.sadd(set, k);
            await client.pexpire(set, ttlMs, 'GT');
            await client.pexpire(set, ttlMs, 'NX');
          }),
        );
      }
      return Number(written) === 1;
    },
    async deleteIfOlder(namespace, key, version) {
      const [removed] = await client.strataDeleteIfOlder(entryKey(namespace, key), version, tombstoneTtlMs);
      return Number(removed) === 1;
    },
  };
}
