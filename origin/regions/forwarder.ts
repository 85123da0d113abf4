import type { Cluster, Redis } from 'ioredis';
import type { Message, Producer } from 'kafkajs';
import type { Logger } from 'pino';
import type { InvalidationEvent, RegionResetEvent } from '../../shared/schemas.ts';
import { type LazySender, lazySender } from '../kafka/lazy-sender.ts';
import { type LogGroupBatch, PurgeLogGroupReader } from '../purge/log-group-reader.ts';

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
  /**
   * Producers connected on demand (one or more); each must be idempotent
   * (`idempotent: true`, at most 1 request in flight). An event goes to the
   * one still carrying a send of its message key (behind it, in log order),
   * else to the least busy one (`REGION_FORWARD_PRODUCERS`).
   */
  readonly producers: readonly Producer[];
  /** The shared invalidation topic (`KAFKA_INVALIDATION_TOPIC`). */
  readonly topic: string;
  /** Milliseconds a lease lasts without renewal (`REGION_FORWARD_LEASE_MS`); renewed every third of it. */
  readonly leaseMs: number;
  /** Milliseconds one blocking read waits for new entries; default 1 000. */
  readonly blockMs?: number;
  /** Entries per Kafka send; default 200. */
  readonly batchSize?: number;
  /** Log batches in delivery at once; default 1 with one producer, else twice the producers. */
  readonly maxInFlight?: number;
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
 * - **One forwarder per region, in order, losing nothing**: the log is read
 *   by a {@link PurgeLogGroupReader} (one lease-holding replica, `XREADGROUP`,
 *   `XAUTOCLAIM` on takeover); an entry is acknowledged in the log only after
 *   Kafka acknowledged its event (idempotent producer, `acks=all`), so a
 *   crash re-sends at most the unacknowledged tail, with the same event ids
 *   (`<region>:<incarnation>:<stream id>`), which receivers skip.
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
 * - **Several sends in flight, in order per key**: kafkajs's idempotent
 *   producer has one request in flight, so with one producer a purge logged
 *   while another produce is in flight waits for its acknowledgement (one
 *   round trip). With several producers, the reader hands over the next
 *   batch while earlier ones are in flight; an event goes to the producer
 *   that carries a send of its message key still in flight (so it is
 *   chained behind it, in log order), else to the least busy producer (so a
 *   purge never waits behind another key's produce while a producer is
 *   idle). A failed send holds back every later send of its pass, on every
 *   producer (they fail without being sent), until the reader re-reads its
 *   pending entries, so one key's events never overtake each other, even
 *   across a failure. A loss is a barrier: everything in flight settles, the
 *   reset goes out, then the rest.
 */
export class RegionForwarder {
  readonly #o: RegionForwarderOptions;
  readonly #reader: PurgeLogGroupReader;
  readonly #namespaces: string;
  readonly #lanes: Lane[];
  /**
   * Settles once the previous batch queued its sends (after its reset, if
   * it had a loss): the next batch queues its own after. Never rejects: a
   * failure there (a reset not sent) poisons its pass like a failed send.
   */
  #queued: Promise<void> = Promise.resolve();
  /** Batches in delivery, by the time their first entry was appended (Unix ms). */
  readonly #unsent = new Map<symbol, number>();
  /** The oldest batch whose send failed (and the pass it failed in): unsent until a later pass succeeds. */
  #failed: { since: number; pass: number } | null = null;
  /**
   * The first failure of a pass (a send, or a reset not sent): every later
   * send of that pass fails unsent (a key may have moved producer).
   */
  #poisoned: { pass: number; error: unknown } | null = null;
  /** Message keys with sends queued or in flight: their producer and how many sends. */
  readonly #inFlight = new Map<string, { lane: Lane; sends: number }>();

