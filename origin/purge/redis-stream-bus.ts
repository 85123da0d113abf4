import calculateSlot from 'cluster-key-slot';
import type { Cluster, Redis } from 'ioredis';
import type { PurgeMessage, PurgePosition, ResetMessage } from '../../shared/schemas.ts';
import { purgeLogEntrySchema, purgeLogFormatVersion } from '../../shared/schemas.ts';
import type {
  PublishedPurge,
  PublishOptions,
  PurgeBus,
  PurgeBusHealth,
  PurgeBusListener,
  PurgeBusSubscription,
  PurgeInput,
  PurgeReadResult,
  PurgeScope,
} from './bus.ts';
import { NewestRead } from './newest-read.ts';
import { formatPosition, parsePosition } from './position.ts';

/**
 * Default key of the region's purge log. The braces are a Redis Cluster hash
 * tag: the stream and its bookkeeping hash hash to one slot, so one Lua
 * script appends atomically on Cluster too (Redis Cluster specification,
 * "Hash tags").
 */
export const defaultPurgeLogKey = '{strata:purge-log}';

/** One `WAIT` reply as a pipeline gives it: the error, or how many replicas acknowledged. */
type WaitResult = [Error | null, unknown];

/** Log identity in positions of a Redis Stream bus: the same at every replica of a region. */
export const redisLogId = 'region';

/** Things the bus reports, for logs and metrics (all optional). */
export interface RedisStreamBusEvents {
  /** A `reset` went to this process's subscribers (lost tail, new incarnation, gap, unknown format). */
  onReset?(reason: string): void;
  /** An entry that is not a purge log entry was skipped (written by hand, or corrupted). */
  onMalformed?(id: string, reason: string): void;
  /** The tail failed (connection, timeout) and will retry after `retryInMs`. */
  onTailError?(error: unknown, retryInMs: number): void;
  /** An entry was relayed to this process's subscribers. */
  onRelayed?(message: PurgeMessage): void;
  /** An intent stayed open past the intent timeout and was recovered (its keys purged at the store's versions). */
  onIntentRecovered?(intentId: string, scope: PurgeScope): void;
  /** Recovering an abandoned intent failed; it is retried on the next sweep. */
  onIntentRecoveryFailed?(intentId: string, error: unknown): void;
}

export interface RedisStreamBusOptions {
  /** The store's client (standalone or Cluster); the bus opens two dedicated connections from it (`duplicate`). */
  readonly client: Redis | Cluster;
  /** About how many purges the log keeps (`PURGE_BUFFER_SIZE`); older ones are trimmed (XADD MAXLEN, twice this: each change logs an intent too). */
  readonly retainedEntries: number;
  /** Seconds the log keeps a purge (`PURGE_LOG_RETENTION_SECONDS`); older ones are trimmed (XTRIM MINID). */
  readonly retentionSeconds: number;
  /**
   * Replicas that must hold an entry before `publish` resolves (`WAIT`,
   * `PURGE_LOG_WAIT_REPLICAS`); null = 1 when the log's master has a
   * replica, else 0.
   */
  readonly waitReplicas?: number | null;
  /** Milliseconds `WAIT` may take; past it `publish` rejects (the change must not be acknowledged). */
  readonly waitTimeoutMs?: number;
  /** Key prefix of the stream (`<key>:stream`) and its bookkeeping hash (`<key>:meta`); keep the hash tag. */
  readonly key?: string;
  /** Milliseconds one XREAD blocks; the tail confirms it is caught up at least this often. */
  readonly blockMs?: number;
  /**
   * Milliseconds an intent may stay open before this replica recovers it
   * (`PURGE_INTENT_TIMEOUT_MS`, default 3000), counted from when its tail
   * saw the intent.
   */
  readonly intentTimeoutMs?: number;
  /**
   * Milliseconds an intent append may take before the change goes on
   * without one (default 300, `REDIS_CALL_TIMEOUT_MS`): an intent costs a
   * write at most one store call's timeout. An intent that lands later is
   * recovered like any open one (one extra purge).
   */
  readonly intentAppendTimeoutMs?: number;
  readonly events?: RedisStreamBusEvents;
}

/** A subscription's delivery state: replaying the gap (buffering live entries) or live. */
interface Subscriber {
  listener: PurgeBusListener;
  /** Live events that arrived while the gap was being read. */
  pending: (PurgeMessage | ResetMessage)[] | null;
  /** Stream id up to which this subscriber has been given entries. */
  after: string;
  closed: boolean;
}

type StreamEntry = [id: string, fields: string[]];

// The log's incarnation in `inc`, created when the bookkeeping hash is
// missing (a fresh or wiped Redis); a stream left without it is from an
// unknown lifetime and is dropped. KEYS: stream, meta. ARGV[1]: a fresh id.
const ensureIncarnation = `
local inc = redis.call('HGET', KEYS[2], 'inc')
if not inc then
  redis.call('DEL', KEYS[1])
  inc = ARGV[1]
  redis.call('HSET', KEYS[2], 'inc', inc, 'seq', 0)
end
`;

// Appends one entry atomically: creates the incarnation when the bookkeeping
// hash is missing (a fresh or wiped Redis; a stream without it is from an
// unknown lifetime and is dropped), numbers the entry, trims by count and age.
// KEYS: stream, meta. ARGV: fresh incarnation, format version, data, maxlen, retention ms,
// then optional extra field/value pairs (`intent`, `closes`).
const appendScript = `${ensureIncarnation}local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local fields = {'v', ARGV[2], 'inc', inc, 'seq', seq, 'data', ARGV[3]}
for i = 6, #ARGV do fields[#fields + 1] = ARGV[i] end
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[4], '*', unpack(fields))
local t = redis.call('TIME')
local minid = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) - tonumber(ARGV[5])
if minid > 0 then redis.call('XTRIM', KEYS[1], 'MINID', minid) end
return {inc, tostring(seq), id}
`;

