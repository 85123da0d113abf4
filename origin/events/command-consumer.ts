import type { Cluster, Redis } from 'ioredis';
import type { EachMessagePayload, Kafka } from 'kafkajs';
import type { Logger } from 'pino';
import { CacheError } from '../../shared/errors.ts';
import { hubAuthHeader } from '../../shared/hub-events.ts';
import { deadLetterOf, dlqReasonHeader } from '../invalidation/kafka-source.ts';
import { consumerRelauncher, flowLatch, groupConsumerConfig } from '../kafka/consumer.ts';
import { lazySender } from '../kafka/lazy-sender.ts';
import { releaseScript } from '../purge/log-group-reader.ts';
import { type CommandDeps, decodeCommand, type Refused } from './commands.ts';

/** What the consumer reports, for logs and metrics (all optional). */
export interface CommandConsumerEvents {
  /** A command was applied here (`skipped`: a region-wide one another replica applied). */
  onApplied?(topic: string, action: string, outcome: 'applied' | 'skipped'): void;
  /** A message was refused and dead-lettered (by this replica or a peer). */
  onRefused?(topic: string, kind: Refused['kind']): void;
}

export interface CommandConsumerOptions extends CommandDeps {
  readonly kafka: Kafka;
  /** `KAFKA_CONFIG_UPDATE_TOPIC`. */
  readonly configTopic: string;
  /** `KAFKA_CONTROL_TOPIC`. */
  readonly controlTopic: string;
  /** This replica's consumer group: every replica reads every message (`<base>-<replica>`). */
  readonly groupId: string;
  /**
   * The store's Redis, where region-wide commands (flush, purge) and dead
   * letters are claimed so one replica of the region runs each; absent (the
   * memory store, one replica): this replica runs them.
   */
  readonly redis?: Redis | Cluster | undefined;
  /** Prefix of the claim keys; keep a hash tag. */
  readonly claimPrefix: string;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly logger: Logger;
  readonly events?: CommandConsumerEvents;
}

