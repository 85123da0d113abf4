import type { KafkaMessage, Message } from 'kafkajs';

/** Header on a dead-lettered message: why it was rejected (one line). */
export const dlqReasonHeader = 'strata-error';
/** Headers on a dead-lettered message naming where it came from. */
export const dlqOriginHeaders = {
  topic: 'strata-source-topic',
  partition: 'strata-source-partition',
  offset: 'strata-source-offset',
} as const;

/**
 * The dead-letter copy of a consumed message: its key, value and headers,
 * plus {@link dlqReasonHeader} and {@link dlqOriginHeaders}.
 */
export function deadLetterMessage(topic: string, partition: number, message: KafkaMessage, reason: string): Message {
  return {
    key: message.key,
    value: message.value,
    headers: {
      ...message.headers,
      [dlqReasonHeader]: reason,
      [dlqOriginHeaders.topic]: topic,
      [dlqOriginHeaders.partition]: String(partition),
      [dlqOriginHeaders.offset]: message.offset,
    },
  };
}

/** A consumer's "it is consuming" latch: opened once, awaited by `ready()` with a deadline. */
export interface FlowLatch {
  readonly open: boolean;
  /** Opens the latch and wakes every waiter; later calls do nothing. */
  markOpen(): void;
  /**
   * Resolves once the latch is open.
   * @throws Error `<what> did not start within <timeoutMs> ms` after `timeoutMs` milliseconds.
   */
  wait(timeoutMs: number, what: string): Promise<void>;
}

/** A new, closed {@link FlowLatch}. */
export function flowLatch(): FlowLatch {
  let open = false;
  const waiters = new Set<() => void>();
  return {
    get open() {
      return open;
    },
    markOpen() {
      if (open) return;
      open = true;
      for (const w of waiters) w();
      waiters.clear();
    },
    async wait(timeoutMs, what) {
      if (open) return;
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(done);
          reject(new Error(`${what} did not start within ${timeoutMs} ms`));
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