// Reads (or creates) the incarnation, the head (last id ever added, which
// outlives trimming) and the oldest entry kept with its number.
// KEYS: stream, meta. ARGV: fresh incarnation.
const headScript = `${ensureIncarnation}local seq = redis.call('HGET', KEYS[2], 'seq')
local id = '0-0'
local oldest = ''
local oldestSeq = '0'
if redis.call('EXISTS', KEYS[1]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[1])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then id = info[i + 1] end
  end
  local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)
  if first[1] then
    oldest = first[1][1]
    local f = first[1][2]
    for i = 1, #f, 2 do
      if f[i] == 'seq' then oldestSeq = f[i + 1] end
    end
  end
end
return {inc, seq, id, oldest, oldestSeq}
`;

interface Head {
  readonly incarnation: string;
  readonly seq: number;
  /** The last id ever added (it stays when trimming empties the stream). */
  readonly id: string;
  /** The oldest entry kept, with its number; null when the stream holds none. */
  readonly oldest: { readonly id: string; readonly seq: number } | null;
}

type Commands = {
  strataPurgeAppend(stream: string, meta: string, ...args: (string | number)[]): Promise<[string, string, string]>;
  strataPurgeHead(stream: string, meta: string, incarnation: string): Promise<[string, string, string, string, string]>;
};

/** Compares two stream ids `ms-seq` numerically: negative when a < b. */
export function compareStreamIds(a: string, b: string): number {
  const [am = 0n, as = 0n] = a.split('-').map(BigInt);
  const [bm = 0n, bs = 0n] = b.split('-').map(BigInt);
  if (am !== bm) return am < bm ? -1 : 1;
  return as === bs ? 0 : as < bs ? -1 : 1;
}

const streamId = /^\d+-\d+$/;
const freshIncarnation = () => crypto.randomUUID().replaceAll('-', '').slice(0, 16);

/**
 * The region's purge log on the store's Redis (standalone or Cluster): a
 * Redis Stream (`XADD`/`XREAD`, https://redis.io/docs/latest/develop/data-types/streams/)
 * that every origin replica appends to and tails, so an edge on any replica
 * sees every replica's purges, and a position issued by one replica is valid
 * at all of them.
 *
 * - Entries: `v` (format version, {@link purgeLogFormatVersion}), `inc`
 *   (incarnation), `seq` (1, 2, … per incarnation), `data` (the purge as
 *   JSON, `purgeLogEntrySchema`; unknown fields are ignored).
 * - Positions: `region:<incarnation>:<stream id>`. The incarnation is a
 *   random id kept in the bookkeeping hash, created with the stream; a Redis
 *   that lost both (restart without persistence) gets a new one, and every
 *   edge holding an older position gets `reset`.
 * - Tail: one dedicated connection loops on `XREAD BLOCK` from the last
 *   relayed id and relays every entry, this replica's own included, once and
 *   in log order, to local subscribers. A gap or a step back in `seq`, a new
 *   incarnation, or a last id behind the one relayed (a failover that lost
 *   entries) sends `reset` to every subscriber: never silence. A failing tail
 *   reports `tailLive: false` and retries with jittered exponential back-off.
 * - Intents: a change logs an intent (field `intent`) before its store
 *   write and its purge closes it (field `closes`); intents are numbered
 *   but not relayed, and one left open past `intentTimeoutMs` goes to the
 *   recovery set with `recoverIntentsWith` (docs/architecture.md).
 * - Retention: `MAXLEN 2 × retainedEntries` (an intent and a purge per
 *   change) and `MINID now - retentionSeconds` on
 *   every append; a position older than the oldest entry gets `reset`.
 * - `publish`: one Lua script (number, append, trim), then `WAIT` for
 *   `waitReplicas`; resolves once this replica's tail has relayed the entry
 *   (so local subscribers see it in log order), or rejects when the append
 *   or `WAIT` fails.
 */