/** Consumes `config.cache.update` and `control.cache.action` until stopped. */
export interface CommandConsumer {
  start(): Promise<void>;
  /** Resolves once the consumer joined its group and fetched (messages produced after that are seen). */
  ready(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

// A claimed command's holder must finish within this, else a peer runs it again (at least once).
const claimMs = 30_000;
const doneMs = 86_400_000;
const retryMaxMs = 2_000;

/**
 * Obeys `config.cache.update` and `control.cache.action` (docs/message-hub.md).
 *
 * - **Every replica** reads both topics in a consumer group of its own, so
 *   a policy change or a reload reaches each replica's memory, as a reload
 *   on SIGHUP would.
 * - **Once per region** for what changes the shared store (flush, purge)
 *   and for dead letters: the replica that claims the message
 *   (`SET <claim> <replica> NX PX 30000` on the store's Redis) runs it and
 *   marks it done; the others wait for `done`, or run it when the claim
 *   lapsed (its holder died): at least once.
 * - **At least once, in order**: offsets are committed after the handler
 *   returns; a failure that is not a refusal (the store down) is retried
 *   with back-off and heartbeats, never skipped.
 * - **Poison** (not JSON, invalid, unauthenticated, forbidden, or a
 *   configuration the reload rules refuse): one log line, a metric, and the
 *   message goes to `<topic>.dlq` with {@link dlqReasonHeader}; the
 *   partition moves on and the old configuration stays.
 */
export function commandConsumer(options: CommandConsumerOptions): CommandConsumer {
  const { kafka, logger, redis } = options;
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  const dlq = lazySender(producer, `${options.controlTopic}.dlq`);
  let stopping = false;
  const flowing = flowLatch();
  const replica = `${process.pid}:${crypto.randomUUID().slice(0, 8)}`;

  /** Runs `fn` in one replica of the region per message; false when a peer did it. */
  const once = async (claim: string, fn: () => Promise<void>, p: EachMessagePayload): Promise<boolean> => {
    if (!redis) {
      await fn();
      return true;
    }
    for (;;) {
      if (stopping) throw new Error('stopping');
      if ((await redis.set(claim, replica, 'PX', claimMs, 'NX')) === 'OK') {
        try {
          await fn();
        } catch (error) {
          // Only this replica's own claim: one that lapsed may be a peer's by now.
          await redis.eval(releaseScript, 1, claim, replica).catch(() => {});
          throw error;
        }
        await redis.set(claim, 'done', 'PX', doneMs);
        return true;
      }
      if ((await redis.get(claim)) === 'done') return false;
      await p.heartbeat().catch(() => {});
      await new Promise((r) => setTimeout(r, 200));
    }
  };

  const handle = async (p: EachMessagePayload): Promise<void> => {
    const { topic, partition, message } = p;
    const kind = topic === options.configTopic ? 'config' : 'control';
    // The timestamp too: a topic deleted and made anew reuses offsets, and must not find old claims done.
    const claim = `${options.claimPrefix}:${topic}:${partition}:${message.offset}:${message.timestamp}`;
    const auth = message.headers?.[hubAuthHeader];
    const header = Array.isArray(auth) ? auth[0] : auth;
    const decoded = await decodeCommand(kind, message.value, header?.toString('utf8'), options);
    let refused: Refused | null = 'kind' in decoded ? decoded : null;
    if (!refused && 'run' in decoded) {
      const command = decoded;
      try {
        const ran = command.regionWide
          ? await once(claim, async () => void (await command.run()), p)
          : await command.run().then(() => true);
        options.events?.onApplied?.(topic, command.action, ran ? 'applied' : 'skipped');
        logger.info({ topic, offset: message.offset, action: command.action, ran }, 'hub command obeyed');
        return;
      } catch (error) {
        if (!(error instanceof CacheError && error.code === 'CACHE_004')) throw error;
        refused = { kind: 'refused', reason: error.message.split('\n')[0]! };
      }
    }
    if (!refused) return;
    const reason = refused.reason.slice(0, 500);
    logger.warn({ topic, partition, offset: message.offset, reason }, 'hub command refused; dead-lettered');
    options.events?.onRefused?.(topic, refused.kind);
    await once(`${claim}:dlq`, () => dlq.send([deadLetterOf(topic, partition, message, reason)], `${topic}.dlq`), p);
  };

  /** Retries `handle` until it succeeds; a stop ends it unhandled (the offset is not committed: redelivered). */
  const eachMessage = async (p: EachMessagePayload): Promise<void> => {
    let delay = 100;
    for (;;) {
      try {
        return await handle(p);
      } catch (error) {
        if (stopping) throw error;
        logger.warn(
          { err: error, topic: p.topic, offset: p.message.offset, retryInMs: delay },
          'hub command failed; retrying',
        );
      }
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(delay * 2, retryMaxMs);
      await p.heartbeat().catch(() => {});
    }
  };

  const launch = async (): Promise<void> => {
    const c = kafka.consumer(groupConsumerConfig(options));
    relauncher.adopt(c);
    let joined = false;
    c.on(c.events.GROUP_JOIN, () => {
      joined = true;
    });
    c.on(c.events.FETCH, () => {
      if (!joined) return;
      relauncher.healthy();
      flowing.open();
    });
    await c.connect();
    await c.subscribe({ topics: [options.configTopic, options.controlTopic], fromBeginning: false });
    await c.run({ eachMessage });
  };

  // Rebuilds the consumer after a back-off (a broker unreachable at start, or a crash kafkajs does not restart).
  const relauncher = consumerRelauncher({
    name: 'hub command consumer',
    logger,
    launch,
  });

  return {
    async start() {
      stopping = false;
      relauncher.arm();
      await launch().catch((error: unknown) => {
        logger.warn({ err: error }, 'kafka not reachable for hub commands yet; will keep trying');
        relauncher.schedule();
      });
    },
    async ready(timeoutMs = 30_000) {
      await flowing.wait('hub command consumer did not start', timeoutMs);
    },
    async stop() {
      stopping = true;
      await relauncher.stop();
      await relauncher
        .release()
        ?.disconnect()
        .catch((error: unknown) => logger.warn({ err: error }, 'hub command consumer disconnect'));
      await dlq.close();
    },
  };
}
