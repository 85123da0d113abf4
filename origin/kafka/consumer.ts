import type { Consumer, ConsumerConfig, ConsumerCrashEvent } from 'kafkajs';
import type { Logger } from 'pino';

/**
 * The consumer settings every origin consumer group shares: session and
 * heartbeat from the config (`KAFKA_SESSION_TIMEOUT_MS`,
 * `KAFKA_HEARTBEAT_INTERVAL_MS`), fetches that wait at most 500 ms, no topic
 * auto-creation, and kafkajs retries with back-off.
 */
export function groupConsumerConfig(options: {
  readonly groupId: string;
  /** Milliseconds; the broker evicts a silent member after this (broker minimum 6 000). */
  readonly sessionTimeoutMs: number;
  /** Milliseconds between heartbeats. */
  readonly heartbeatIntervalMs: number;
}): ConsumerConfig {
  return {
    groupId: options.groupId,
    sessionTimeout: options.sessionTimeoutMs,
    heartbeatInterval: options.heartbeatIntervalMs,
    // Rebalance deadline: bounded by the session so a restart rejoins quickly.
    rebalanceTimeout: Math.max(options.sessionTimeoutMs, 10_000),
    maxWaitTimeInMs: 500,
    allowAutoTopicCreation: false,
    retry: { initialRetryTime: 200, maxRetryTime: 3_000, retries: 10 },
  };
}

/** Tells waiters when a consumer first fetched: it joined its group and has its offsets. */
export interface FlowLatch {
  /** Marks the consumer as flowing and wakes every waiter. Idempotent. */
  open(): void;
  /**
   * Resolves once {@link FlowLatch.open} was called.
   * @throws Error naming `what` when that takes longer than `timeoutMs` (ms).
   */
  wait(what: string, timeoutMs: number): Promise<void>;
}

/** A {@link FlowLatch}, closed. */
export function flowLatch(): FlowLatch {
  let open = false;
  const waiters = new Set<() => void>();
  return {
    open() {
      if (open) return;
      open = true;
      for (const w of waiters) w();
      waiters.clear();
    },
    async wait(what, timeoutMs) {
      if (open) return;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(done);
          reject(new Error(`${what} within ${timeoutMs} ms`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          resolve();
        };
        waiters.add(done);
      });
    },
  };
}

/** A consumer as {@link consumerRelauncher} sees it (a kafkajs `Consumer` is one): its crash event, and disconnect. */
export interface RelaunchedConsumer {
  readonly events: { readonly CRASH: Consumer['events']['CRASH'] };
  on(event: Consumer['events']['CRASH'], listener: (event: ConsumerCrashEvent) => void): unknown;
  disconnect(): Promise<void>;
}

export interface ConsumerRelauncherOptions {
  /** Names the consumer in log lines (`<name> crashed`, `restarting the <name>`, `<name> start failed`). */
  readonly name: string;
  readonly logger: Logger;
  /**
   * Builds, connects and runs a new consumer, handing it to
   * {@link ConsumerRelauncher.adopt} first; rejects when it could not start
   * (then retried).
   */
  readonly launch: () => Promise<void>;
  /** Milliseconds; the first back-off, and the one after a healthy run. Default 500. */
  readonly baseMs?: number;
  /** Milliseconds; the longest back-off. Default 10 000. */
  readonly capMs?: number;
  /** Uniform in [0, 1); `Math.random` by default (tests pass their own). */
  readonly random?: () => number;
}