export class RedisStreamPurgeBus implements PurgeBus {
  readonly retainedEntries: number;
  readonly #stream: string;
  readonly #meta: string;
  readonly #writer: (Redis | Cluster) & Commands;
  readonly #tailClient: (Redis | Cluster) & Commands;
  readonly #retentionMs: number;
  readonly #blockMs: number;
  readonly #waitTimeoutMs: number;
  #waitReplicas: number | null;
  #replicasCheckedAt = 0;
  /** Re-reads of the replica count overlap (tail, appends, a short WAIT): the one started last wins. */
  readonly #replicasReads = new NewestRead<number>();
  /** The `WAIT` on the writer's connection now (at most one: `WAIT` blocks the connection until it returns). */
  #waitInFlight: Promise<WaitResult> | null = null;
  /** The `WAIT` that starts when {@link #waitInFlight} returns, shared by every append answered meanwhile. */
  #nextWait: Promise<WaitResult> | null = null;
  readonly #options: RedisStreamBusOptions;
  readonly #events: RedisStreamBusEvents;
  readonly #subscribers = new Set<Subscriber>();
  readonly #observers = new Set<(message: PurgeMessage) => void>();
  /** Resolvers of `publish` calls waiting for the tail to relay their entry. */
  readonly #relayWaiters = new Set<{ id: string; incarnation: string; resolve: () => void }>();
  /** `unknown` until the log was reached once (Redis down at start-up): every position then resets. */
  #incarnation = 'unknown';
  #lastId = '0-0';
  #lastSeq = 0;
  #live = false;
  #confirmedAt = 0;
  #closed = false;
  #tailDone: Promise<void> = Promise.resolve();
  /** Ends the tail's back-off sleep at once (close). */
  #stopSleep: () => void = () => {};
  readonly #intentTimeoutMs: number;
  readonly #intentAppendTimeoutMs: number;
  /** Entries the stream keeps (`MAXLEN`): a change logs an intent and a purge, so twice the purges to keep. */
  get #maxLen(): number {
    return this.retainedEntries * 2;
  }
  /** Intents seen in the log and not yet closed by a purge, by stream id; `seenAt` is this process's clock (ms). */
  readonly #openIntents = new Map<string, { scope: PurgeScope; seenAt: number; recovering: boolean }>();
  #recoverIntent: ((scope: PurgeScope, intentId: string) => Promise<void>) | null = null;
  #sweepTimer: ReturnType<typeof setInterval> | undefined;

  private constructor(options: RedisStreamBusOptions) {
    const { retainedEntries } = options;
    if (!Number.isInteger(retainedEntries) || retainedEntries < 1)
      throw new Error('purge buffer capacity must be a positive integer');
    this.retainedEntries = retainedEntries;
    const key = options.key ?? defaultPurgeLogKey;
    this.#stream = `${key}:stream`;
    this.#meta = `${key}:meta`;
    this.#retentionMs = options.retentionSeconds * 1000;
    this.#blockMs = options.blockMs ?? 1_000;
    this.#waitTimeoutMs = options.waitTimeoutMs ?? 1_000;
    this.#intentTimeoutMs = options.intentTimeoutMs ?? 3_000;
    this.#intentAppendTimeoutMs = options.intentAppendTimeoutMs ?? 300;
    this.#options = options;
    this.#waitReplicas = options.waitReplicas ?? null;
    this.#events = options.events ?? {};
    const dedicated = () => {
      const c = options.client.duplicate() as (Redis | Cluster) & Commands;
      c.on('error', () => {});
      c.defineCommand('strataPurgeAppend', { numberOfKeys: 2, lua: appendScript });
      c.defineCommand('strataPurgeHead', { numberOfKeys: 2, lua: headScript });
      return c;
    };
    this.#writer = dedicated();
    this.#tailClient = dedicated();
  }

  /**
   * Opens the bus: reads (or creates) the log's incarnation and head, picks
   * the `WAIT` count when not configured, and starts the tail.
   * @throws Error when Redis cannot be reached.
   */
  static async open(options: RedisStreamBusOptions): Promise<RedisStreamPurgeBus> {
    const bus = new RedisStreamPurgeBus(options);
    let reachable = true;
    try {
      const head = await bus.#head(bus.#writer);
      bus.#incarnation = head.incarnation;
      bus.#lastId = head.id;
      bus.#lastSeq = head.seq;
      bus.#live = true;
      bus.#confirmedAt = Date.now();
      await bus.#detectWaitReplicas();
      await bus.#scanOpenIntents(head);
    } catch (error) {
      // Redis down at start-up: the origin still starts (degraded); the tail says it is not live and
      // resets its edges once it reaches the log.
      reachable = false;
      bus.#events.onTailError?.(error, 0);
    }
    bus.#tailDone = bus.#tail(!reachable);
    bus.#sweepTimer = setInterval(() => bus.#sweepIntents(), Math.max(50, Math.floor(bus.#intentTimeoutMs / 4)));
    bus.#sweepTimer.unref();
    return bus;
  }

  /**
   * Sets what recovers an intent left open past the intent timeout; see
   * {@link PurgeBus.recoverIntentsWith}. Every replica that sees the intent
   * recovers it (a few duplicate purges, never a missed one).
   */
  recoverIntentsWith(recover: (scope: PurgeScope, intentId: string) => Promise<void>): void {
    this.#recoverIntent = recover;
  }

  /** Intents open in the log as this replica's tail sees them (tests, metrics). */
  get openIntents(): number {
    return this.#openIntents.size;
  }

  /**
   * Appends an intent entry (fields as a purge entry plus `intent`; its
   * `data` is a purge of the scope at version 0, so an origin that does not
   * know intents relays a purge that drops nothing). No `WAIT`: an intent
   * lost in a failover comes with a lost tail, which resets every edge.
   * @returns the intent's id (its stream id), for `publish(…, { closes })`.
   * @throws Error at once when this replica's tail is not live (Redis
   *   unreachable), or when Redis cannot take it within the append bound.
   */
  async intend(scope: PurgeScope): Promise<string> {
    if (this.#closed) throw new Error('purge log is closed');
    // A tail that cannot read the log says Redis is unreachable: fail at once rather than wait for the append bound.
    if (!this.health().tailLive) throw new Error('purge log tail is not live');
    const { namespace, keys, tags, prefix, origin_region } = scope;
    const input: PurgeInput = { namespace, keys, tags, prefix, version: 0, action: 'update', ts: Date.now() };
    if (origin_region !== undefined) Object.assign(input, { origin_region });
    const appended = await this.#bounded(this.#append(input, ['intent', '1'], false), this.#intentAppendTimeoutMs);
    return appended.id;
  }

  /** Recovers intents open longer than the timeout (one at a time per intent; a failure retries next sweep). */
  #sweepIntents(): void {
    const recover = this.#recoverIntent;
    if (!recover || this.#closed || !this.#live) return;
    const now = Date.now();
    for (const [id, intent] of this.#openIntents) {
      if (intent.recovering || now - intent.seenAt < this.#intentTimeoutMs) continue;
      intent.recovering = true;
      recover(intent.scope, id).then(
        () => {
          this.#openIntents.delete(id);
          this.#events.onIntentRecovered?.(id, intent.scope);
        },
        (error: unknown) => {
          intent.recovering = false;
          this.#events.onIntentRecoveryFailed?.(id, error);
        },
      );
    }
  }

  /**
   * At start: finds intents still open among the newest entries (up to
   * twice `retainedEntries`), so a replica that starts after its region's writers
   * crashed (every replica restarted) still recovers them. Their age is
   * taken from the stream ids, against the head's.
   */
  async #scanOpenIntents(head: Head): Promise<void> {
    const entries = (await this.#writer.xrevrange(
      this.#stream,
      '+',
      '-',
      'COUNT',
      Math.min(this.#maxLen, 20_000),
    )) as StreamEntry[];
    const closed = new Set<string>();
    const ms = (id: string) => Number(id.split('-')[0]);
    for (const entry of entries) {
      const decoded = this.#decode(entry);
      if (decoded.kind === 'purge' && decoded.closes) closed.add(decoded.closes);
      if (decoded.kind !== 'intent' || decoded.incarnation !== head.incarnation || closed.has(entry[0])) continue;
      const ageMs = Math.max(0, ms(head.id) - ms(entry[0]));
      this.#openIntents.set(entry[0], { scope: decoded.scope, seenAt: Date.now() - ageMs, recovering: false });
    }
  }

  /** Replicas `publish` waits for (`WAIT`); 0 until detected when not configured. */
  get waitReplicas(): number {
    return this.#waitReplicas ?? 0;
  }

  async #detectWaitReplicas(): Promise<number> {
    this.#waitReplicas ??= Math.min(1, await replicasOfLogMaster(this.#options.client, this.#stream));
    return this.#waitReplicas;
  }

  /**
   * Not configured (`waitReplicas` null): follows the topology, so a master
   * left without replicas after a failover does not fail every write, and one
   * whose replica rejoined is waited for again. Reads it at most every two
   * seconds (from the idle tail and from appends), or at once when `now`.
   */
  async #refreshWaitReplicas(now = false): Promise<void> {
    const configured = this.#options.waitReplicas;
    if (configured !== null && configured !== undefined) return;
    if (!now && Date.now() - this.#replicasCheckedAt < 2_000) return;
    this.#replicasCheckedAt = Date.now();
    await this.#replicasReads.read(
      () => replicasOfLogMaster(this.#options.client, this.#stream),
      (count) => {
        this.#waitReplicas = Math.min(1, count);
      },
    );
  }

  get subscribers(): number {
    return this.#subscribers.size;
  }

  async publish(input: PurgeInput, options: PublishOptions = {}): Promise<PublishedPurge> {
    if (this.#closed) throw new Error('purge log is closed');
    const extra = options.closes ? ['closes', options.closes] : [];
    const appended = await this.#bounded(this.#append(input, extra));
    // An append answered while another's WAIT was out waits for the round that covers it, under a bound of its
    // own: the WAIT in flight, then its round (group commit, below).
    if (appended.confirm) await this.#bounded(appended.confirm(), 2 * this.#waitTimeoutMs + 1_000);
    // In the log now; resolve once this replica's tail relayed it, so local subscribers have it in log order.
    await this.#relayed(appended.id, appended.incarnation);
    return appended.published;
  }

  /**
   * Re-reads the Cluster slot map of the writer (no-op on a standalone
   * server). ioredis refreshes it on redirections of single commands, not of
   * a pipeline whose other command (WAIT) was answered, so after a failover
   * of the log's master appends would keep going to the old owner.
   */
  #refreshSlots(): Promise<void> {
    const writer = this.#writer as Partial<Cluster>;
    if (!writer.refreshSlotsCache) return Promise.resolve();
    return new Promise((resolve) => writer.refreshSlotsCache!(() => resolve()));
  }

  /** Bounds an append: with Redis unreachable, ioredis would queue it until it reconnects; the caller needs an answer now. */
  async #bounded<T>(append: Promise<T>, limitMs = this.#waitTimeoutMs + 1_000): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`purge log append took longer than ${limitMs} ms`)), limitMs);
    });
    try {
      return await Promise.race([append, timeout]);
    } catch (error) {
      this.#refreshSlots();
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  async #append(
    input: PurgeInput,
    extra: readonly string[] = [],
    wait = true,
    retryMoved = true,
  ): Promise<{ published: PublishedPurge; id: string; incarnation: string; confirm?: () => Promise<void> }> {
    const data = JSON.stringify(input);
    // The tail re-reads the count only when idle, which it never is while writes keep coming: without this, the
    // count moved only when a WAIT fell short (a full WAIT timeout after a failover) and never back up when a
    // replica rejoined. In the background: an append does not wait on CLUSTER NODES.
    if (wait) void this.#refreshWaitReplicas().catch(() => {});
    const waitReplicas = wait ? await this.#detectWaitReplicas() : 0;
    let pipeline = this.#writer.pipeline() as ReturnType<Redis['pipeline']> & {
      strataPurgeAppend(...args: unknown[]): unknown;
    };
    pipeline = pipeline.strataPurgeAppend(
      this.#stream,
      this.#meta,
      freshIncarnation(),
      purgeLogFormatVersion,
      data,
      this.#maxLen,
      this.#retentionMs,
      ...extra,
    ) as typeof pipeline;
    // WAIT goes in the same pipeline, so on Cluster it reaches the master holding the stream. WAIT blocks the
    // connection until it returns, so only one is sent at a time: appends answered while one is out share the
    // next (group commit). One WAIT per append would queue every later append behind every earlier WAIT: with
    // the replica gone or resyncing after a failover, each waits its full timeout and the queue outgrows any
    // bound while writes keep coming.
    const carriesWait = waitReplicas > 0 && this.#waitInFlight === null;
    if (carriesWait) pipeline.wait(waitReplicas, this.#waitTimeoutMs);
    const exec = pipeline.exec();
    if (carriesWait)
      this.#startWait(exec.then((r) => (r?.[1] ?? [new Error('purge log WAIT: no reply'), null]) as WaitResult));
    const results = await exec;
    if (!results) throw new Error('purge log append failed: no reply');
    const [appendError, appended] = results[0]!;
    if (appendError) {
      // A pipeline holding WAIT is not redirected by ioredis when only the append is MOVED (the WAIT answered
      // where it landed): after a failover the writer's slot map is stale. Refresh it and try once more (a MOVED
      // append appended nothing).
      if (retryMoved && /^MOVED /.test(String((appendError as Error).message))) {
        await this.#refreshSlots();
        return await this.#append(input, extra, wait, false);
      }
      throw appendError;
    }
    const [incarnation, seqText, id] = appended as [string, string, string];
    if (carriesWait) await this.#checkWait(waitReplicas, results[1]! as WaitResult);
    const message: PurgeMessage = {
      type: 'purge',
      position: this.#position(incarnation, id),
      ...purgeFields(input),
    };
    const published = { message, seq: Number(seqText) };
    if (waitReplicas > 0 && !carriesWait) {
      const confirm = async () => this.#checkWait(waitReplicas, await this.#waitAfterAppend(waitReplicas));
      return { published, id, incarnation, confirm };
    }
    return { published, id, incarnation };
  }

  /** Throws unless `WAIT` answered `replicas` acknowledgements (or the log's master turned out to have none left). */
  async #checkWait(replicas: number, [waitError, acked]: WaitResult): Promise<void> {
    if (waitError) throw waitError;
    if (Number(acked) >= replicas) return;
    // Not configured and the master has no replica left (a failover took it): nothing to wait for.
    await this.#refreshWaitReplicas(true);
    if (this.#waitReplicas !== 0)
      throw new Error(`purge log entry reached ${acked} of ${replicas} replicas within ${this.#waitTimeoutMs} ms`);
  }

  /** Marks `round` as the writer's `WAIT` in flight until it returns. */
  #startWait(round: Promise<WaitResult>): Promise<WaitResult> {
    const settled = round.catch((error: unknown): WaitResult => [error as Error, null]);
    this.#waitInFlight = settled;
    void settled.then(() => {
      if (this.#waitInFlight === settled) this.#waitInFlight = null;
    });
    return settled;
  }

  /**
   * A `WAIT` sent after an append that was answered without one: the next
   * round, started once the one in flight returns (or at once), shared with
   * every append answered before it starts. `WAIT` counts every write the
   * connection made before it, so it covers them all.
   */
  #waitAfterAppend(replicas: number): Promise<WaitResult> {
    if (this.#nextWait) return this.#nextWait;
    const before = this.#waitInFlight ?? Promise.resolve();
    const next = before.then(() => {
      if (this.#nextWait === next) this.#nextWait = null;
      // EXISTS on the stream routes the pipeline to the master holding it (on Cluster; a no-op elsewhere).
      const pipeline = this.#writer.pipeline().exists(this.#stream).wait(replicas, this.#waitTimeoutMs);
      return this.#startWait(
        pipeline.exec().then((r) => (r?.[1] ?? [new Error('purge log WAIT: no reply'), null]) as WaitResult),
      );
    });
    this.#nextWait = next;
    return next;
  }

  subscribe(from: PurgePosition | null, listener: PurgeBusListener): PurgeBusSubscription {
    const subscriber: Subscriber = { listener, pending: null, after: this.#lastId, closed: false };
    let head = this.#position(this.#incarnation, this.#lastId);
    if (from !== null) {
      const parsed = parsePosition(from);
      const placeable = parsed !== null && parsed.log === redisLogId && parsed.incarnation === this.#incarnation;
      if (placeable && streamId.test(parsed.offset) && compareStreamIds(parsed.offset, this.#lastId) > 0) {
        // Ahead of this replica's tail (an edge moved from a replica that is further along): live entries after it.
        head = from;
      }
      subscriber.pending = [];
      void this.#replay(subscriber, from);
    }
    this.#subscribers.add(subscriber);
    return {
      head,
      close: () => {
        subscriber.closed = true;
        this.#subscribers.delete(subscriber);
      },
    };
  }

  async read(after: PurgePosition | null, limit: number): Promise<PurgeReadResult> {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('read limit must be a positive integer');
    const health = () => this.health();
    if (after === null) {
      const { position, tailLive, tailAgeMs } = health();
      return { entries: [], reset: null, head: position, tailLive, tailAgeMs };
    }
    const placed = await this.#place(after);
    if (placed.reset) {
      const { tailLive, tailAgeMs } = health();
      return { entries: [], reset: placed.reset, head: placed.reset.position, tailLive, tailAgeMs };
    }
    const entries: PurgeMessage[] = [];
    // Intents are not relayed: a page of intents only reads on (a few pages at most), so a run of them cannot stall a poller.
    let from = placed.id;
    let done = false;
    for (let pages = 0; pages < 8 && !done && entries.length === 0; pages++) {
      const raw = (await this.#writer.xrange(this.#stream, `(${from}`, '+', 'COUNT', limit)) as StreamEntry[];
      for (const entry of raw) {
        const decoded = this.#decode(entry);
        if (decoded.kind === 'purge') entries.push(decoded.message);
        else if (decoded.kind === 'reset') {
          const { tailLive, tailAgeMs } = health();
          const reset: ResetMessage = { type: 'reset', position: decoded.position, reason: decoded.reason };
          if (entries.length === 0) return { entries: [], reset, head: reset.position, tailLive, tailAgeMs };
          done = true;
          break;
        }
        from = entry[0];
      }
      if (raw.length < limit) done = true;
    }
    const { position, tailLive, tailAgeMs } = health();
    const last = entries.at(-1);
    const head =
      last && compareStreamIds(parsePosition(last.position)!.offset, this.#lastId) > 0 ? last.position : position;
    return { entries, reset: null, head, tailLive, tailAgeMs };
  }

  /**
   * The log's length and how far this replica's tail is behind its head
   * (entries, and ms between the two entries' append times), for metrics.
   * @throws Error when Redis cannot be reached.
   */
  async lag(): Promise<{ length: number; lagEntries: number; lagMs: number }> {
    const [head, length] = await Promise.all([this.#head(this.#writer), this.#writer.xlen(this.#stream)]);
    if (head.incarnation !== this.#incarnation) return { length, lagEntries: head.seq, lagMs: 0 };
    const ms = (id: string) => Number(id.split('-')[0]);
    return {
      length,
      lagEntries: Math.max(0, head.seq - this.#lastSeq),
      lagMs: Math.max(0, ms(head.id) - ms(this.#lastId)),
    };
  }

  /**
   * Hands a purge to this replica's subscribers only, outside the log, at
   * the position they already hold: for a change the store accepted into its
   * local tier while Redis (and so the log) is unreachable. The log gets the
   * purge when the change is written back.
   */
  relayLocally(input: PurgeInput): void {
    const message: PurgeMessage = {
      type: 'purge',
      position: this.#position(this.#incarnation, this.#lastId),
      ...purgeFields(input),
    };
    for (const observer of this.#observers) observer(message);
    for (const subscriber of this.#subscribers) {
      if (subscriber.pending) subscriber.pending.push(message);
      else subscriber.listener(message);
    }
  }

  observe(observer: (message: PurgeMessage) => void): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  health(): PurgeBusHealth {
    const tailAgeMs = Math.max(0, Date.now() - this.#confirmedAt);
    // Caught up within three blocking reads: a longer silence means the tail is stuck even if no error surfaced.
    const tailLive = this.#live && tailAgeMs <= this.#blockMs * 3 + 1_000;
    return { position: this.#position(this.#incarnation, this.#lastId), seq: this.#lastSeq, tailLive, tailAgeMs };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#live = false;
    this.#subscribers.clear();
    this.#observers.clear();
    clearInterval(this.#sweepTimer);
    this.#openIntents.clear();
    for (const waiter of this.#relayWaiters) waiter.resolve();
    this.#relayWaiters.clear();
    this.#tailClient.disconnect();
    this.#stopSleep();
    // A command queued while ioredis was reconnecting may never settle after disconnect: do not wait on it for long.
    await Promise.race([this.#tailDone, new Promise((resolve) => setTimeout(resolve, 1_000).unref())]);
    this.#writer.disconnect();
  }

  #position(incarnation: string, id: string): PurgePosition {
    return formatPosition({ log: redisLogId, incarnation, offset: id });
  }

  async #head(client: Commands): Promise<Head> {
    const [incarnation, seq, id, oldest, oldestSeq] = await client.strataPurgeHead(
      this.#stream,
      this.#meta,
      freshIncarnation(),
    );
    return { incarnation, seq: Number(seq), id, oldest: oldest ? { id: oldest, seq: Number(oldestSeq) } : null };
  }

  /** Resolves once the tail has relayed `id` (or moved past it, or reset), or after a bound if the tail is down. */
  #relayed(id: string, incarnation: string): Promise<void> {
    if (incarnation === this.#incarnation && compareStreamIds(this.#lastId, id) >= 0) return Promise.resolve();
    return new Promise((resolve) => {
      const waiter = {
        id,
        incarnation,
        resolve: () => {
          clearTimeout(timer);
          this.#relayWaiters.delete(waiter);
          resolve();
        },
      };
      // The entry is in the log either way; a broken tail resets its edges when it recovers.
      const timer = setTimeout(waiter.resolve, this.#blockMs * 3);
      this.#relayWaiters.add(waiter);
    });
  }

  #wakeRelayWaiters(): void {
    for (const waiter of this.#relayWaiters) {
      if (waiter.incarnation !== this.#incarnation || compareStreamIds(this.#lastId, waiter.id) >= 0) waiter.resolve();
    }
  }

  /**
   * Where reading after `from` starts: the stream id, or a reset when the
   * position is from another log or incarnation, older than the log keeps,
   * or ahead of the log.
   */
  async #place(from: PurgePosition): Promise<{ id: string; reset: null } | { id: null; reset: ResetMessage }> {
    const head = await this.#head(this.#writer);
    const reset = (reason: string) => ({
      id: null,
      reset: { type: 'reset' as const, position: this.#position(head.incarnation, head.id), reason },
    });
    const position = parsePosition(from);
    if (position === null || position.log !== redisLogId) return reset('position is from another purge log');
    if (position.incarnation !== head.incarnation) return reset('purge log restarted (new incarnation)');
    if (!streamId.test(position.offset)) return reset('position is not an offset of this purge log');
    const id = position.offset;
    if (compareStreamIds(id, head.id) > 0) return reset('position is ahead of the purge log');
    // Replayable: the head itself, a position at or after the oldest entry kept, or any position when nothing was trimmed yet.
    const { oldest } = head;
    const whole = oldest !== null && (oldest.seq === 1 || compareStreamIds(id, oldest.id) >= 0);
    if (id !== head.id && !whole) return reset('position is older than the purge log keeps');
    return { id, reset: null };
  }

  /** Gives a new subscriber the entries after `from` up to where the tail stands, then its buffered live ones. */
  async #replay(subscriber: Subscriber, from: PurgePosition): Promise<void> {
    const deliver = (event: PurgeMessage | ResetMessage) => {
      if (!subscriber.closed) subscriber.listener(event);
    };
    try {
      const placed = await this.#place(from);
      if (placed.reset) {
        deliver(placed.reset);
        // Live entries the tail relayed after the reset's head.
        subscriber.after = parsePosition(placed.reset.position)!.offset;
      } else {
        let after = placed.id;
        // Page up to where the tail stood when the subscription began; later ones are in `pending`.
        const until = subscriber.after;
        while (compareStreamIds(after, until) < 0 && !subscriber.closed) {
          const page = (await this.#writer.xrange(this.#stream, `(${after}`, until, 'COUNT', 500)) as StreamEntry[];
          if (page.length === 0) break;
          for (const entry of page) {
            const decoded = this.#decode(entry);
            if (decoded.kind === 'purge') deliver(decoded.message);
            else if (decoded.kind === 'reset')
              deliver({ type: 'reset', position: decoded.position, reason: decoded.reason });
            after = entry[0];
          }
        }
        subscriber.after = compareStreamIds(placed.id, until) > 0 ? placed.id : until;
      }
    } catch (error) {
      deliver({
        type: 'reset',
        position: this.#position(this.#incarnation, this.#lastId),
        reason: `purge log unreadable: ${error instanceof Error ? error.message : String(error)}`,
      });
    }
    const pending = subscriber.pending ?? [];
    subscriber.pending = null;
    for (const event of pending) {
      const offset = parsePosition(event.position)?.offset ?? '0-0';
      if (event.type === 'reset' || compareStreamIds(offset, subscriber.after) > 0) {
        subscriber.after = offset;
        deliver(event);
      }
    }
  }

  #emit(event: PurgeMessage | ResetMessage): void {
    if (event.type === 'purge') {
      for (const observer of this.#observers) observer(event);
      this.#events.onRelayed?.(event);
    } else {
      this.#events.onReset?.(event.reason);
    }
    const offset = parsePosition(event.position)?.offset ?? '0-0';
    for (const subscriber of this.#subscribers) {
      if (subscriber.pending) subscriber.pending.push(event);
      // A reset may move the position back (a lost tail): what follows it counts from there.
      else if (event.type === 'reset' || compareStreamIds(offset, subscriber.after) > 0) {
        subscriber.after = offset;
        subscriber.listener(event);
      }
    }
  }

  /** Drops what this replica relayed so far: every subscriber resets to the log's current head. */
  async #resync(reason: string): Promise<void> {
    const head = await this.#head(this.#tailClient);
    this.#incarnation = head.incarnation;
    this.#lastId = head.id;
    this.#lastSeq = head.seq;
    // Open intents stay: a writer may still write its store after the reset, and edges refill from the store.
    this.#emit({ type: 'reset', position: this.#position(head.incarnation, head.id), reason });
    this.#wakeRelayWaiters();
  }

  #decode(
    entry: StreamEntry,
  ):
    | { kind: 'purge'; message: PurgeMessage; seq: number; incarnation: string; closes: string | null }
    | { kind: 'intent'; scope: PurgeScope; seq: number; incarnation: string }
    | { kind: 'reset'; position: PurgePosition; reason: string; seq: number; incarnation: string }
    | { kind: 'malformed'; reason: string } {
    const [id, list] = entry;
    const fields = new Map<string, string>();
    for (let i = 0; i + 1 < list.length; i += 2) fields.set(list[i]!, list[i + 1]!);
    const seq = Number(fields.get('seq'));
    const incarnation = fields.get('inc');
    const version = fields.get('v');
    if (!incarnation || !/^[A-Za-z0-9._-]+$/.test(incarnation) || !Number.isSafeInteger(seq) || seq < 1) {
      return { kind: 'malformed', reason: 'missing or invalid inc/seq fields' };
    }
    const position = this.#position(incarnation, id);
    if (version !== purgeLogFormatVersion) {
      return {
        kind: 'reset',
        position,
        reason: `purge log entry has format version ${version ?? '(none)'}, this origin reads ${purgeLogFormatVersion}`,
        seq,
        incarnation,
      };
    }
    let json: unknown;
    try {
      json = JSON.parse(fields.get('data') ?? '');
    } catch {
      return { kind: 'malformed', reason: 'data is not JSON' };
    }
    const parsed = purgeLogEntrySchema.safeParse(json);
    if (!parsed.success) return { kind: 'malformed', reason: parsed.error.issues[0]?.message ?? 'invalid entry' };
    if (fields.get('intent') === '1') {
      const { namespace, keys, tags, prefix, origin_region } = parsed.data;
      const scope: PurgeScope = { namespace, keys, tags, prefix };
      if (origin_region !== undefined) Object.assign(scope, { origin_region });
      return { kind: 'intent', scope, seq, incarnation };
    }
    const closes = fields.get('closes');
    return {
      kind: 'purge',
      message: { type: 'purge', position, ...parsed.data },
      seq,
      incarnation,
      closes: closes && streamId.test(closes) ? closes : null,
    };
  }

  /** Relays one batch from XREAD, checking incarnation and numbering. */
  async #relayBatch(entries: StreamEntry[]): Promise<void> {
    for (const entry of entries) {
      const [id] = entry;
      const decoded = this.#decode(entry);
      if (decoded.kind === 'malformed') {
        this.#events.onMalformed?.(id, decoded.reason);
        this.#lastId = id;
        continue;
      }
      if (decoded.incarnation !== this.#incarnation) {
        await this.#resync('purge log restarted (new incarnation)');
        return;
      }
      if (decoded.seq !== this.#lastSeq + 1) {
        const reason =
          decoded.seq <= this.#lastSeq
            ? 'purge log lost entries (numbering went back: failover or restore)'
            : `purge log skipped ${decoded.seq - this.#lastSeq - 1} entries (trimmed or lost)`;
        await this.#resync(reason);
        return;
      }
      this.#lastId = id;
      this.#lastSeq = decoded.seq;
      if (decoded.kind === 'reset') this.#emit({ type: 'reset', position: decoded.position, reason: decoded.reason });
      else if (decoded.kind === 'intent') {
        // Not relayed: edges need only the purge that closes it (or its recovery).
        this.#openIntents.set(id, { scope: decoded.scope, seenAt: Date.now(), recovering: false });
      } else {
        if (decoded.closes) this.#openIntents.delete(decoded.closes);
        this.#emit(decoded.message);
      }
    }
    this.#wakeRelayWaiters();
  }

  /** The tail loop: XREAD BLOCK from the last relayed id; checks the log's identity whenever idle. */
  async #tail(startBroken: boolean): Promise<void> {
    let failures = 0;
    let broken = startBroken;
    while (!this.#closed) {
      try {
        if (broken) {
          // Back after a failure: anything may have happened meanwhile; check before reading on.
          await this.#checkIdentity();
          broken = false;
          // An intent's age counts only time the log was reachable: its writer may have been waiting for the log too.
          const now = Date.now();
          for (const intent of this.#openIntents.values()) intent.seenAt = now;
        }
        const issuedAt = Date.now();
        const count = 500;
        const reply = (await this.#tailClient.xread(
          'COUNT',
          count,
          'BLOCK',
          this.#blockMs,
          'STREAMS',
          this.#stream,
          this.#lastId,
        )) as [string, StreamEntry[]][] | null;
        if (this.#closed) return;
        const entries = reply?.[0]?.[1] ?? [];
        if (entries.length > 0) await this.#relayBatch(entries);
        else await this.#checkIdentity();
        this.#live = true;
        if (entries.length < count) this.#confirmedAt = entries.length === 0 ? Date.now() : issuedAt;
        failures = 0;
      } catch (error) {
        if (this.#closed) return;
        this.#live = false;
        broken = true;
        failures += 1;
        // Full jitter over a capped exponential (AWS Architecture Blog, "Exponential Backoff And Jitter").
        const retryInMs = Math.round(Math.random() * Math.min(5_000, 50 * 2 ** failures));
        this.#events.onTailError?.(error, retryInMs);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, retryInMs);
          this.#stopSleep = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    }
  }

  /** Detects a new incarnation or a stream whose last id went behind what was relayed (entries lost). */
  async #checkIdentity(): Promise<void> {
    await this.#refreshWaitReplicas();
    const head = await this.#head(this.#tailClient);
    if (head.incarnation !== this.#incarnation) await this.#resync('purge log restarted (new incarnation)');
    else if (compareStreamIds(head.id, this.#lastId) < 0 || head.seq < this.#lastSeq)
      await this.#resync('purge log lost entries (its head went back: failover or restore)');
  }
}

/** The purge fields of an input, in schema order (drops anything else a caller passed). */
function purgeFields(input: PurgeInput): PurgeInput {
  const { namespace, keys, tags, prefix, version, action, ts } = input;
  return { namespace, keys, tags, prefix, version, action, ts };
}

/**
 * How many replicas the master holding `key` has: `INFO replication`
 * (`connected_slaves`) on standalone; on Cluster, the replicas of the slot
 * owner in `CLUSTER NODES`.
 */
export async function replicasOfLogMaster(client: Redis | Cluster, key: string): Promise<number> {
  if ('isCluster' in client && client.isCluster) {
    const cluster = client as Cluster;
    const slot = calculateSlot(key);
    // Every node is asked with a short bound and in parallel: right after a failover ioredis may still call
    // the dead master 'ready' and queue a command to it until it reconnects, which would stall every append
    // that re-reads the replica count. Views can also lag the failover (the promoted replica still listed under
    // the dead master), so the fewest replicas any answering node sees counts: waiting for a replica that may
    // be gone would fail every write, waiting for one fewer only lasts until the views agree.
    const views = cluster.nodes('all');
    const answers = await Promise.allSettled(
      views.map((node) => withinMs(node.cluster('NODES') as Promise<string>, clusterViewTimeoutMs)),
    );
    const counts = answers.flatMap((a) => (a.status === 'fulfilled' ? [replicasInView(String(a.value), slot)] : []));
    if (counts.length === 0) throw new Error('no Redis Cluster node answered CLUSTER NODES');
    return Math.min(...counts);
  }
  const info = await (client as Redis).info('replication');
  const match = /connected_slaves:(\d+)/.exec(info);
  return match ? Number(match[1]) : 0;
}

/** In one node's `CLUSTER NODES` text: the connected, healthy replicas of the master serving `slot` (0 when that master is failing). */
function replicasInView(text: string, slot: number): number {
  const nodes = text
    .trim()
    .split('\n')
    .map((line) => line.split(' '));
  const master = nodes.find(
    (n) =>
      n[2]?.includes('master') &&
      n.slice(8).some((range) => {
        const [first, last = first] = range.split('-').map(Number);
        return first !== undefined && last !== undefined && slot >= first && slot <= last;
      }),
  );
  if (!master || master[2]?.includes('fail')) return 0;
  return nodes.filter((n) => n[3] === master[0] && !n[2]?.includes('fail') && n[7] === 'connected').length;
}

/** How long one node may take to answer CLUSTER NODES when the replica count is re-read, ms. */
const clusterViewTimeoutMs = 500;

/** `promise`, or a rejection after `ms`. */
async function withinMs<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
