import type { ConsumerConfig } from 'kafkajs';

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
