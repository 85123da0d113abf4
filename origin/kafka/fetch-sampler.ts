import type { KafkaMessage } from 'kafkajs';
import type { Logger } from 'pino';
import type { KafkaConnection } from './client.ts';
import { batchMessages, type FetchedPartition, type KafkaCluster, kafkaCluster } from './cluster.ts';

/** What a {@link FetchSamplerOptions.deliver} did with the messages it was handed. */
export interface SampleDelivery {
  /** How many leading messages are done (applied or skipped); the sampler goes on after them. */
  readonly done: number;
  /**
   * Why the rest is not done: `leave` = the first one is not the sampler's
   * to handle (left to the group consumer: the sampler waits at it until
   * {@link FetchSampler.advance} moves past it); `retry` = it failed (read
   * again after a back-off). Absent when every message is done.
   */
  readonly stop?: 'leave' | 'retry';
}

export interface FetchSamplerOptions {
  /** Brokers, client id and security (the same as the group consumer's). */
  readonly connection: KafkaConnection;
  readonly topic: string;
  /** The group whose committed offsets a partition starts from when it is assigned. */
  readonly groupId: string;
  /** Milliseconds between two sampling fetches arriving at the broker (> 0). */
  readonly intervalMs: number;
  /** Most connections (lanes) kept at once, each with at most one fetch in flight; default 16. */
  readonly maxLanes?: number;
  readonly logger: Logger;
  /**
   * Hands over records of one partition, in offset order, at and after the
   * partition's position. One call at a time per partition; the next starts
   * after it ended.
   */
  readonly deliver: (partition: number, messages: readonly KafkaMessage[]) => Promise<SampleDelivery>;
  /** Builds one lane's cluster; {@link kafkaCluster} over `connection` by default (unit tests pass a fake). */
  readonly cluster?: () => KafkaCluster;
}

/** Reads the newest records of a consumer's partitions between its long-poll fetches; see {@link fetchSampler}. */
export interface FetchSampler {
  /**
   * The partitions the group consumer owns now (from its `GROUP_JOIN`); an
   * empty list while it owns none (rebalancing, stopped). A partition newly
   * assigned starts at the group's committed offset or, without one, at the
   * consumer's first hand-over ({@link FetchSampler.advance}).
   */
  assign(partitions: readonly number[]): void;
  /** The group consumer handed over `partition`'s records below `offset`: the sampler reads on from there at least. */
  advance(partition: number, offset: string): void;
  /**
   * Reads nothing more of `partition` until the group consumer hands over
   * records past `offset` (its apply of them failed and it reads them again):
   * later records must not overtake them.
   */
  hold(partition: number, offset: string): void;
  /** Whether `partition` is held ({@link FetchSampler.hold}, or at a record left to the consumer). */
  held(partition: number): boolean;
  /** Starts the sampling timer; connections are opened as the fetches need them. */
  start(): void;
  /** Stops sampling, waits for the deliveries in hand, and closes every connection. */
  stop(): Promise<void>;
  /** Connections open now (for tests and logs). */
  readonly lanes: number;
}

/** Kafka's READ_COMMITTED isolation, the consumer's default. */
const readCommitted = 1;
const defaultMaxLanes = 16;
/** Bytes one partition may answer per sampling fetch (the consumer's default per partition). */
const partitionMaxBytes = 1_048_576;
/** Messages handed to one delivery (the consumer applies in chunks of the same size). */
const chunkSize = 64;
/** Records read ahead of their delivery per partition before the partition is read no further. */
const maxQueued = 4 * chunkSize;
const retryMinMs = 100;
const retryMaxMs = 2_000;

/** The greater of two offsets (Math.max takes no bigint). */
const later = (a: bigint, b: bigint): bigint => (a > b ? a : b);

interface Lane {
  readonly cluster: KafkaCluster;
  busy: boolean;
  /** Not used before this time (ms since epoch) after an error. */
  retryAt: number;
  failures: number;
}