/** Holds an origin consumer and rebuilds it after failures; see {@link consumerRelauncher}. */
export interface ConsumerRelauncher<C extends RelaunchedConsumer = Consumer> {
  /** The consumer in use: the last one adopted, unless a relaunch or {@link ConsumerRelauncher.release} took it. */
  readonly current: C | undefined;
  /**
   * Makes `consumer` the current one and watches it: a crash is logged, and
   * one kafkajs does not restart itself (`restart: false`) schedules a
   * relaunch while it is still current.
   */
  adopt(consumer: C): void;
  /**
   * Rebuilds the consumer after the next back-off: a broker unreachable at
   * start, or a crash kafkajs does not restart itself. The current consumer
   * is taken at once and disconnected when the back-off ends. A no-op while
   * a relaunch is pending and after {@link ConsumerRelauncher.stop}.
   */
  schedule(): void;
  /** The consumer ran healthily (joined its group and fetched): the next back-off starts at `baseMs` again. */
  healthy(): void;
  /** Allows relaunches again after a stop (a consumer started anew), from `baseMs`. */
  arm(): void;
  /**
   * No relaunch after this: cancels a pending one (no timer is left) and
   * disconnects a consumer taken for it. The current consumer stays, for its
   * owner to {@link ConsumerRelauncher.release} when it is done with it. A
   * launch already under way is its owner's to abandon (it checks its own
   * stop flag).
   */
  stop(): Promise<void>;
  /** Takes the current consumer (to disconnect it on the owner's stop); none is current after. */
  release(): C | undefined;
}

/**
 * The back-off before relaunch `attempt` (0-based), in ms: exponential from
 * `baseMs`, capped at `capMs`, with "equal jitter" (half fixed, half uniform
 * random), so replicas that lost the same broker do not come back in step
 * while no delay falls below half its step (M. Brooker, "Exponential Backoff
 * And Jitter", AWS Architecture Blog, 2015).
 */
export function relaunchDelayMs(attempt: number, baseMs: number, capMs: number, random: () => number): number {
  const step = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.round(step / 2 + (random() * step) / 2);
}

/**
 * One relaunch loop for the origin's Kafka consumers (invalidations, hub
 * requests, hub commands). kafkajs restarts a consumer itself after
 * retriable errors only; after a non-retriable crash, or when the broker is
 * unreachable at start, the consumer is rebuilt here: the old one is taken
 * at once, disconnected when the back-off ({@link relaunchDelayMs}) ends,
 * and a new one launched; a failed launch schedules the next attempt with a
 * longer back-off.
 */
export function consumerRelauncher<C extends RelaunchedConsumer = Consumer>(
  options: ConsumerRelauncherOptions,
): ConsumerRelauncher<C> {
  const { name, logger } = options;
  const baseMs = options.baseMs ?? 500;
  const capMs = options.capMs ?? 10_000;
  const random = options.random ?? Math.random;
  let attempt = 0;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let current: C | undefined;
  let retiring: C | undefined;

  const release = () => {
    const taken = current;
    current = undefined;
    return taken;
  };

  const schedule = () => {
    if (stopped || timer) return;
    retiring = release() ?? retiring;
    const delay = relaunchDelayMs(attempt, baseMs, capMs, random);
    attempt += 1;
    logger.warn({ retryInMs: delay }, `restarting the ${name}`);
    timer = setTimeout(() => {
      timer = undefined;
      const old = retiring;
      retiring = undefined;
      void (async () => {
        await old?.disconnect().catch(() => {});
        if (stopped) return;
        await options.launch();
      })().catch((error: unknown) => {
        logger.warn({ err: error }, `${name} start failed`);
        schedule();
      });
    }, delay);
  };

  return {
    get current() {
      return current;
    },
    adopt(consumer) {
      current = consumer;
      consumer.on(consumer.events.CRASH, (e) => {
        logger.error({ err: e.payload.error, restart: e.payload.restart }, `${name} crashed`);
        if (!e.payload.restart && current === consumer) schedule();
      });
    },
    schedule,
    healthy() {
      attempt = 0;
    },
    arm() {
      stopped = false;
      attempt = 0;
    },
    async stop() {
      stopped = true;
      clearTimeout(timer);
      timer = undefined;
      const old = retiring;
      retiring = undefined;
      await old?.disconnect().catch(() => {});
    },
    release,
  };
}
