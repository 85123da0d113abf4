import calculateSlot from 'cluster-key-slot';
import { Cluster, type ClusterNode, type ClusterOptions } from 'ioredis';
import { graceMs } from '../../shared/lifecycle.ts';
import { nextVersion } from '../../shared/version.ts';
import { type Glob, parseGlob } from '../listing/glob.ts';
import {
  decodeSlotIndexCursor,
  encodeSlotIndexCursor,
  type SlotIndexCursor,
  type SlotRegistration,
  slotIndexKeys,
  slotIndexKeysOf,
  slotRegistrar,
  slotRegistryKey,
  slotsPerListingCall,
  slotTagOf,
} from './redis-cluster-key-index.ts';
import { decodeEntry, entryKey, graceArgs, onceKey, storedEntry, tagSetKey } from './redis-codec.ts';
import {
  asBuffer,
  defineIndexedStrataCommands,
  defineStrataCommands,
  grantLeaseOn,
  type IndexedStrataCommands,
  leaseLostReply,
  type SetScriptArgs,
  type StrataCommands,
  swapEntries,
} from './redis-commands.ts';
import { lexRange, withKeyIndex } from './redis-key-index.ts';
import {
  clusterTopology,
  decodeClusterCursor,
  encodeClusterCursor,
  listedKeys,
  listFields,
  scanPattern,
} from './redis-listing.ts';
import {
  deleteScript,
  entryFields,
  onceConflictReply,
  setScript,
  softPurgeScript,
  tombstoneTtlMs,
  withOnce,
} from './redis-scripts.ts';
import {
  type EntryInput,
  type KeyListRequest,
  type KeyPage,
  LeaseLostError,
  type ListedKey,
  OnceConflictError,
  type OnceRecord,
  type RemovalResult,
  type Store,
  type StoredEntry,
} from './store.ts';

/**
 * How the driver rides out a failover, in milliseconds.
 *
 * A master that dies is suspected (PFAIL) by each node after
 * `cluster-node-timeout` (2000 ms in our harness), and flagged FAIL once a
 * majority of masters' PFAIL reports have reached one node by gossip — up to
 * about another node-timeout/2. Its replica then waits
 * `500 + random(0..500) + rank × 1000` ms before asking for votes (Redis
 * Cluster specification, "Failure detection" and "Replica election and
 * promotion"); with one replica per master, rank is 0. Worst case before the
 * new master serves: `2000 + 1000 + 1000 + voting ≈ 4000 ms`. Measured in
 * `test/integration/redis-cluster-failover.test.ts`: 3.7–4.7 s from SIGKILL
 * until the test's 100 ms poll saw the promotion.
 *
 * ioredis retries a command that hit a closed connection after
 * `retryDelayOnFailover` and refreshes the slot map; every retry and every
 * MOVED/ASK/TRYAGAIN costs one of `maxRedirections`. So a command survives
 * `maxRedirections × retryDelayOnFailover = 30 × 200 ms = 6000 ms` of
 * failover: the 4000 ms worst case plus a 2000 ms margin.
 * `retryDelayOnMoved` (50 ms) lets the slot-map refresh land before a MOVED
 * retry instead of bouncing between stale owners.
 *
 * The per-call timeout of the breaker (`REDIS_CALL_TIMEOUT_MS`) is shorter
 * than that on purpose: a caller gets an answer from the local tier within
 * the timeout, while the ioredis retry keeps going in the background and the
 * local tier's write-back settles the key afterwards (see `resilient.ts`).
 */
export const failoverRetry = {
  retryDelayOnFailoverMs: 200,
  maxRedirections: 30,
  retryDelayOnMovedMs: 50,
  retryDelayOnClusterDownMs: 200,
  retryDelayOnTryAgainMs: 100,
} as const;

/**
 * Lua prologue that refuses a write arriving after its deadline (ARGV[n],
 * Unix ms, compared with the master's `TIME`). Returns `{-1, 0}` instead of
 * running the script.
 *
 * Why: ioredis keeps retrying a command through a failover (see
 * {@link failoverRetry}) after the breaker's per-call timeout has already
 * answered the caller and the local tier accepted the write as dirty. Without
 * a deadline that retry could land seconds later, stamped with a newer
 * version than a write the same caller made after it, and win.
 */
