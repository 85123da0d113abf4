import type { Cluster, Redis } from 'ioredis';
import type { Producer } from 'kafkajs';
import type { Logger } from 'pino';
import {
  type InvalidationEvent,
  type PurgeLogEntry,
  purgeLogEntrySchema,
  purgeLogFormatVersion,
  type RegionResetEvent,
} from '../../shared/schemas.ts';
import { defaultPurgeLogKey } from '../purge/redis-stream-bus.ts';

/** Consumer group of the forwarder on the region's purge log stream. */
export const forwarderGroup = 'strata-region-forwarder';

/** What the forwarder reports, for logs and metrics (all optional). */
export interface ForwarderEvents {
  /** This replica became (true) or stopped being (false) the region's forwarder. */
  onLeadership?(leader: boolean): void;
  /** Kafka acknowledged `count` events; `oldestTs` is the oldest one's acknowledgement time in this region (Unix ms). */
  onForwarded?(count: number, oldestTs: number): void;
  /** A region-wide reset went to Kafka (entries were lost before they were forwarded). */
  onReset?(reason: string, namespaces: readonly string[] | null): void;
  /** A step failed (Redis, Kafka) and is retried after `retryInMs`. */
  onError?(error: unknown, retryInMs: number): void;
}

export interface RegionForwarderOptions {
  /** The store's Redis client (standalone or Cluster); the forwarder opens its own connection from it (`duplicate`). */
  readonly client: Redis | Cluster;
  /** The purge log's key (`PURGE_LOG_KEY`); the forwarder's keys share its hash tag, so one slot on Cluster. */
  readonly logKey?: string;
  /** This region (`STRATA_REGION`). */
  readonly region: string;
  /** This replica's name in the lease and the consumer group; unique per process. */
  readonly replicaId: string;
  /** A connected-on-demand producer; must be idempotent (`idempotent: true`, at most 1 request in flight). */
  readonly producer: Producer;
  /** The shared invalidation topic (`KAFKA_INVALIDATION_TOPIC`). */
  readonly topic: string;
  /** Milliseconds a lease lasts without renewal (`REGION_FORWARD_LEASE_MS`); renewed every third of it. */
  readonly leaseMs: number;
  /** Milliseconds one blocking read waits for new entries; default 1 000. */
  readonly blockMs?: number;
  /** Entries per Kafka send; default 200. */
  readonly batchSize?: number;
  readonly logger: Logger;
  readonly events?: ForwarderEvents;
}

/** The forwarder's state, for `/ready` and metrics. */
export interface ForwarderStatus {
  readonly region: string;
  /** Whether this replica holds the region's forwarding lease now. */
  readonly leader: boolean;
  /** Unix ms since when it has held the lease without a break; 0 when it does not hold it. */
  readonly leaderSince: number;
  /** `seq` of the last purge log entry Kafka acknowledged (0 before the first, or when not known here). */
  readonly forwardedSeq: number;
  /** Unix ms of the last successful Kafka send or idle confirmation by this replica (0 = never). */
  readonly confirmedAt: number;
  /** The last failure, one line; null after a success. */
  readonly lastError: string | null;
  /**
   * Unix ms when the oldest entry this replica has read but Kafka has not
   * acknowledged yet was appended to the log (its stream id's time); 0 when
   * every entry read was acknowledged, or when this replica does not forward.
   * While Kafka cannot be reached this stays at the first entry waiting.
   */
  readonly unforwardedSince: number;
}

type StreamEntry = [id: string, fields: string[] | null];

// Renews the lease only while this replica holds it. KEYS: lease. ARGV: replica, ms.
const renewScript = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
// Releases the lease only while this replica holds it. KEYS: lease. ARGV: replica.
const releaseScript = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

type Decoded =
  | { kind: 'entry'; id: string; inc: string; seq: number; entry: PurgeLogEntry; intent: boolean }
  | { kind: 'lost'; id: string; reason: string };

/** The message key that keeps one key's events in order on one partition: `namespace:key`, else `namespace`. */
export function invalidationMessageKey(event: Pick<InvalidationEvent, 'namespace' | 'keys'>): string {
  return event.keys.length === 1 ? `${event.namespace}:${event.keys[0]}` : event.namespace;
}

