import type { Message, Producer } from 'kafkajs';

/** Sends to one topic through a producer connected on first use. */
export interface LazySender {
  /**
   * Sends `messages` with `acks=all` (every in-sync replica holds them before
   * this resolves) to `topic` (default: the sender's), connecting the producer first when needed.
   * @throws the producer's error; the next call connects again when the connect failed.
   */
  send(messages: readonly Message[], topic?: string): Promise<void>;
  /** Disconnects the producer when it was connected. Idempotent. */
  close(): Promise<void>;
}

/**
 * A {@link LazySender} over `producer` to `topic`: an unreachable broker
 * delays the first send, never the origin's start.
 */
export function lazySender(producer: Producer, topic: string): LazySender {
  let connected = false;
  return {
    async send(messages, to = topic) {
      if (!connected) {
        await producer.connect();
        connected = true;
      }
      await producer.send({ topic: to, acks: -1, messages: [...messages] });
    },
    async close() {
      if (!connected) return;
      connected = false;
      await producer.disconnect().catch(() => {});
    },
  };
}
