import type { Cluster, Redis } from 'ioredis';
import type { Logger } from 'pino';
import { type PurgeLogEntry, purgeLogEntrySchema, purgeLogFormatVersion } from '../../shared/schemas.ts';
import { defaultPurgeLogKey } from './redis-stream-bus.ts';

/** One purge log entry as a group reader hands it on. */
export interface LogGroupEntry {
  /** Its stream id. */
  readonly id: string;
  /** The log's incarnation when it was appended. */
  readonly inc: string;
  /** Its number in that incarnation (1, 2, …). */
  readonly seq: number;
  readonly entry: PurgeLogEntry;
  /** An intent (logged before a change's store write): not a change itself; its purge, or its recovery, follows. */
  readonly intent: boolean;
}

/** What the reader hands to {@link LogGroupReaderOptions.deliver}: one read of the log, oldest first. */
export interface LogGroupBatch {
  /** The readable entries, in log order (intents included: the consumer decides). */
  readonly entries: readonly LogGroupEntry[];
  /**
   * Non-null when entries were lost before this reader saw them (trimmed
   * from the log, a new incarnation, an entry it cannot read): one line. The
   * consumer must say so downstream rather than stay silent.
   */
  readonly loss: string | null;
  /** Stream id of the first entry read (or the time, ms, for a loss found at takeover): names a loss report. */
  readonly firstId: string;
  /**
   * Which pass over the log this batch belongs to: it goes up each time the
   * reader starts again from its pending entries (after a failure, a lost
   * lease or a takeover), and every delivery of an earlier pass has settled
   * by then. A consumer that holds state across deliveries (a send that
   * failed and must hold back later ones) resets it on a new pass.
   */
  readonly pass: number;
}

/** What the reader reports, for logs and metrics (all optional). */
export interface LogGroupReaderEvents {
  /** This replica became (true) or stopped being (false) the group's one reader. */
  onLeadership?(leader: boolean): void;
  /** A step failed (Redis, the consumer's delivery) and is retried after `retryInMs`. */
  onError?(error: unknown, retryInMs: number): void;
}

export interface LogGroupReaderOptions {
  /** The store's Redis client (standalone or Cluster); the reader opens its own connections from it (`duplicate`). */
  readonly client: Redis | Cluster;
  /** The purge log's key (`PURGE_LOG_KEY`); the reader's keys share its hash tag, so one slot on Cluster. */
  readonly logKey?: string | undefined;
  /** The Redis consumer group on the log's stream; one per kind of consumer. */
  readonly group: string;
  /** Names the reader's keys: `<logKey>:<name>:lease` and `<logKey>:<name>:progress`. */
  readonly name: string;
  /** This replica's name in the lease and the consumer group; unique per process. */
  readonly replicaId: string;
  /** Milliseconds a lease lasts without renewal; renewed every third of it. */
  readonly leaseMs: number;
  /** Milliseconds one blocking read waits for new entries; default 1 000. */
  readonly blockMs?: number | undefined;
  /** Entries per read; default 200. */
  readonly batchSize?: number | undefined;
  /**
   * Batches in delivery at once (default 1: the next read waits for the
   * previous delivery). With more, the reader reads and hands over the next
   * batch while earlier ones are still in delivery (on a connection of its
   * own, so a blocking read never delays an acknowledgement); `deliver` is
   * called in log order, and must itself keep whatever order it needs
   * downstream. Batches are still acknowledged in log order only.
   */
  readonly maxInFlight?: number | undefined;
  /**
   * Hands one batch downstream; resolves only once downstream holds it
   * (Kafka acknowledged it). Only then, and once every earlier batch was,
   * are the batch's entries acknowledged in the log (`XACK` and the
   * progress); a rejection stops reading, waits for the deliveries in
   * flight to settle and re-reads this replica's pending entries after a
   * back-off.
   */
  readonly deliver: (batch: LogGroupBatch) => Promise<void>;
  readonly logger: Logger;
  /** Names the reader in log lines (`region forwarder`, `item event publisher`). */
  readonly label: string;
  /** The past participle loss reports use (`trimmed before they were <verb>`); default `delivered`. */
  readonly verb?: string | undefined;
  readonly events?: LogGroupReaderEvents | undefined;
}