interface PartitionState {
  /** The next offset to read; null until the starting offset is known. */
  position: bigint | null;
  /** The group consumer's hand-over mark, kept while the start is being looked up. */
  advanced: bigint;
  /** No committed offset: the partition starts at the consumer's first hand-over, never at a start of its own. */
  awaitsHandOver: boolean;
  /** Records read and not yet delivered, in offset order, all at or after `position`'s start. */
  queued: KafkaMessage[];
  delivering: boolean;
  /** Nothing is read while set: until the group consumer hands over records past this offset. */
  holdThrough: bigint | null;
  retryAt: number;
  failures: number;
}

/**
 * Keeps a fetch of the group consumer's partitions arriving at the broker
 * every `intervalMs`, beside the consumer's long-poll.
 *
 * After the broker answers a long-poll fetch, no fetch of that consumer is at
 * the broker until the answer has crossed the link and the next fetch has
 * crossed back: one round trip, during which a new record waits. Each
 * sampling fetch asks for the partitions' records from the sampler's
 * position with `maxWaitTime` 0, so the broker answers at once, and goes out
 * on a connection whose previous fetch has returned: the sampler opens
 * connections (lanes, each a kafkajs cluster of its own, with the consumer's
 * TLS and SASL settings) as the ticks find none free, up to `maxLanes`,
 * which settles at about round trip ÷ interval + 1 (more while the process
 * is slow to read answers). A record then waits at most about one interval
 * for a fetch instead of up to one round trip. Cost:
 * 1000 ÷ `intervalMs` fetches per second per replica to the partitions'
 * leaders, and up to two connections per lane and broker (one for metadata,
 * one for fetches).
 *
 * Per partition, the position is the greater of the group's committed
 * offset and the end of the last batch the consumer handed over
 * ({@link FetchSampler.advance}); records below it are dropped, so
 * overlapping answers deliver each record once. A partition the group has
 * no committed offset for (a new group's first join) is not read until the
 * consumer's first hand-over: a log end (or start) the sampler looked up
 * itself could lie past where the consumer started, and a record between
 * the two would then be applied by the consumer after later records of its
 * key that the sampler had applied already.
 * Deliveries of one partition run one at a time, in offset order. A
 * delivery that `leave`s a record holds the partition there until the
 * consumer moves past it; one that fails is read again after a back-off.
 * Errors are logged (once per failing streak) and backed off, never thrown:
 * the group consumer stays the path that commits.
 */
