import { Redis, type RedisOptions } from 'ioredis';
import { graceMs } from '../../shared/lifecycle.ts';
import { nextVersion } from '../../shared/version.ts';
import { decodeEntry, entryKey, graceArgs, storedEntry, tagSetKey } from './redis-codec.ts';
import {
  asBuffer,
  defineStrataCommands,
  escapeGlob,
  grantLeaseOn,
  leaseLostReply,
  type StrataCommands,
  scanMatching,
} from './redis-commands.ts';
import { entryFields, tombstoneTtlMs } from './redis-scripts.ts';
import {
  type EntryInput,
  LeaseLostError,
  type PurgeSelector,
  type RemovalResult,
  type Store,
  type StoredEntry,
} from './store.ts';

export interface RedisStoreOptions {
  /**
   * `redis://[:password@]host:port[/db]` or `rediss://` for TLS. Absent for
   * Sentinel, whose `sentinels` and master `name` come in `redis`.
   */
  url?: string;
  /** Extra ioredis options (timeouts, TLS, Sentinel). */
  redis?: RedisOptions;
  /**
   * Told about connection errors (refused, reset). ioredis reconnects by
   * itself; without a listener it prints each one as an unhandled error.
   */
  onConnectionError?: (error: unknown) => void;
}

/**
 * The Redis standalone driver (ioredis), also used for a master found through
 * Redis Sentinel. Entries are hashes written by Lua
 * scripts (`redis-scripts.ts`) so version stamping and expiry are atomic.
 * Batch reads are one pipeline, one round trip. Tags are Redis sets of
 * entry keys, so a tag purge reads only its members.
 *
 * Errors: rejects with ioredis's errors (connection, timeout); the circuit
 * breaker above the store maps them to CACHE_005.
 */
export function redisStore(options: RedisStoreOptions): Store & { readonly client: Redis } {
  const redisOptions: RedisOptions = {
    lazyConnect: false,
    enableAutoPipelining: true,
    maxRetriesPerRequest: 1,
    ...options.redis,
  };
  const client = options.url ? new Redis(options.url, redisOptions) : new Redis(redisOptions);
  client.on('error', options.onConnectionError ?? (() => {}));
  defineStrataCommands(client);
  const commands = client as unknown as Redis & StrataCommands;

  async function write(namespace: string, key: string, input: EntryInput): Promise<StoredEntry> {
    const k = entryKey(namespace, key);
    const [version, createdAtMs] = await commands.strataSet(
      k,
      asBuffer(input.value),
      input.contentType,
      input.ttlMs,
      input.tags.join(','),
      ...graceArgs(input.grace),
      input.leaseId ?? '',
    );
    if (Number(version) === leaseLostReply) throw new LeaseLostError(k);
    if (input.tags.length > 0) await indexTags(namespace, k, input.tags, input.ttlMs + graceMs(input.grace ?? {}));
    return storedEntry(input, [version, createdAtMs]);
  }

  async function indexTags(namespace: string, k: string, tags: readonly string[], ttlMs: number): Promise<void> {
    const pipeline = client.pipeline();
    for (const tag of tags) {
      const set = tagSetKey(namespace, tag);
      pipeline.sadd(set, k);
      // A tag set lives as long as its longest-lived member (GT: never shorten).
      pipeline.pexpire(set, ttlMs, 'GT');
      pipeline.pexpire(set, ttlMs, 'NX');
    }
    await pipeline.exec();
  }

  async function removeKeys(keys: Iterable<string>, soft = false): Promise<RemovalResult> {
    let removed = 0;
    let version = nextVersion(0, Date.now());
    const pending = [...keys].map((k) =>
      soft ? commands.strataSoftPurge(k, tombstoneTtlMs) : commands.strataDelete(k, tombstoneTtlMs),
    );
    for (const [n, v] of await Promise.all(pending)) {
      removed += Number(n);
      version = Math.max(version, Number(v));
    }
    return { removed, version };
  }

  async function scanPrefix(namespace: string, prefix: string): Promise<string[]> {
    return await scanMatching(client, `${escapeGlob(entryKey(namespace, prefix))}*`);
  }

  return {
    kind: 'redis',
    client,
    async get(namespace, key) {
      const fields = await client.hmgetBuffer(entryKey(namespace, key), ...entryFields);
      return decodeEntry(fields, Date.now());
    },
    async getMany(namespace, keys) {
      const pipeline = client.pipeline();
      for (const key of keys) pipeline.hmgetBuffer(entryKey(namespace, key), ...entryFields);
      const replies = (await pipeline.exec()) ?? [];
      const now = Date.now();
      const found = new Map<string, StoredEntry>();
      replies.forEach(([error, fields], i) => {
        if (error) throw error;
        const entry = decodeEntry(fields as (Buffer | null)[], now);
        if (entry) found.set(keys[i]!, entry);
      });
      return found;
    },
    set: write,
    async setMany(namespace, entries) {
      const results = await Promise.all(
        [...entries].map(async ([key, input]) => [key, await write(namespace, key, input)] as const),
      );
      return new Map(results);
    },
    async delete(namespace, key) {
      return removeKeys([entryKey(namespace, key)]);
    },
    async purge(namespace, selector: PurgeSelector) {
      const targets = new Set(selector.keys.map((k) => entryKey(namespace, k)));
      for (const tag of selector.tags) {
        for (const member of await client.smembers(tagSetKey(namespace, tag))) targets.add(member);
      }
      // SCAN walks the keyspace; acceptable for operator-driven prefix purges.
      if (selector.prefix !== null) for (const k of await scanPrefix(namespace, selector.prefix)) targets.add(k);
      const result = await removeKeys(targets, selector.soft);
      // Soft-purged entries stay tag members, so a later purge of the tag still finds them.
      if (selector.tags.length > 0 && !selector.soft) {
        await client.del(...selector.tags.map((t) => tagSetKey(namespace, t)));
      }
      return result;
    },
    async grantLease(namespace, key, id, leaseMs, seenVersion) {
      return await grantLeaseOn(commands, entryKey(namespace, key), id, leaseMs, seenVersion);
    },
    async ping() {
      await client.ping();
    },
    async close() {
      client.disconnect();
    },
  };
}