function withDeadline(script: string, deadlineArg: number): string {
  return `
local g = redis.call('TIME')
if tonumber(g[1]) * 1000 + math.floor(tonumber(g[2]) / 1000) > tonumber(ARGV[${deadlineArg}]) then return {-1, 0} end
${script}`;
}

/** `setScript` keeping the slot's key index (KEYS[2], KEYS[3]), with a deadline in ARGV[8]. */
export const setBeforeScript = withDeadline(withKeyIndex(setScript), 8);
/** `deleteScript` keeping the slot's key index, with a deadline in ARGV[2]. */
export const deleteBeforeScript = withDeadline(withKeyIndex(deleteScript), 2);
/** `setBeforeScript` once per request id: the record key in KEYS[4] (the entry's slot), fingerprint ARGV[9], record TTL ms ARGV[10]. */
export const setOnceBeforeScript = withDeadline(withOnce(withKeyIndex(setScript), 4, 9), 8);
/** `deleteBeforeScript` once per request id: the record key in KEYS[4], fingerprint ARGV[3], record TTL ms ARGV[4]. */
export const deleteOnceBeforeScript = withDeadline(withOnce(withKeyIndex(deleteScript), 4, 3), 2);
/** `softPurgeScript` keeping the slot's key index, with a deadline in ARGV[2]. */
export const softPurgeBeforeScript = withDeadline(withKeyIndex(softPurgeScript), 2);

/** Thrown when a write reached Redis after its deadline and was not applied. */
export class LateWriteError extends Error {
  constructor(key: string) {
    super(`write to ${key} reached Redis after its deadline; not applied`);
    this.name = 'LateWriteError';
  }
}

interface DeadlineCommands {
  strataSetBefore(
    key: string,
    byKey: string,
    byExpiry: string,
    ...args: [...SetScriptArgs, deadlineMs: number]
  ): Promise<[number, number]>;
  strataDeleteBefore: RemoveBefore;
  strataSoftPurgeBefore: RemoveBefore;
  strataSetOnceBefore(
    key: string,
    byKey: string,
    byExpiry: string,
    onceKey: string,
    ...args: [...SetScriptArgs, deadlineMs: number, fingerprint: string, onceTtlMs: number]
  ): Promise<[number, number]>;
  strataDeleteOnceBefore(
    key: string,
    byKey: string,
    byExpiry: string,
    onceKey: string,
    tombstoneTtlMs: number,
    deadlineMs: number,
    fingerprint: string,
    onceTtlMs: number,
  ): Promise<[number, number]>;
}

/** A delete or soft purge: entry key, its slot's index pair, tombstone TTL ms, deadline Unix ms. */
type RemoveBefore = (
  key: string,
  byKey: string,
  byExpiry: string,
  tombstoneTtlMs: number,
  deadlineMs: number,
) => Promise<[number, number]>;

/** Options of {@link redisClusterStore}. */
export interface RedisClusterStoreOptions {
  /** Seed nodes, `host:port`; any subset of the cluster is enough. */
  nodes: readonly string[];
  /** `AUTH` password for every node (`REDIS_PASSWORD`). */
  password?: string | undefined;
  /** Connect with TLS (`REDIS_TLS`); the Node defaults verify the certificate. */
  tls?: boolean;
  /** CA certificate(s), PEM, that verify the nodes' certificates (`REDIS_TLS_CA_FILE`); default: the system trust store. */
  tlsCa?: string | Buffer;
  /** Milliseconds to open a TCP connection to one node. Default 1000. */
  connectTimeoutMs?: number;
  /**
   * Milliseconds after sending within which a write or delete must reach
   * Redis (by the master's clock), else Redis drops it and the call fails.
   * The breaker wiring passes the per-call timeout plus 500 ms of clock-skew
   * allowance. Default 5000.
   */
  writeDeadlineMs?: number;
  /** Connection-level errors (node unreachable, slot refresh failed), for logs. Default: ignored. */
  onConnectionError?: (error: unknown) => void;
  /** Extra ioredis Cluster options, applied last (tests, TLS details). */
  cluster?: ClusterOptions;
}