  constructor(options: RegionForwarderOptions) {
    this.#o = options;
    this.#reader = new PurgeLogGroupReader({
      client: options.client,
      logKey: options.logKey,
      group: forwarderGroup,
      name: 'forwarder',
      replicaId: options.replicaId,
      leaseMs: options.leaseMs,
      blockMs: options.blockMs,
      batchSize: options.batchSize,
      maxInFlight: options.maxInFlight ?? (options.producers.length > 1 ? 2 * options.producers.length : 1),
      deliver: (batch) => this.#forward(batch),
      logger: options.logger,
      label: 'region forwarder',
      verb: 'forwarded',
      events: {
        onLeadership: (leader) => {
          this.#unsent.clear();
          this.#failed = null;
          options.events?.onLeadership?.(leader);
        },
        onError: options.events?.onError,
      },
    });
    this.#namespaces = `${this.#reader.keyPrefix}:namespaces`;
    if (options.producers.length === 0) throw new Error('the region forwarder needs at least one producer');
    this.#lanes = options.producers.map((producer) => ({
      sender: lazySender(producer, options.topic),
      tail: Promise.resolve(),
      queued: 0,
    }));
  }

  /** Starts competing for the lease and forwarding once held. */
  start(): void {
    this.#reader.start();
  }

  status(): ForwarderStatus {
    const s = this.#reader.status();
    return {
      region: this.#o.region,
      leader: s.leader,
      leaderSince: s.leaderSince,
      forwardedSeq: s.deliveredSeq,
      confirmedAt: s.confirmedAt,
      lastError: s.lastError,
      unforwardedSince: s.leader ? this.#unforwardedSince() : 0,
    };
  }

  #unforwardedSince(): number {
    let oldest = this.#failed?.since ?? 0;
    for (const since of this.#unsent.values()) if (oldest === 0 || since < oldest) oldest = since;
    return oldest;
  }

  /**
   * Entries in the log not yet acknowledged by Kafka (the group's `lag` plus
   * its pending entries), for metrics; null when Redis cannot tell.
   */
  backlog(): Promise<number | null> {
    return this.#reader.backlog();
  }

  /** Stops forwarding and releases the lease (a peer takes over at once). Idempotent. */
  async close(): Promise<void> {
    await this.#reader.close();
    await Promise.all(this.#lanes.map((lane) => lane.sender.close()));
  }

  /**
   * Sends one batch (a reset first when something was lost); the reader
   * acknowledges it in the log after. Settles only once every send of the
   * batch settled.
   */
  async #forward(batch: LogGroupBatch): Promise<void> {
    const { firstId, pass } = batch;
    const token = Symbol(firstId);
    // A stream id starts with the ms its entry was appended: the oldest waiting purge's age needs no clock of ours.
    const since = Number(firstId.split('-')[0]) || Date.now();
    this.#unsent.set(token, since);
    try {
      await this.#send(batch);
      this.#unsent.delete(token);
      if (this.#failed && this.#failed.pass < pass) this.#failed = null;
    } catch (error) {
      this.#unsent.delete(token);
      this.#failed = { since: Math.min(this.#failed?.since ?? since, since), pass };
      throw error;
    }
  }

  async #send({ entries, loss, firstId, pass }: LogGroupBatch): Promise<void> {
    const redis = this.#reader.redis;
    const events: { key: string; value: string; ts: number }[] = [];
    const namespaces = new Set<string>();
    for (const d of entries) {
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
    // Recording the namespaces seen is off the path to Kafka: it runs beside the send, and the batch is
    // acknowledged in the log only once both succeeded (a failure re-reads it), so a later reset still names them.
    const seen = namespaces.size > 0 ? redis.sadd(this.#namespaces, ...namespaces) : null;
    seen?.catch(() => {});
    const queued = this.#queued.then(async () => {
      this.#throwIfPoisoned(pass);
      if (loss) {
        // A barrier: everything in flight settles first, and nothing of a failed pass is overtaken by the reset.
        await Promise.all(this.#lanes.map((lane) => lane.tail));
        this.#throwIfPoisoned(pass);
        await seen;
        await this.#sendReset(loss, firstId, pass);
      }
      // One send per producer, queued after the previous batch's (batches come in log order). Producers are
      // chosen here, in batch order, so a key's earlier sends are known to be queued.
      const byLane = new Map<Lane, Message[]>();
      const idle = this.#leastBusy();
      for (const { key, value } of events) {
        const lane = this.#inFlight.get(key)?.lane ?? idle;
        byLane.set(lane, [...(byLane.get(lane) ?? []), { key, value }]);
      }
      return [...byLane].map(([lane, messages]) => this.#queue(lane, messages, pass));
    });
    this.#queued = queued.then(
      () => {},
      (error: unknown) => this.#poison(pass, error),
    );
    const sends = await Promise.allSettled(await queued);
    await seen;
    const failed = sends.find((s) => s.status === 'rejected');
    if (failed) throw failed.reason;
    if (events.length > 0) this.#o.events?.onForwarded?.(events.length, Math.min(...events.map((e) => e.ts)));
  }

  /** Throws the failure that holds back the rest of `pass`; forgets one of an earlier pass (all of it has settled: the reader saw to it). */
  #throwIfPoisoned(pass: number): void {
    if (this.#poisoned && this.#poisoned.pass < pass) this.#poisoned = null;
    if (this.#poisoned) throw this.#poisoned.error;
  }

  /** Holds back the rest of `pass` (its first failure is kept). */
  #poison(pass: number, error: unknown): void {
    if (this.#poisoned?.pass !== pass) this.#poisoned = { pass, error };
  }

  /** The producer with the fewest sends queued or in flight (the first of them on a tie). */
  #leastBusy(): Lane {
    let best = this.#lanes[0]!;
    for (const lane of this.#lanes) if (lane.queued < best.queued) best = lane;
    return best;
  }

  /**
   * Queues `messages` on `lane` after its earlier sends; their keys stay on
   * `lane` until the send settles. A failed send poisons the rest of its
   * pass: later sends, on any producer, fail unsent.
   */
  #queue(lane: Lane, messages: Message[], pass: number): Promise<void> {
    lane.queued += 1;
    for (const { key } of messages) {
      const k = String(key);
      const held = this.#inFlight.get(k);
      if (held) held.sends += 1;
      else this.#inFlight.set(k, { lane, sends: 1 });
    }
    const sent = lane.tail.then(async () => {
      this.#throwIfPoisoned(pass);
      try {
        await lane.sender.send(messages);
      } catch (error) {
        this.#poison(pass, error);
        throw error;
      }
    });
    const settled = sent.catch(() => {});
    lane.tail = settled.then(() => {
      lane.queued -= 1;
      for (const { key } of messages) {
        const k = String(key);
        const held = this.#inFlight.get(k);
        if (held && --held.sends === 0) this.#inFlight.delete(k);
      }
    });
    return sent;
  }

  async #sendReset(reason: string, at: string, pass: number): Promise<void> {
    const redis = this.#reader.redis;
    const seen = await redis.smembers(this.#namespaces);
    const namespaces = seen.length > 0 ? seen.sort() : null;
    const inc = (await redis.hget(this.#reader.meta, 'inc')) ?? 'unknown';
    const event: RegionResetEvent = {
      id: `${this.#o.region}:${inc}:reset:${at}`,
      type: 'reset',
      origin_region: this.#o.region,
      namespaces,
      reason: reason.slice(0, 500),
      timestamp: Date.now(),
    };
    this.#o.logger.warn({ region: this.#o.region, reason, namespaces }, 'region forwarder sends a region-wide reset');
    const key = `reset:${this.#o.region}`;
    await this.#queue(
      this.#inFlight.get(key)?.lane ?? this.#leastBusy(),
      [{ key, value: JSON.stringify(event) }],
      pass,
    );
    this.#o.events?.onReset?.(reason, namespaces);
  }
}

/** One producer of the forwarder and the sends queued on it. */
interface Lane {
  readonly sender: LazySender;
  /** Settles when the last send queued on it settled and its bookkeeping is done; never rejects. */
  tail: Promise<void>;
  /** Sends queued on it or in flight. */
  queued: number;
}