/**
 * Forwards the purges acknowledged in this region, from the region's purge
 * log, to the shared invalidation topic as invalidation events carrying
 * `origin_region`, so other regions purge their stores and edges
 * (ARCHITECTURE.md §6, "Between regions"; the design of Netflix EVCache's
 * cross-region replication and Facebook's mcsqueal, SIGMOD 2013 / NSDI 2013).
 *
 * - **One forwarder per region**: a lease in the region's Redis
 *   (`SET <key>:forwarder:lease <replica> NX PX`, renewed every third of
 *   `leaseMs`); only the holder reads. Every replica runs this and waits.
 * - **In order, losing nothing**: the holder reads the log through a Redis
 *   consumer group (`XREADGROUP`); on taking over it first claims what the
 *   previous holder read but did not acknowledge (`XAUTOCLAIM`) and sends
 *   that, oldest first. An entry is acknowledged in the log (`XACK`) only
 *   after Kafka acknowledged its event (idempotent producer, `acks=all`), so
 *   a crash re-sends at most the unacknowledged tail, with the same event
 *   ids (`<region>:<incarnation>:<stream id>`), which receivers skip.
 * - **Never silent**: entries trimmed from the log before they were
 *   forwarded (Kafka unreachable for longer than the log's retention), a log
 *   that lost its entries or restarted (new incarnation), or an entry it
 *   cannot read, make it send a region-wide `reset` event first, naming the
 *   namespaces the forwarder has seen in this region (`<key>:forwarder:namespaces`),
 *   or null when it has seen none.
 * - A namespace flush in the log crosses as a `reset` of that one
 *   namespace, in log order with the region's other events.
 * - Entries that apply another region's invalidation (`origin_region` set)
 *   are acknowledged without being sent: they came from Kafka.
 */
export class RegionForwarder {
  readonly #o: RegionForwarderOptions;
  readonly #redis: Redis | Cluster;
  /** The lease's own connection: a blocking read on {@link #redis} must not delay a renewal. */
  readonly #leaseClient: Redis | Cluster;
  readonly #stream: string;
  readonly #meta: string;
  readonly #lease: string;
  readonly #progress: string;
  readonly #namespaces: string;
  readonly #blockMs: number;
  readonly #batchSize: number;
  #leader = false;
  #leaderSince = 0;
  #closed = false;
  #loop: Promise<void> = Promise.resolve();
  #renewTimer: NodeJS.Timeout | undefined;
  #stopSleep: () => void = () => {};
  /** Progress known to this replica: the incarnation and `seq` of the last entry Kafka acknowledged. */
  #forwarded: { inc: string; seq: number } | null = null;
  #confirmedAt = 0;
  #lastError: string | null = null;
  #producerConnected = false;
  #unforwardedSince = 0;

  constructor(options: RegionForwarderOptions) {
    this.#o = options;
    const key = options.logKey ?? defaultPurgeLogKey;
    this.#stream = `${key}:stream`;
    this.#meta = `${key}:meta`;
    this.#lease = `${key}:forwarder:lease`;
    this.#progress = `${key}:forwarder:progress`;
    this.#namespaces = `${key}:forwarder:namespaces`;
    this.#blockMs = options.blockMs ?? 1_000;
    this.#batchSize = options.batchSize ?? 200;
    this.#redis = options.client.duplicate();
    this.#redis.on('error', () => {});
    this.#leaseClient = options.client.duplicate();
    this.#leaseClient.on('error', () => {});
  }

  /** Starts competing for the lease and forwarding once held. */
  start(): void {
    this.#loop = this.#run();
  }

  status(): ForwarderStatus {
    return {
      region: this.#o.region,
      leader: this.#leader,
      leaderSince: this.#leaderSince,
      forwardedSeq: this.#forwarded?.seq ?? 0,
      confirmedAt: this.#confirmedAt,
      lastError: this.#lastError,
      unforwardedSince: this.#leader ? this.#unforwardedSince : 0,
    };
  }