export function fetchSampler(options: FetchSamplerOptions): FetchSampler {
  const { topic, logger, intervalMs } = options;
  const maxLanes = options.maxLanes ?? defaultMaxLanes;
  const log = logger.child({ component: 'fetch-sampler', topic });
  const lanes: Lane[] = [];
  let opening: Promise<void> | null = null;
  const partitions = new Map<number, PartitionState>();
  /** Bumped on every assignment: an offset lookup of an older one is dropped. */
  let generation = 0;
  let timer: NodeJS.Timeout | undefined;
  let running = false;
  /** Deliveries under way: stop() waits for them (fetches and lookups are cut off instead). */
  const delivering = new Set<Promise<void>>();

  const openLane = () => {
    if (opening || lanes.length >= maxLanes) return;
    opening = (async () => {
      const cluster = options.cluster?.() ?? kafkaCluster(options.connection, log);
      try {
        await cluster.connect();
        await cluster.addTargetTopic(topic);
        if (!running) {
          await cluster.disconnect();
          return;
        }
        lanes.push({ cluster, busy: false, retryAt: 0, failures: 0 });
        if (lanes.length === 1 || lanes.length === maxLanes) log.info({ lanes: lanes.length }, 'fetch sampler lanes');
      } catch (error) {
        await cluster.disconnect().catch(() => {});
        log.warn({ err: error }, 'fetch sampler could not connect; retrying');
        await new Promise((r) => setTimeout(r, retryMaxMs).unref());
      }
    })().finally(() => {
      opening = null;
    });
  };

  const backOff = (state: { retryAt: number; failures: number }) => {
    state.failures += 1;
    state.retryAt = Date.now() + Math.min(retryMaxMs, retryMinMs * 2 ** Math.min(state.failures - 1, 10));
  };

  /** Looks up where the partitions of assignment `gen` start, once a lane is open. */
  const lookUpStarts = async (gen: number, wanted: number[]) => {
    let delay = retryMinMs;
    while (running && gen === generation) {
      const lane = lanes[0];
      if (!lane) {
        openLane();
        await new Promise((r) => setTimeout(r, 50).unref());
        continue;
      }
      try {
        const coordinator = await lane.cluster.findGroupCoordinator({ groupId: options.groupId });
        const committed = await coordinator.offsetFetch({
          groupId: options.groupId,
          topics: [{ topic, partitions: wanted.map((partition) => ({ partition })) }],
        });
        if (gen !== generation) return;
        for (const p of committed.responses.find((r) => r.topic === topic)?.partitions ?? []) {
          const state = partitions.get(p.partition);
          if (!state || state.position !== null) continue;
          const start = BigInt(p.offset);
          if (start >= 0n) state.position = later(start, state.advanced);
          // No committed offset: the consumer's start is the only one; it comes with its first hand-over.
          else if (state.advanced >= 0n) state.position = state.advanced;
          else state.awaitsHandOver = true;
        }
        return;
      } catch (error) {
        log.warn({ err: error, retryInMs: delay }, 'fetch sampler could not read the group offsets; retrying');
        await new Promise((r) => setTimeout(r, delay).unref());
        delay = Math.min(delay * 2, retryMaxMs);
      }
    }
  };

  const pump = (partition: number, state: PartitionState) => {
    if (state.delivering || state.queued.length === 0 || !running) return;
    state.delivering = true;
    const run = (async () => {
      try {
        while (running && partitions.get(partition) === state && state.queued.length > 0) {
          const chunk = state.queued.slice(0, chunkSize);
          const result = await options.deliver(partition, chunk);
          if (partitions.get(partition) !== state) return;
          const rest = chunk[result.done];
          if (result.stop === undefined || rest === undefined) {
            // advance() may have dropped some of the queue meanwhile: drop by offset, not by count.
            const end = BigInt(chunk[chunk.length - 1]!.offset);
            state.queued = state.queued.filter((m) => BigInt(m.offset) > end);
            state.failures = 0;
            continue;
          }
          state.queued = [];
          const at = BigInt(rest.offset);
          // The consumer already has it in hand: read on after its hand-over instead.
          if (at < state.advanced) {
            state.position = state.advanced;
            return;
          }
          // Read again from the first record not done: held there (left to the consumer) or after a back-off.
          state.position = at;
          if (result.stop === 'leave') state.holdThrough = later(at, state.holdThrough ?? -1n);
          else backOff(state);
          return;
        }
      } catch (error) {
        log.warn({ err: error, partition }, 'fetch sampler delivery failed');
        state.queued = [];
        backOff(state);
      } finally {
        state.delivering = false;
      }
    })();
    delivering.add(run);
    void run.finally(() => delivering.delete(run));
  };

  /** One sampling fetch on `lane` of every partition ready to read, one request per leader. */
  const sample = async (lane: Lane) => {
    const now = Date.now();
    const wanted = new Map<number, bigint>();
    for (const [partition, state] of partitions) {
      if (state.position === null || state.holdThrough !== null || state.retryAt > now) continue;
      // Bounded memory: a partition whose deliveries lag (a slow store) is read again once they caught up.
      if (state.queued.length >= maxQueued) continue;
      wanted.set(partition, state.position);
    }
    if (wanted.size === 0) return;
    const leaders = lane.cluster.findLeaderForPartitions(topic, [...wanted.keys()]);
    await Promise.all(
      Object.entries(leaders).map(async ([nodeId, owned]) => {
        const broker = await lane.cluster.findBroker({ nodeId });
        const answer = await broker.fetch({
          maxWaitTime: 0,
          minBytes: 1,
          maxBytes: partitionMaxBytes * owned.length,
          isolationLevel: readCommitted,
          topics: [
            {
              topic,
              partitions: owned.map((partition) => ({
                partition,
                fetchOffset: String(wanted.get(partition)),
                maxBytes: partitionMaxBytes,
              })),
            },
          ],
        });
        for (const response of answer.responses) {
          if (response.topicName !== topic) continue;
          for (const fetched of response.partitions) take(fetched, wanted.get(fetched.partition));
        }
      }),
    );
  };

  /**
   * Queues an answer's records at or after the partition's read position
   * (answers overlap; each record once). An answer read from past the
   * position (the position moved back: a retry, a new assignment) would
   * leave a gap, and is dropped.
   */
  const take = (fetched: FetchedPartition, from: bigint | undefined) => {
    const state = partitions.get(fetched.partition);
    if (!state || state.position === null || state.holdThrough !== null) return;
    if (from === undefined || from > state.position) return;
    // Queued records end just before `position`: only what lies at or after it is new.
    const messages = batchMessages(topic, String(state.position), fetched);
    const last = messages[messages.length - 1];
    if (!last) return;
    state.queued.push(...messages);
    state.position = BigInt(last.offset) + 1n;
    pump(fetched.partition, state);
  };

  const tick = () => {
    if (!running || partitions.size === 0) return;
    const now = Date.now();
    const lane = lanes.find((l) => !l.busy && l.retryAt <= now);
    if (!lane) {
      // Every lane's fetch is still out: one round trip needs one more.
      openLane();
      return;
    }
    lane.busy = true;
    void sample(lane)
      .then(
        () => {
          lane.failures = 0;
        },
        (error: unknown) => {
          if (lane.failures === 0) log.warn({ err: error }, 'fetch sampler fetch failed; backing off');
          backOff(lane);
          void lane.cluster.refreshMetadata().catch(() => {});
        },
      )
      .finally(() => {
        lane.busy = false;
      });
  };

  return {
    get lanes() {
      return lanes.length;
    },
    assign(assigned) {
      generation += 1;
      const keep = new Set(assigned);
      for (const partition of partitions.keys()) if (!keep.has(partition)) partitions.delete(partition);
      const fresh = assigned.filter((p) => !partitions.has(p));
      for (const partition of fresh)
        partitions.set(partition, {
          position: null,
          advanced: -1n,
          awaitsHandOver: false,
          queued: [],
          delivering: false,
          holdThrough: null,
          retryAt: 0,
          failures: 0,
        });
      if (fresh.length > 0 && running) void lookUpStarts(generation, fresh);
    },
    advance(partition, offset) {
      const state = partitions.get(partition);
      if (!state) return;
      const at = BigInt(offset);
      if (at > state.advanced) state.advanced = at;
      if (state.holdThrough !== null && at > state.holdThrough) state.holdThrough = null;
      if (state.position === null && state.awaitsHandOver) state.position = at;
      else if (state.position !== null && at > state.position) {
        state.position = at;
        state.queued = [];
      } else if (state.queued.length > 0 && BigInt(state.queued[0]!.offset) < at) {
        // The consumer has these in hand: no need to deliver them again.
        state.queued = state.queued.filter((m) => BigInt(m.offset) >= at);
      }
    },
    hold(partition, offset) {
      const state = partitions.get(partition);
      if (!state) return;
      state.holdThrough = later(BigInt(offset), state.holdThrough ?? -1n);
      state.queued = [];
    },
    held(partition) {
      return partitions.get(partition)?.holdThrough != null;
    },
    start() {
      if (running) return;
      running = true;
      openLane();
      timer = setInterval(tick, intervalMs);
      timer.unref();
      const waiting = [...partitions].filter(([, s]) => s.position === null).map(([p]) => p);
      if (waiting.length > 0) void lookUpStarts(generation, waiting);
    },
    async stop() {
      running = false;
      clearInterval(timer);
      timer = undefined;
      generation += 1;
      partitions.clear();
      while (delivering.size > 0) await Promise.allSettled([...delivering]);
      await Promise.allSettled(lanes.splice(0).map((l) => l.cluster.disconnect()));
    },
  };
}