/** Counters that make the driver's network use observable (tests, benchmarks). */
export interface ClusterStoreStats {
  /**
   * Requests sent to a node and awaited as one unit: a pipeline counts once
   * however many commands it holds; a single command counts once.
   */
  roundTrips: number;
  /** Commands sent (pipeline members included). */
  commands: number;
}

/** The cluster driver's extras beyond {@link Store}. */
export interface RedisClusterStore extends Store {
  readonly client: Cluster & StrataCommands;
  readonly stats: ClusterStoreStats;
}

/** Parses `host:port` seeds. @throws Error on a malformed entry (config validates first). */
export function parseClusterNodes(nodes: readonly string[]): ClusterNode[] {
  return nodes.map((n) => {
    const i = n.lastIndexOf(':');
    const port = Number(n.slice(i + 1));
    if (i <= 0 || !Number.isInteger(port) || port <= 0 || port > 65535) throw new Error(`bad cluster node ${n}`);
    return { host: n.slice(0, i), port };
  });
}

/**
 * Groups items by the Redis Cluster node group that serves their key's hash
 * slot, so each group can go out as one pipeline. The slot is
 * `CRC16(key) mod 16384`, hashing only the `{hash tag}` when present (Redis
 * Cluster specification, "Keys distribution model"; `cluster-key-slot`
 * implements it). Items whose slot is not mapped yet get one group per slot,
 * which ioredis routes (and redirects) on its own.
 *
 * @param slots ioredis's slot table: slot → node keys, master first.
 * @returns groups in first-seen order; each keeps its items' order.
 */
export function groupBySlotOwner<T>(
  items: readonly T[],
  keyOf: (item: T) => string,
  slots: readonly (readonly string[] | undefined)[],
): T[][] {
  const groups = new Map<string, T[]>();
  for (const item of items) {
    const slot = calculateSlot(keyOf(item));
    const owners = slots[slot];
    const group = owners && owners.length > 0 ? owners.join(',') : `slot:${slot}`;
    const list = groups.get(group);
    if (list) list.push(item);
    else groups.set(group, [item]);
  }
  return [...groups.values()];
}

/**
 * The Redis Cluster driver (ioredis `Cluster`). Same data layout and Lua
 * scripts as the standalone driver (`redis-scripts.ts`): every script touches
 * one entry key and its namespace's key index in that key's slot
 * (`redis-cluster-key-index.ts`), so it runs on one master.
 *
 * - **Batches**: `getMany`/`setMany` group keys by the node that owns their
 *   slot and send one pipeline per node — a batch of 1,000 keys over 3
 *   masters is 3 round trips, not 1,000. ioredis does not split cross-slot
 *   `MGET`/`MSET` itself, and entries are hashes anyway.
 * - **Expiry**: `PEXPIRE`/`PEXPIREAT` inside the scripts; Redis enforces it.
 * - **Versions**: stamped in the script from the owning master's `TIME` as
 *   `max(current + 1, now µs)`. A key lives on exactly one master, so its
 *   versions are monotonic as long as that master's clock is; after a
 *   failover the promoted replica holds the replicated `v` and continues
 *   from `max(v + 1, its now)`. Writes acknowledged by the old master but not
 *   yet replicated are lost by Redis itself (asynchronous replication, Redis
 *   Cluster specification, "Write safety").
 * - **Failover**: see {@link failoverRetry} for the retry arithmetic.
 *
 * Errors: rejects with ioredis errors (connection, `CLUSTERDOWN`, too many
 * redirections); the breaker facade (`resilient.ts`) maps them to CACHE_005
 * or serves the local tier.
 */