  /**
   * Entries in the log not yet acknowledged by Kafka (the group's `lag` plus
   * its pending entries), for metrics; null when Redis cannot tell.
   */
  async backlog(): Promise<number | null> {
    try {
      const groups = (await this.#redis.xinfo('GROUPS', this.#stream)) as unknown[][];
      for (const group of groups) {
        const fields = new Map<string, unknown>();
        for (let i = 0; i + 1 < group.length; i += 2) fields.set(String(group[i]), group[i + 1]);
        if (fields.get('name') !== forwarderGroup) continue;
        const lag = fields.get('lag');
        const pending = Number(fields.get('pending') ?? 0);
        return lag === null || lag === undefined ? null : Number(lag) + pending;
      }
      return null;
    } catch {
      return null;
    }
  }

  /** Stops forwarding and releases the lease (a peer takes over at once). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#renewTimer);
    this.#stopSleep();
    await Promise.race([this.#loop, new Promise((r) => setTimeout(r, this.#blockMs + 1_000).unref())]);
    if (this.#leader) {
      await this.#leaseClient.eval(releaseScript, 1, this.#lease, this.#o.replicaId).catch(() => {});
      this.#setLeader(false);
    }
    this.#redis.disconnect();
    this.#leaseClient.disconnect();
    if (this.#producerConnected) await this.#o.producer.disconnect().catch(() => {});
  }

  #setLeader(leader: boolean): void {
    if (this.#leader === leader) return;
    this.#leader = leader;
    this.#leaderSince = leader ? Date.now() : 0;
    this.#o.events?.onLeadership?.(leader);
    this.#o.logger.info({ region: this.#o.region, replica: this.#o.replicaId, leader }, 'region forwarder lease');
  }

  async #sleep(ms: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#stopSleep = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async #run(): Promise<void> {
    let failures = 0;
    let needPending = true;
    while (!this.#closed) {
      try {
        if (!this.#leader) {
          if (!(await this.#acquire())) {
            await this.#sleep(Math.max(100, Math.floor(this.#o.leaseMs / 3)));
            continue;
          }
          needPending = true;
          await this.#takeOver();
        }
        const entries = await this.#read(needPending);
        if (this.#closed || !this.#leader) continue;
        if (needPending && entries.length === 0) {
          needPending = false;
          continue;
        }
        if (entries.length > 0) {
          // A stream id starts with the ms its entry was appended: the oldest waiting purge's age needs no clock of ours.
          if (this.#unforwardedSince === 0) this.#unforwardedSince = Number(entries[0]![0].split('-')[0]);
          await this.#forward(entries);
          this.#unforwardedSince = 0;
        }
        this.#confirmedAt = Date.now();
        this.#lastError = null;
        failures = 0;
      } catch (error) {
        if (this.#closed) return;
        // Re-read what this replica holds but has not acknowledged: the log (not memory) says what is left.
        needPending = true;
        failures += 1;
        const retryInMs = Math.round(Math.random() * Math.min(5_000, 100 * 2 ** failures));
        this.#lastError = error instanceof Error ? error.message : String(error);
        this.#o.events?.onError?.(error, retryInMs);
        await this.#sleep(retryInMs);
      }
    }
  }

  /** Takes the lease when free; starts renewing it. */
  async #acquire(): Promise<boolean> {
    const ok = await this.#leaseClient.set(this.#lease, this.#o.replicaId, 'PX', this.#o.leaseMs, 'NX');
    if (ok !== 'OK') return false;
    this.#unforwardedSince = 0;
    this.#setLeader(true);
    clearInterval(this.#renewTimer);
    this.#renewTimer = setInterval(
      () => {
        void (
          this.#leaseClient.eval(renewScript, 1, this.#lease, this.#o.replicaId, this.#o.leaseMs) as Promise<number>
        ).then(
          (renewed) => {
            if (Number(renewed) !== 1) this.#lose('lease expired or taken');
          },
          (error: unknown) => this.#lose(`lease renewal failed: ${error instanceof Error ? error.message : error}`),
        );
      },
      Math.max(100, Math.floor(this.#o.leaseMs / 3)),
    );
    this.#renewTimer.unref();
    return true;
  }

  #lose(reason: string): void {
    if (!this.#leader) return;
    clearInterval(this.#renewTimer);
    this.#o.logger.warn({ region: this.#o.region, reason }, 'region forwarder lost its lease');
    this.#setLeader(false);
  }

  /** Creates the group when missing, reads the progress, and claims the previous holder's pending entries. */
  async #takeOver(): Promise<void> {
    await this.#ensureGroup();
    const progress = await this.#redis.hmget(this.#progress, 'inc', 'seq');
    this.#forwarded = progress[0] ? { inc: progress[0], seq: Number(progress[1] ?? 0) } : null;
    let cursor = '0-0';
    let lost = 0;
    do {
      const reply = (await this.#redis.call(
        'XAUTOCLAIM',
        this.#stream,
        forwarderGroup,
        this.#o.replicaId,
        '0',
        cursor,
        'COUNT',
        '500',
      )) as [string, StreamEntry[], string[]?];
      cursor = reply[0];
      lost += reply[2]?.length ?? 0;
    } while (cursor !== '0-0' && !this.#closed);
    // Claimed ids that were trimmed meanwhile are dropped from the group by XAUTOCLAIM: a loss to report.
    if (lost > 0) await this.#sendReset(`${lost} purge log entries were trimmed before they were forwarded`);
  }

  async #ensureGroup(): Promise<void> {
    try {
      // From the start of what the log keeps: forwarding an entry twice is harmless, skipping one is not.
      // MKSTREAM: the log may hold no entry yet (its bookkeeping hash exists: the purge bus opened first).
      await this.#redis.xgroup('CREATE', this.#stream, forwarderGroup, '0', 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
      return;
    }
    // A new group: what the log holds now is where forwarding starts, so a later gap is seen as one.
    if ((await this.#redis.exists(this.#progress)) === 1) return;
    const [first] = (await this.#redis.xrange(this.#stream, '-', '+', 'COUNT', 1)) as StreamEntry[];
    const decoded = first ? this.#decode(first) : null;
    if (decoded?.kind === 'entry') {
      await this.#redis.hset(this.#progress, 'inc', decoded.inc, 'seq', decoded.seq - 1);
      this.#forwarded = { inc: decoded.inc, seq: decoded.seq - 1 };
    } else {
      const [inc, seq] = await this.#redis.hmget(this.#meta, 'inc', 'seq');
      if (!inc) return;
      await this.#redis.hset(this.#progress, 'inc', inc, 'seq', Number(seq ?? 0));
      this.#forwarded = { inc, seq: Number(seq ?? 0) };
    }
  }

  /** This replica's pending entries (after a takeover or failure), else new ones (blocking). */
  async #read(pending: boolean): Promise<StreamEntry[]> {
    const args = pending
      ? ['COUNT', this.#batchSize, 'STREAMS', this.#stream, '0']
      : ['COUNT', this.#batchSize, 'BLOCK', this.#blockMs, 'STREAMS', this.#stream, '>'];
    let reply: [string, StreamEntry[]][] | null;
    try {
      reply = (await this.#redis.call('XREADGROUP', 'GROUP', forwarderGroup, this.#o.replicaId, ...args.map(String))) as
        | [string, StreamEntry[]][]
        | null;
    } catch (error) {
      // The log was deleted and made anew (a wiped Redis): the group went with it.
      if (String((error as Error).message).includes('NOGROUP')) {
        await this.#ensureGroup();
        return [];
      }
      throw error;
    }
    return reply?.[0]?.[1] ?? [];
  }

  #decode([id, list]: StreamEntry): Decoded {
    if (list === null) return { kind: 'lost', id, reason: 'trimmed before it was forwarded' };
    const fields = new Map<string, string>();
    for (let i = 0; i + 1 < list.length; i += 2) fields.set(list[i]!, list[i + 1]!);
    const inc = fields.get('inc') ?? '';
    const seq = Number(fields.get('seq'));
    if (!inc || !Number.isSafeInteger(seq)) return { kind: 'lost', id, reason: 'entry without inc/seq' };
    if (fields.get('v') !== purgeLogFormatVersion)
      return { kind: 'lost', id, reason: `entry of format version ${fields.get('v') ?? '(none)'}` };
    let json: unknown;
    try {
      json = JSON.parse(fields.get('data') ?? '');
    } catch {
      return { kind: 'lost', id, reason: 'entry data is not JSON' };
    }
    const parsed = purgeLogEntrySchema.safeParse(json);
    if (!parsed.success) return { kind: 'lost', id, reason: 'entry data is not a purge' };
    // An intent (logged before a change's store write) is not a purge: its change's purge, or its recovery, follows.
    return { kind: 'entry', id, inc, seq, entry: parsed.data, intent: fields.get('intent') === '1' };
  }

  /** Sends one batch (a reset first when something was lost), then acknowledges it in the log. */
  async #forward(raw: StreamEntry[]): Promise<void> {
    const decoded = raw.map((e) => this.#decode(e));
    let loss: string | null = null;
    let progress = this.#forwarded;
    const events: { key: string; value: string; ts: number }[] = [];
    const namespaces = new Set<string>();
    for (const d of decoded) {
      if (d.kind === 'lost') {
        loss ??= `purge log entry ${d.id}: ${d.reason}`;
        continue;
      }
      if (progress && d.inc !== progress.inc) loss ??= 'purge log restarted (new incarnation)';
      else if (progress && d.seq > progress.seq + 1)
        loss ??= `${d.seq - progress.seq - 1} purge log entries were trimmed before they were forwarded`;
      progress = { inc: d.inc, seq: Math.max(d.seq, progress?.inc === d.inc ? progress.seq : 0) };
      const { entry } = d;
      if (d.intent) continue;
      if (entry.origin_region !== undefined && entry.origin_region !== this.#o.region) continue;
      namespaces.add(entry.namespace);
      if (entry.action === 'flush') {
        // A namespace flush (a version bump) crosses as a reset of that one namespace: other regions flush it too.
        const flush: RegionResetEvent = {
          id: `${this.#o.region}:${d.inc}:${d.id}`,
          type: 'reset',
          origin_region: this.#o.region,
          namespaces: [entry.namespace],
          reason: 'namespace flushed',
          timestamp: entry.ts,
        };
        events.push({ key: entry.namespace, value: JSON.stringify(flush), ts: entry.ts });
        continue;
      }
      if (entry.keys.length === 0 && entry.tags.length === 0 && entry.prefix === null) continue;
      const event: InvalidationEvent = {
        id: `${this.#o.region}:${d.inc}:${d.id}`,
        namespace: entry.namespace,
        keys: entry.keys,
        tags: entry.tags,
        prefix: entry.prefix,
        action: entry.action,
        timestamp: entry.ts,
        origin_region: this.#o.region,
      };
      events.push({ key: invalidationMessageKey(event), value: JSON.stringify(event), ts: entry.ts });
    }
    if (namespaces.size > 0) await this.#redis.sadd(this.#namespaces, ...namespaces);
    if (loss) await this.#sendReset(loss, raw[0]![0]);
    if (events.length > 0) {
      await this.#send(events.map(({ key, value }) => ({ key, value })));
      this.#o.events?.onForwarded?.(events.length, Math.min(...events.map((e) => e.ts)));
    }
    const tx = this.#redis.multi().xack(this.#stream, forwarderGroup, ...raw.map(([id]) => id));
    if (progress) tx.hset(this.#progress, 'inc', progress.inc, 'seq', progress.seq);
    const results = await tx.exec();
    const failed = results?.find(([error]) => error);
    if (!results || failed) throw failed?.[0] ?? new Error('purge log acknowledgement failed');
    this.#forwarded = progress;
  }

  async #send(messages: { key: string; value: string }[]): Promise<void> {
    if (!this.#producerConnected) {
      await this.#o.producer.connect();
      this.#producerConnected = true;
    }
    await this.#o.producer.send({ topic: this.#o.topic, acks: -1, messages });
  }

  async #sendReset(reason: string, at = `${Date.now()}`): Promise<void> {
    const seen = await this.#redis.smembers(this.#namespaces);
    const namespaces = seen.length > 0 ? seen.sort() : null;
    const inc = (await this.#redis.hget(this.#meta, 'inc')) ?? 'unknown';
    const event: RegionResetEvent = {
      id: `${this.#o.region}:${inc}:reset:${at}`,
      type: 'reset',
      origin_region: this.#o.region,
      namespaces,
      reason: reason.slice(0, 500),
      timestamp: Date.now(),
    };
    this.#o.logger.warn({ region: this.#o.region, reason, namespaces }, 'region forwarder sends a region-wide reset');
    await this.#send([{ key: `reset:${this.#o.region}`, value: JSON.stringify(event) }]);
    this.#o.events?.onReset?.(reason, namespaces);
  }
}