/** The reader's state, for `/ready` and metrics. */
export interface LogGroupReaderStatus {
  /** Whether this replica holds the group's lease now. */
  readonly leader: boolean;
  /** Unix ms since when it has held the lease without a break; 0 when it does not hold it. */
  readonly leaderSince: number;
  /** `seq` of the last entry delivered downstream (0 before the first, or when not known here). */
  readonly deliveredSeq: number;
  /** Unix ms of the last successful delivery or idle confirmation by this replica (0 = never). */
  readonly confirmedAt: number;
  /** The last failure, one line; null after a success. */
  readonly lastError: string | null;
}

type StreamEntry = [id: string, fields: string[] | null];

type Decoded = ({ kind: 'entry' } & LogGroupEntry) | { kind: 'lost'; id: string; reason: string };

/** How far through the log: an incarnation and the `seq` of an entry in it. */
type Progress = { inc: string; seq: number };

// Renews the lease only while this replica holds it. KEYS: lease. ARGV: replica, ms.
const renewScript = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0`;
/**
 * Acknowledges entries and stores the progress only while this replica holds
 * the lease: a replica that lost it while delivering must not move the
 * progress back behind what the new holder acknowledged (a false gap at the
 * next takeover). KEYS: stream, progress, lease. ARGV: group, replica, inc
 * ('' = keep), seq, ids….
 */
const acknowledgeScript = `if redis.call('GET', KEYS[3]) ~= ARGV[2] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 5))
if ARGV[3] ~= '' then redis.call('HSET', KEYS[2], 'inc', ARGV[3], 'seq', ARGV[4]) end
return 1`;
/** Lua: deletes a lease (or claim) only while `ARGV[1]` holds it (`GET` = holder). KEYS: lease. ARGV: holder. */
export const releaseScript = `if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`;

/**
 * Reads the region's purge log (a Redis Stream, `redis-stream-bus.ts`)
 * through a consumer group of its own, in one replica at a time, and hands
 * every entry downstream at least once and in log order, losing none
 * silently: the machinery behind the region forwarder and the
 * `cache.item.updated` publisher.
 *
 * - **One reader per region and group**: a lease in the region's Redis
 *   (`SET <key>:<name>:lease <replica> NX PX`, renewed every third of
 *   `leaseMs`); only the holder reads. Every replica runs this and waits.
 * - **In order, losing nothing**: the holder reads with `XREADGROUP`; on
 *   taking over it first claims what the previous holder read but did not
 *   acknowledge (`XAUTOCLAIM`) and delivers that, oldest first. An entry is
 *   acknowledged in the log (`XACK`) only after `deliver` resolved, so a crash
 *   re-delivers at most the unacknowledged tail. With several batches in
 *   delivery at once (`maxInFlight`), a batch is acknowledged only after
 *   every earlier one was, so the stored progress is always a contiguous
 *   prefix of the log and a takeover never sees a gap that is not one.
 * - **Never silent**: entries trimmed before they were delivered, a log that
 *   lost its entries or restarted (new incarnation), or an entry it cannot
 *   read, come to `deliver` as a `loss`.
 *
 * Redis Streams consumer groups: https://redis.io/docs/latest/develop/data-types/streams/#consumer-groups
 */
export class PurgeLogGroupReader {
  readonly #o: LogGroupReaderOptions;
  readonly #redis: Redis | Cluster;
  /** The lease's own connection: a blocking read on {@link #redis} must not delay a renewal. */
  readonly #leaseClient: Redis | Cluster;
  /** Where `XREADGROUP` goes: {@link #redis} with one batch in flight, else a connection of its own. */
  readonly #reads: Redis | Cluster;
  /** `<logKey>:stream`, the log itself. */
  readonly stream: string;
  /** `<logKey>:meta`, the log's bookkeeping hash (incarnation, last seq). */
  readonly meta: string;
  /** `<logKey>:<name>`: prefix of keys a consumer keeps beside the log (same hash tag, same slot). */
  readonly keyPrefix: string;
  readonly #lease: string;
  readonly #progress: string;
  readonly #blockMs: number;
  readonly #batchSize: number;
  readonly #verb: string;
  readonly #maxInFlight: number;
  #leader = false;
  #leaderSince = 0;
  #closed = false;
  #loop: Promise<void> = Promise.resolve();
  #renewTimer: NodeJS.Timeout | undefined;
  #stopSleep: () => void = () => {};
  /** Progress known to this replica: the incarnation and `seq` of the last entry delivered and acknowledged in the log. */
  #delivered: Progress | null = null;
  /** Progress as read: the last entry handed to `deliver` (ahead of {@link #delivered} while batches are in flight). */
  #readProgress: Progress | null = null;
  #confirmedAt = 0;
  #lastError: string | null = null;
  #failures = 0;
  /** The current pass over the log ({@link LogGroupBatch.pass}). */
  #pass = 0;
  /** Deliveries not settled yet (delivered and acknowledged, or failed), oldest first; each never rejects. */
  readonly #inFlight: Promise<void>[] = [];
  /** The last batch's delivery and acknowledgement: the next batch is acknowledged after it. */
  #ackTail: Promise<void> = Promise.resolve();
  /** The first failure of a delivery in flight in this pass: reading stops until they all settled. */
  #failure: { error: unknown } | null = null;
  /** Wakes the loop waiting for a delivery to settle or fail. */
  #wake: () => void = () => {};

  constructor(options: LogGroupReaderOptions) {
    this.#o = options;
    const key = options.logKey ?? defaultPurgeLogKey;
    this.stream = `${key}:stream`;
    this.meta = `${key}:meta`;
    this.keyPrefix = `${key}:${options.name}`;
    this.#lease = `${this.keyPrefix}:lease`;
    this.#progress = `${this.keyPrefix}:progress`;
    this.#blockMs = options.blockMs ?? 1_000;
    this.#batchSize = options.batchSize ?? 200;
    this.#verb = options.verb ?? 'delivered';
    this.#maxInFlight = Math.max(1, Math.floor(options.maxInFlight ?? 1));
    this.#redis = options.client.duplicate();
    this.#redis.on('error', () => {});
    this.#leaseClient = options.client.duplicate();
    this.#leaseClient.on('error', () => {});
    this.#reads = this.#maxInFlight > 1 ? options.client.duplicate() : this.#redis;
    if (this.#reads !== this.#redis) this.#reads.on('error', () => {});
  }

  /** The reader's own connection (not the blocking one's peer), for a consumer's bookkeeping beside the log. */
  get redis(): Redis | Cluster {
    return this.#redis;
  }

  /** Starts competing for the lease and reading once held. */
  start(): void {
    this.#loop = this.#run();
  }

  status(): LogGroupReaderStatus {
    return {
      leader: this.#leader,
      leaderSince: this.#leaderSince,
      deliveredSeq: this.#delivered?.seq ?? 0,
      confirmedAt: this.#confirmedAt,
      lastError: this.#lastError,
    };
  }

  /**
   * Entries in the log not yet delivered (the group's `lag` plus its pending
   * entries), for metrics; null when Redis cannot tell.
   */
  async backlog(): Promise<number | null> {
    try {
      const groups = (await this.#redis.xinfo('GROUPS', this.stream)) as unknown[][];
      for (const group of groups) {
        const fields = new Map<string, unknown>();
        for (let i = 0; i + 1 < group.length; i += 2) fields.set(String(group[i]), group[i + 1]);
        if (fields.get('name') !== this.#o.group) continue;
        const lag = fields.get('lag');
        const pending = Number(fields.get('pending') ?? 0);
        return lag === null || lag === undefined ? null : Number(lag) + pending;
      }
      return null;
    } catch {
      return null;
    }
  }

  /** Stops reading and releases the lease (a peer takes over at once). Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#renewTimer);
    this.#stopSleep();
    this.#wake();
    await Promise.race([this.#loop, new Promise((r) => setTimeout(r, this.#blockMs + 1_000).unref())]);
    if (this.#leader) {
      await this.#leaseClient.eval(releaseScript, 1, this.#lease, this.#o.replicaId).catch(() => {});
      this.#setLeader(false);
    }
    this.#redis.disconnect();
    this.#leaseClient.disconnect();
    if (this.#reads !== this.#redis) this.#reads.disconnect();
  }

  #setLeader(leader: boolean): void {
    if (this.#leader === leader) return;
    this.#leader = leader;
    this.#leaderSince = leader ? Date.now() : 0;
    this.#o.events?.onLeadership?.(leader);
    this.#o.logger.info({ group: this.#o.group, replica: this.#o.replicaId, leader }, `${this.#o.label} lease`);
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
    // Non-null: this replica's pending entries are read (after a takeover or failure), past this stream id.
    let pendingAfter: string | null = '0';
    while (!this.#closed) {
      try {
        if (!this.#leader) {
          // A lost lease: what is in flight settles first (acknowledged in order, or re-read by the next holder).
          await this.#settle();
          if (!(await this.#acquire())) {
            await this.#sleep(Math.max(100, Math.floor(this.#o.leaseMs / 3)));
            continue;
          }
          pendingAfter = '0';
          this.#newPass();
          await this.#takeOver();
        }
        this.#throwFailure();
        if (this.#inFlight.length >= this.#maxInFlight) {
          await new Promise<void>((resolve) => {
            this.#wake = resolve;
          });
          continue;
        }
        const entries = await this.#readLog(pendingAfter);
        this.#throwFailure();
        if (this.#closed || !this.#leader) continue;
        if (pendingAfter !== null && entries.length === 0) {
          pendingAfter = null;
          continue;
        }
        if (entries.length > 0) {
          if (pendingAfter !== null) pendingAfter = entries.at(-1)![0];
          this.#deliver(entries);
        } else if (this.#inFlight.length === 0) {
          this.#confirmed();
        }
      } catch (error) {
        if (this.#closed) break;
        // Stop reading, let what is in flight settle, then re-read what this replica holds but has not
        // acknowledged: the log (not memory) says what is left.
        await this.#settle();
        pendingAfter = '0';
        this.#newPass();
        this.#failures += 1;
        const retryInMs = Math.round(Math.random() * Math.min(5_000, 100 * 2 ** this.#failures));
        this.#lastError = error instanceof Error ? error.message : String(error);
        this.#o.events?.onError?.(error, retryInMs);
        await this.#sleep(retryInMs);
      }
    }
    await this.#settle();
  }

  /** Starts reading again from what the log says (nothing in flight): forgets the last pass's failure. */
  #newPass(): void {
    this.#pass += 1;
    this.#startAt(this.#delivered);
    this.#failure = null;
    this.#ackTail = Promise.resolve();
  }

  /** Reading (re)starts at `progress`, the progress stored in the log: nothing read past it counts. */
  #startAt(progress: Progress | null): void {
    this.#delivered = progress;
    this.#readProgress = progress;
  }

  /** A delivery or idle read succeeded. */
  #confirmed(): void {
    this.#confirmedAt = Date.now();
    this.#lastError = null;
    this.#failures = 0;
  }

  /** Throws the failure of a delivery in flight, if one failed. */
  #throwFailure(): void {
    if (this.#failure) throw this.#failure.error;
  }

  /** Waits until every delivery in flight settled (delivered and acknowledged, or failed). */
  async #settle(): Promise<void> {
    while (this.#inFlight.length > 0) await this.#inFlight[0];
  }

  /** Takes the lease when free; starts renewing it. */
  async #acquire(): Promise<boolean> {
    const ok = await this.#leaseClient.set(this.#lease, this.#o.replicaId, 'PX', this.#o.leaseMs, 'NX');
    if (ok !== 'OK') return false;
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
    this.#o.logger.warn({ group: this.#o.group, reason }, `${this.#o.label} lost its lease`);
    this.#setLeader(false);
  }

  /** Creates the group when missing, reads the progress, and claims the previous holder's pending entries. */
  async #takeOver(): Promise<void> {
    await this.#ensureGroup();
    const progress = await this.#redis.hmget(this.#progress, 'inc', 'seq');
    this.#startAt(progress[0] ? { inc: progress[0], seq: Number(progress[1] ?? 0) } : null);
    let cursor = '0-0';
    let lost = 0;
    do {
      const reply = (await this.#redis.call(
        'XAUTOCLAIM',
        this.stream,
        this.#o.group,
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
    if (lost > 0) {
      const loss = `${lost} purge log entries were trimmed before they were ${this.#verb}`;
      await this.#o.deliver({ entries: [], loss, firstId: `${Date.now()}`, pass: this.#pass });
    }
  }

  async #ensureGroup(): Promise<void> {
    try {
      // From the start of what the log keeps: delivering an entry twice is harmless, skipping one is not.
      // MKSTREAM: the log may hold no entry yet (its bookkeeping hash exists: the purge bus opened first).
      await this.#redis.xgroup('CREATE', this.stream, this.#o.group, '0', 'MKSTREAM');
    } catch (error) {
      if (!String((error as Error).message).includes('BUSYGROUP')) throw error;
      return;
    }
    // A new group: what the log holds now is where reading starts, so a later gap is seen as one.
    if ((await this.#redis.exists(this.#progress)) === 1) return;
    const [first] = (await this.#redis.xrange(this.stream, '-', '+', 'COUNT', 1)) as StreamEntry[];
    const decoded = first ? this.#decode(first) : null;
    if (decoded?.kind === 'entry') {
      await this.#redis.hset(this.#progress, 'inc', decoded.inc, 'seq', decoded.seq - 1);
      this.#startAt({ inc: decoded.inc, seq: decoded.seq - 1 });
    } else {
      const [inc, seq] = await this.#redis.hmget(this.meta, 'inc', 'seq');
      if (!inc) return;
      await this.#redis.hset(this.#progress, 'inc', inc, 'seq', Number(seq ?? 0));
      this.#startAt({ inc, seq: Number(seq ?? 0) });
    }
  }

  /** This replica's pending entries past `pendingAfter` (after a takeover or failure), else new ones (blocking). */
  async #readLog(pendingAfter: string | null): Promise<StreamEntry[]> {
    const args =
      pendingAfter !== null
        ? ['COUNT', this.#batchSize, 'STREAMS', this.stream, pendingAfter]
        : ['COUNT', this.#batchSize, 'BLOCK', this.#blockMs, 'STREAMS', this.stream, '>'];
    let reply: [string, StreamEntry[]][] | null;
    try {
      reply = (await this.#reads.call('XREADGROUP', 'GROUP', this.#o.group, this.#o.replicaId, ...args.map(String))) as
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
    if (list === null) return { kind: 'lost', id, reason: `trimmed before it was ${this.#verb}` };
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
    return { kind: 'entry', id, inc, seq, entry: parsed.data, intent: fields.get('intent') === '1' };
  }

  /**
   * Decodes one read, finds losses (against the progress as read), hands it
   * downstream now, and acknowledges it in the log once delivered and once
   * every earlier batch was acknowledged.
   */
  #deliver(raw: StreamEntry[]): void {
    let loss: string | null = null;
    let progress = this.#readProgress;
    const entries: LogGroupEntry[] = [];
    for (const d of raw.map((e) => this.#decode(e))) {
      if (d.kind === 'lost') {
        loss ??= `purge log entry ${d.id}: ${d.reason}`;
        continue;
      }
      if (progress && d.inc !== progress.inc) loss ??= 'purge log restarted (new incarnation)';
      else if (progress && d.seq > progress.seq + 1)
        loss ??= `${d.seq - progress.seq - 1} purge log entries were trimmed before they were ${this.#verb}`;
      progress = { inc: d.inc, seq: Math.max(d.seq, progress?.inc === d.inc ? progress.seq : 0) };
      const { kind: _, ...entry } = d;
      entries.push(entry);
    }
    this.#readProgress = progress;
    const delivery = this.#o.deliver({ entries, loss, firstId: raw[0]![0], pass: this.#pass });
    // Any failure stops reading at once, even while earlier batches are still in delivery.
    delivery.catch((error: unknown) => {
      this.#failure ??= { error };
      this.#wake();
    });
    const acknowledged = this.#ackTail.then(async () => {
      await delivery;
      await this.#acknowledge(raw, progress);
    });
    this.#ackTail = acknowledged;
    const settled = acknowledged.then(
      () => this.#confirmed(),
      (error: unknown) => {
        this.#failure ??= { error };
      },
    );
    this.#inFlight.push(settled);
    void settled.finally(() => {
      this.#inFlight.splice(this.#inFlight.indexOf(settled), 1);
      this.#wake();
    });
  }

  /** `XACK` and the progress, atomically, while this replica holds the lease. */
  async #acknowledge(raw: StreamEntry[], progress: Progress | null): Promise<void> {
    const done = await this.#redis.eval(
      acknowledgeScript,
      3,
      this.stream,
      this.#progress,
      this.#lease,
      this.#o.group,
      this.#o.replicaId,
      progress?.inc ?? '',
      progress?.seq ?? 0,
      ...raw.map(([id]) => id),
    );
    // The new holder claimed these entries (XAUTOCLAIM) and delivers them again; this replica leaves them be.
    if (Number(done) !== 1) throw new Error('lease lost before the delivered entries were acknowledged');
    this.#delivered = progress;
  }
}
