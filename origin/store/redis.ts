import { Redis, type RedisOptions } from 'ioredis';
import { graceMs } from '../../shared/lifecycle.ts';
import { nextVersion } from '../../shared/version.ts';
import { type Glob, parseGlob } from '../listing/glob.ts';
import { decodeEntry, entryKey, graceArgs, onceKey, storedEntry, tagSetKey } from './redis-codec.ts';
import {
  asBuffer,
  defineIndexedStrataCommands,
  defineStrataCommands,
  grantLeaseOn,
  type IndexedStrataCommands,
  leaseLostReply,
  type StrataCommands,
  swapEntries,
} from './redis-commands.ts';
import { indexKeysOf, lexRange, standaloneIndexKeys } from './redis-key-index.ts';
import { badCursor, listedKeys, listFields, scanCursor, scanPattern } from './redis-listing.ts';
import { entryFields, onceConflictReply, tombstoneTtlMs } from './redis-scripts.ts';
import {
  type EntryInput,
  type KeyListRequest,
  type KeyPage,
  LeaseLostError,
  type ListedKey,
  OnceConflictError,
  type OnceRecord,
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
  // The plain commands serve the write-back's type; this driver's own writes keep the key index.
  defineStrataCommands(client);
  defineIndexedStrataCommands(client);
  const commands = client as unknown as Redis & StrataCommands & IndexedStrataCommands;

  async function write(namespace: string, key: string, input: EntryInput): Promise<StoredEntry> {
    const k = entryKey(namespace, key);
    const args = [
      asBuffer(input.value),
      input.contentType,
      input.ttlMs,
      input.tags.join(','),
      ...graceArgs(input.grace),
      input.leaseId ?? '',
    ] as const;
    const { once } = input;
    const [version, createdAtMs] = once
      ? await commands.strataSetOnce(
          k,
          ...standaloneIndexKeys(namespace),
          onceKey(k, once.id),
          ...args,
          once.fingerprint,
          once.ttlMs,
        )
      : await commands.strataSetIndexed(k, ...standaloneIndexKeys(namespace), ...args);
    if (Number(version) === leaseLostReply) throw new LeaseLostError(k);
    if (Number(version) === onceConflictReply) throw new OnceConflictError(k);
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
      soft
        ? commands.strataSoftPurgeIndexed(k, ...indexKeysOf(k), tombstoneTtlMs)
        : commands.strataDeleteIndexed(k, ...indexKeysOf(k), tombstoneTtlMs),
    );
    for (const [n, v] of await Promise.all(pending)) {
      removed += Number(n);
      version = Math.max(version, Number(v));
    }
    return { removed, version };
  }

  /** The entry keys with a prefix, from the namespace's key index (one ZRANGEBYLEX, no keyspace walk). */
  async function indexedPrefix(namespace: string, prefix: string): Promise<string[]> {
    const [min, max] = lexRange(entryKey(namespace, prefix));
    return await client.zrangebylex(standaloneIndexKeys(namespace)[0], min, max);
  }

  /** The listed keys among entry keys: one pipeline of HMGET and HSTRLEN. */
  async function describe(namespace: string, found: readonly string[]): Promise<ListedKey[]> {
    const pipeline = client.pipeline();
    for (const k of found) pipeline.hmgetBuffer(k, ...listFields).hstrlen(k, 'd');
    const replies = (await pipeline.exec()) ?? [];
    const per = found.map((_, i) => {
      const [[e1, fields], [e2, size]] = [replies[2 * i]!, replies[2 * i + 1]!];
      if (e1 || e2) throw e1 ?? e2;
      return [fields as (Buffer | null)[], Number(size)] as const;
    });
    return listedKeys(namespace, found, per, Date.now());
  }

  /**
   * A listing whose glob starts with literal text reads the namespace's key
   * index from that prefix with ZRANGEBYLEX: in key order, each key once,
   * `count` index members per call. The cursor is `>` and the last key read.
   */
  async function listFromIndex(namespace: string, glob: Glob, request: KeyListRequest): Promise<KeyPage> {
    if (request.cursor !== null && !request.cursor.startsWith('>')) throw badCursor(request.cursor);
    const [min, max] = lexRange(entryKey(namespace, glob.literalPrefix));
    const from = request.cursor === null ? min : Buffer.from(`(${entryKey(namespace, request.cursor.slice(1))}`);
    const members = await client.zrangebylex(standaloneIndexKeys(namespace)[0], from, max, 'LIMIT', 0, request.count);
    const prefixLength = entryKey(namespace, '').length;
    const matching = members.filter((m) => glob.matches(m.slice(prefixLength)));
    const last = members.at(-1);
    return {
      keys: await describe(namespace, matching),
      cursor: members.length < request.count || last === undefined ? null : `>${last.slice(prefixLength)}`,
    };
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
    async delete(namespace, key, once?: OnceRecord) {
      const k = entryKey(namespace, key);
      if (!once) return removeKeys([k]);
      const [n, v] = await commands.strataDeleteOnce(
        k,
        ...indexKeysOf(k),
        onceKey(k, once.id),
        tombstoneTtlMs,
        once.fingerprint,
        once.ttlMs,
      );
      if (Number(n) === onceConflictReply) throw new OnceConflictError(k);
      return { removed: Number(n), version: Number(v) };
    },
    async purge(namespace, selector: PurgeSelector) {
      const targets = new Set(selector.keys.map((k) => entryKey(namespace, k)));
      for (const tag of selector.tags) {
        for (const member of await client.smembers(tagSetKey(namespace, tag))) targets.add(member);
      }
      if (selector.prefix !== null) for (const k of await indexedPrefix(namespace, selector.prefix)) targets.add(k);
      const result = await removeKeys(targets, selector.soft);
      // Soft-purged entries stay tag members, so a later purge of the tag still finds them.
      if (selector.tags.length > 0 && !selector.soft) {
        await client.del(...selector.tags.map((t) => tagSetKey(namespace, t)));
      }
      return result;
    },
    async listKeys(namespace, request) {
      const match = scanPattern(namespace, request.match);
      const glob = parseGlob(request.match);
      if (glob.literalPrefix !== '') return await listFromIndex(namespace, glob, request);
      const [next, found] = await client.scan(scanCursor(request.cursor), 'MATCH', match, 'COUNT', request.count);
      return { keys: await describe(namespace, found), cursor: next === '0' ? null : next };
    },
    // Conditional writes keep the key index too (prefix purge and listing read it).
    swap: (namespace, changes) =>
      swapEntries(commands, namespace, changes, { keys: standaloneIndexKeys(namespace), client: commands }),
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
