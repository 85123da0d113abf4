import type { Logger } from 'pino';

/** Sends one offset commit (an `OffsetCommit` request to the group coordinator). */
export type CommitSend = () => Promise<unknown>;

/**
 * Commits a consumer's applied offsets off its fetch loop.
 *
 * kafkajs fetches again only once every batch of the previous fetch has been
 * handled, so a commit awaited inside `eachBatch` holds the next fetch back
 * by one round trip to the coordinator; on a link with 40 ms RTT every event
 * arriving meanwhile waits that long more before it is even asked for.
 * Fetches use a connection of their own (kafkajs keeps one per broker for
 * `Fetch`, one for everything else), so a commit sent in the background
 * overlaps the next long-poll fetch instead.
 *
 * Only offsets whose events were applied are ever handed here, so a commit
 * still follows its apply; a commit that fails or is lost (a crash, a
 * rebalance) only means the next owner re-reads from an older offset, which
 * at-least-once delivery and idempotent purges absorb. Per partition, at most
 * one commit is in flight and the newest waiting offset replaces older ones.
 */
export interface OffsetCommitter {
  /** Commits `next` (the offset after the last applied one) of `partition` in the background. */
  commit(partition: number, next: string, send: CommitSend): void;
  /**
   * Commits `next` of `partition` now, after the commits in flight, and
   * waits for it (a batch cut short by shutdown or rebalance).
   * @throws the commit's error
   */
  commitNow(partition: number, next: string, send: CommitSend): Promise<void>;
  /** Resolves once no background commit is waiting or in flight. */
  flush(): Promise<void>;
}

/** An {@link OffsetCommitter}; failed background commits are logged at `warn` and not retried. */
export function offsetCommitter(logger: Pick<Logger, 'warn'>): OffsetCommitter {
  const waiting = new Map<number, { next: bigint; send: CommitSend }>();
  let running: Promise<void> | null = null;

  const drain = async () => {
    while (waiting.size > 0) {
      const round = [...waiting];
      waiting.clear();
      for (const [partition, { next, send }] of round) {
        await send().catch((error: unknown) =>
          logger.warn({ err: error, partition, offset: String(next) }, 'background offset commit failed'),
        );
      }
    }
  };
  const kick = () => {
    if (running) return;
    // A commit handed in after the drain's last look but before this settles starts the next drain.
    running = drain().finally(() => {
      running = null;
      if (waiting.size > 0) kick();
    });
  };
  const flush = async () => {
    while (running) await running;
  };

  return {
    commit(partition, next, send) {
      const offset = BigInt(next);
      const queued = waiting.get(partition);
      if (!queued || queued.next < offset) waiting.set(partition, { next: offset, send });
      kick();
    },
    async commitNow(partition, next, send) {
      const queued = waiting.get(partition);
      if (queued && queued.next <= BigInt(next)) waiting.delete(partition);
      await flush();
      await send();
    },
    flush,
  };
}