export function redisClusterStore(options: RedisClusterStoreOptions): RedisClusterStore {
  const client = new Cluster(parseClusterNodes(options.nodes), {
    retryDelayOnFailover: failoverRetry.retryDelayOnFailoverMs,
    retryDelayOnMoved: failoverRetry.retryDelayOnMovedMs,
    retryDelayOnClusterDown: failoverRetry.retryDelayOnClusterDownMs,
    retryDelayOnTryAgain: failoverRetry.retryDelayOnTryAgainMs,
    maxRedirections: failoverRetry.maxRedirections,
    // Reconnect forever with a capped delay: the breaker, not the driver, decides when to give up.
    clusterRetryStrategy: (times) => Math.min(100 * times, 2_000),
    enableAutoPipelining: true,
    redisOptions: {
      connectTimeout: options.connectTimeoutMs ?? 1_000,
      maxRetriesPerRequest: 1,
      ...(options.password ? { password: options.password } : {}),
      ...(options.tls ? { tls: options.tlsCa ? { ca: options.tlsCa } : {} } : {}),
    },
    ...options.cluster,
  });
  // Connection errors reach callers as rejected commands; without a listener ioredis prints each one.
  const onConnectionError = options.onConnectionError ?? (() => {});
  client.on('error', onConnectionError);
  client.on('node error', onConnectionError);
  defineStrataCommands(client);
  defineIndexedStrataCommands(client);
  client.defineCommand('strataSetBefore', { numberOfKeys: 3, lua: setBeforeScript });
  client.defineCommand('strataDeleteBefore', { numberOfKeys: 3, lua: deleteBeforeScript });
  client.defineCommand('strataSoftPurgeBefore', { numberOfKeys: 3, lua: softPurgeBeforeScript });
  client.defineCommand('strataSetOnceBefore', { numberOfKeys: 4, lua: setOnceBeforeScript });
  client.defineCommand('strataDeleteOnceBefore', { numberOfKeys: 4, lua: deleteOnceBeforeScript });
  const commands = client as Cluster & StrataCommands & IndexedStrataCommands;
  const writeDeadlineMs = options.writeDeadlineMs ?? 5_000;
  const stats: ClusterStoreStats = { roundTrips: 0, commands: 0 };
  const registrar = slotRegistrar();

  /**
   * Adds the slots of entry keys to their namespaces' slot registries before
   * the keys are written (one SADD per namespace, only for slots this process
   * has not registered lately), so a prefix purge that sees a key also reads
   * its slot. A failed registration fails the write: nothing is written unregistered.
   */
  async function register(entryKeys: readonly string[]): Promise<void> {
    const due = registrar.due(entryKeys);
    if (due.length === 0) return;
    await perNode(
      due,
      (r) => r.registry,
      (pipeline, r) => pipeline.sadd(r.registry, ...r.slots),
    );
    registrar.done(due);
  }

  function single<T>(run: () => Promise<T>): Promise<T> {
    stats.roundTrips += 1;
    stats.commands += 1;
    return run();
  }

  /** Runs one pipeline per slot owner; `add` queues one item's commands. Results come back in item order. */
  async function perNode<T>(
    items: readonly T[],
    keyOf: (item: T) => string,
    add: (pipeline: ReturnType<Cluster['pipeline']>, item: T) => void,
  ): Promise<unknown[][]> {
    const groups = groupBySlotOwner(items, keyOf, client.slots);
    const index = new Map<T, number>(items.map((item, i) => [item, i]));
    const results: unknown[][] = new Array(items.length);
    await Promise.all(
      groups.map(async (group) => {
        const pipeline = client.pipeline();
        for (const item of group) add(pipeline, item);
        stats.roundTrips += 1;
        stats.commands += pipeline.length;
        const replies = (await pipeline.exec()) ?? [];
        const perItem = replies.length / group.length;
        group.forEach((item, i) => {
          const slice = replies.slice(i * perItem, (i + 1) * perItem);
          for (const [error] of slice) if (error) throw error;
          results[index.get(item)!] = slice.map(([, value]) => value);
        });
      }),
    );
    return results;
  }

  async function indexTags(entries: readonly { k: string; tags: readonly string[]; ttlMs: number }[]): Promise<void> {
    const members = entries.flatMap(({ k, tags, ttlMs }) => tags.map((tag) => ({ k, tag, ttlMs })));
    if (members.length === 0) return;
    const namespaceOf = (k: string) => k.split(':')[2]!;
    await perNode(
      members,
      (m) => tagSetKey(namespaceOf(m.k), m.tag),
      (pipeline, m) => {
        const set = tagSetKey(namespaceOf(m.k), m.tag);
        pipeline.sadd(set, m.k);
        // A tag set lives as long as its longest-lived member (GT: never shorten).
        pipeline.pexpire(set, m.ttlMs, 'GT');
        pipeline.pexpire(set, m.ttlMs, 'NX');
      },
    );
  }

  function stored(input: EntryInput, reply: unknown): StoredEntry {
    return storedEntry(input, reply as [number, number]);
  }

  async function setMany(
    namespace: string,
    entries: ReadonlyMap<string, EntryInput>,
  ): Promise<Map<string, StoredEntry>> {
    const items = [...entries];
    // Slot registrations ride first in the pipeline of the master holding the registry, so a batch
    // stays one round trip per master. Should that pipeline fail, the call fails and the slots stay
    // due: the next write to them (a retry, or the local tier's write-back) registers them again.
    const due = registrar.due(items.map(([key]) => entryKey(namespace, key)));
    const deadline = Date.now() + writeDeadlineMs;
    const all: (readonly [string, EntryInput] | SlotRegistration)[] = [...due, ...items];
    const sent = await perNode(
      all,
      (item) => ('registry' in item ? item.registry : entryKey(namespace, item[0])),
      (pipeline, item) => {
        if ('registry' in item) {
          pipeline.sadd(item.registry, ...item.slots);
          return;
        }
        const [key, input] = item;
        const k = entryKey(namespace, key);
        const args = [
          asBuffer(input.value),
          input.contentType,
          input.ttlMs,
          input.tags.join(','),
          ...graceArgs(input.grace),
          input.leaseId ?? '',
          deadline,
        ] as const;
        const commands = pipeline as unknown as DeadlineCommands;
        const { once } = input;
        if (once) {
          const record = onceKey(k, once.id, slotTagOf(k));
          commands.strataSetOnceBefore(k, ...slotIndexKeysOf(k), record, ...args, once.fingerprint, once.ttlMs);
        } else commands.strataSetBefore(k, ...slotIndexKeysOf(k), ...args);
      },
    );
    registrar.done(due);
    const replies = sent.slice(due.length);
    items.forEach(([key], i) => {
      const status = Number((replies[i]![0] as [number, number])[0]);
      if (status === -1) throw new LateWriteError(entryKey(namespace, key));
      if (status === leaseLostReply) throw new LeaseLostError(entryKey(namespace, key));
      if (status === onceConflictReply) throw new OnceConflictError(entryKey(namespace, key));
    });
    await indexTags(
      items.map(([key, input]) => ({
        k: entryKey(namespace, key),
        tags: input.tags,
        ttlMs: input.ttlMs + graceMs(input.grace ?? {}),
      })),
    );
    return new Map(items.map(([key, input], i) => [key, stored(input, replies[i]![0])]));
  }

  async function removeKeys(keys: Iterable<string>, soft = false): Promise<RemovalResult> {
    let removed = 0;
    let version = nextVersion(0, Date.now());
    const list = [...keys];
    if (list.length === 0) return { removed, version };
    const deadline = Date.now() + writeDeadlineMs;
    const replies = await perNode(
      list,
      (k) => k,
      (pipeline, k) => {
        const commands = pipeline as unknown as DeadlineCommands;
        if (soft) commands.strataSoftPurgeBefore(k, ...slotIndexKeysOf(k), tombstoneTtlMs, deadline);
        else commands.strataDeleteBefore(k, ...slotIndexKeysOf(k), tombstoneTtlMs, deadline);
      },
    );
    for (const [i, [reply]] of replies.entries()) {
      const [n, v] = reply as [number, number];
      if (Number(n) === -1) throw new LateWriteError(list[i]!);
      removed += Number(n);
      version = Math.max(version, Number(v));
    }
    return { removed, version };
  }

  /**
   * The entry keys with a prefix, from the namespace's key index in every
   * registered hash slot: one SMEMBERS, then one pipeline of ZRANGEBYLEX per
   * master; no keyspace walk.
   */
  async function indexedPrefix(namespace: string, prefix: string): Promise<string[]> {
    const [min, max] = lexRange(entryKey(namespace, prefix));
    const slots = await single(() => client.smembers(slotRegistryKey(namespace)));
    const replies = await perNode(
      slots.map((slot) => slotIndexKeys(namespace, Number(slot))[0]),
      (byKey) => byKey,
      (pipeline, byKey) => pipeline.zrangebylex(byKey, min, max),
    );
    return replies.flatMap(([members]) => members as string[]);
  }

  /** The listed keys among entry keys: one pipeline of HMGET and HSTRLEN per master. */
  async function describe(namespace: string, found: readonly string[]): Promise<ListedKey[]> {
    const replies = await perNode(
      found,
      (k) => k,
      (pipeline, k) => pipeline.hmgetBuffer(k, ...listFields).hstrlen(k, 'd'),
    );
    const per = replies.map(([fields, size]) => [fields as (Buffer | null)[], Number(size)] as const);
    return listedKeys(namespace, found, per, Date.now());
  }

  /**
   * A listing whose glob starts with literal text reads the namespace's key
   * index slot by slot, in slot order then key order, so each key is listed
   * once and a failover or resharding does not disturb it (an index moves
   * with its slot). One call reads a few slots' ranges, at most `count`
   * members each, and keeps `count` members; the cursor names the slot and
   * the last key read there (`redis-cluster-key-index.ts`).
   */
  async function listFromSlotIndex(namespace: string, glob: Glob, request: KeyListRequest): Promise<KeyPage> {
    const at = decodeSlotIndexCursor(request.cursor);
    const registered = (await single(() => client.smembers(slotRegistryKey(namespace))))
      .map(Number)
      .filter((slot) => slot >= at.slot)
      .sort((a, b) => a - b);
    const batch = registered.slice(0, slotsPerListingCall(request.count));
    const [min, max] = lexRange(entryKey(namespace, glob.literalPrefix));
    const ranges = await perNode(
      batch,
      (slot) => slotIndexKeys(namespace, slot)[0],
      (pipeline, slot) => {
        const from = slot === at.slot && at.after !== null ? Buffer.from(`(${entryKey(namespace, at.after)}`) : min;
        pipeline.zrangebylex(slotIndexKeys(namespace, slot)[0], from, max, 'LIMIT', 0, request.count);
      },
    );
    const prefixLength = entryKey(namespace, '').length;
    const read: string[] = [];
    let next: SlotIndexCursor | null =
      batch.length < registered.length ? { slot: registered[batch.length]!, after: null } : null;
    for (const [i, slot] of batch.entries()) {
      if (read.length === request.count) {
        next = { slot, after: null };
        break;
      }
      const members = ranges[i]![0] as string[];
      const taken = members.slice(0, request.count - read.length);
      read.push(...taken);
      // The slot may hold more when its range was cut by this page or by LIMIT.
      if (taken.length < members.length || members.length === request.count) {
        next = { slot, after: taken.at(-1)!.slice(prefixLength) };
        break;
      }
    }
    const matching = read.filter((m) => glob.matches(m.slice(prefixLength)));
    return { keys: await describe(namespace, matching), cursor: next === null ? null : encodeSlotIndexCursor(next) };
  }

  /**
   * One SCAN on one master per call. The cursor names the topology the
   * listing began under and the master it is on; masters are walked in
   * order, so every master is listed once.
   */
  async function listKeys(namespace: string, request: KeyListRequest): Promise<KeyPage> {
    const match = scanPattern(namespace, request.match);
    const glob = parseGlob(request.match);
    if (glob.literalPrefix !== '') return await listFromSlotIndex(namespace, glob, request);
    let topology = clusterTopology(client.slots);
    if (!topology) {
      await single(() => client.ping()); // the slot map fills once the client is connected
      topology = clusterTopology(client.slots);
    }
    if (!topology) throw new Error('cluster slot map incomplete');
    const at =
      request.cursor === null
        ? { fingerprint: topology.fingerprint, master: 0, scan: '0' }
        : decodeClusterCursor(request.cursor, topology);
    const address = topology.masters[at.master]!;
    const node = client.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === address);
    if (!node) throw new Error(`cluster master ${address} not connected`);
    const [next, found] = await single(() => node.scan(at.scan, 'MATCH', match, 'COUNT', request.count));
    const keys = await describe(namespace, found);
    if (next !== '0') return { keys, cursor: encodeClusterCursor({ ...at, scan: next }) };
    if (at.master + 1 < topology.masters.length) {
      return { keys, cursor: encodeClusterCursor({ ...at, master: at.master + 1, scan: '0' }) };
    }
    return { keys, cursor: null };
  }

  return {
    kind: 'redis',
    client: commands,
    stats,
    listKeys,
    async get(namespace, key) {
      const fields = await single(() => client.hmgetBuffer(entryKey(namespace, key), ...entryFields));
      return decodeEntry(fields, Date.now());
    },
    async getMany(namespace, keys) {
      const unique = [...new Set(keys)];
      const replies = await perNode(
        unique,
        (key) => entryKey(namespace, key),
        (pipeline, key) => pipeline.hmgetBuffer(entryKey(namespace, key), ...entryFields),
      );
      const now = Date.now();
      const found = new Map<string, StoredEntry>();
      unique.forEach((key, i) => {
        const entry = decodeEntry(replies[i]![0] as (Buffer | null)[], now);
        if (entry) found.set(key, entry);
      });
      return found;
    },
    async set(namespace, key, input) {
      const result = await setMany(namespace, new Map([[key, input]]));
      return result.get(key)!;
    },
    setMany,
    async delete(namespace, key, once?: OnceRecord) {
      const k = entryKey(namespace, key);
      if (!once) return removeKeys([k]);
      const deadline = Date.now() + writeDeadlineMs;
      const record = onceKey(k, once.id, slotTagOf(k));
      const [n, v] = await single(() =>
        (client as unknown as DeadlineCommands).strataDeleteOnceBefore(
          k,
          ...slotIndexKeysOf(k),
          record,
          tombstoneTtlMs,
          deadline,
          once.fingerprint,
          once.ttlMs,
        ),
      );
      if (Number(n) === -1) throw new LateWriteError(k);
      if (Number(n) === onceConflictReply) throw new OnceConflictError(k);
      return { removed: Number(n), version: Number(v) };
    },
    async purge(namespace, selector) {
      const targets = new Set(selector.keys.map((k) => entryKey(namespace, k)));
      const tagSets = selector.tags.map((t) => tagSetKey(namespace, t));
      for (const set of tagSets) for (const member of await single(() => client.smembers(set))) targets.add(member);
      if (selector.prefix !== null) for (const k of await indexedPrefix(namespace, selector.prefix)) targets.add(k);
      const result = await removeKeys(targets, selector.soft);
      // Soft-purged entries stay tag members, so a later purge of the tag still finds them.
      if (tagSets.length > 0 && !selector.soft)
        await perNode(
          tagSets,
          (s) => s,
          (pipeline, s) => pipeline.del(s),
        );
      return result;
    },
    async swap(namespace, changes) {
      // A script's keys must share one slot; Redis would refuse it with CROSSSLOT, so do not send it.
      const slots = new Set(changes.map((c) => calculateSlot(entryKey(namespace, c.key))));
      if (slots.size > 1) return { kind: 'cross-slot' };
      const [slot] = slots;
      if (slot === undefined) return { kind: 'swapped', results: new Map() };
      await register(changes.map((c) => entryKey(namespace, c.key)));
      return await single(() =>
        swapEntries(commands, namespace, changes, { keys: slotIndexKeys(namespace, slot), client: commands }),
      );
    },
    async grantLease(namespace, key, id, leaseMs, seenVersion) {
      return await single(() => grantLeaseOn(commands, entryKey(namespace, key), id, leaseMs, seenVersion));
    },
    async ping() {
      // Every master must answer: a cluster with one unreachable master cannot serve all keys.
      const masters = client.nodes('master');
      if (masters.length === 0) await single(() => client.ping());
      else await Promise.all(masters.map((node) => single(() => node.ping())));
    },
    async close() {
      client.disconnect();
    },
  };
}
