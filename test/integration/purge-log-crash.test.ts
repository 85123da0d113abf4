import { Redis } from 'ioredis';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RedisStreamPurgeBus } from '../../origin/purge/redis-stream-bus.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import {
  connectProducer,
  createTopics,
  invalidation,
  kafkaOriginEnv,
  produceEvents,
  uniqueName,
} from '../support/kafka.ts';
import { cleanEnv, type Spawned, spawnEntry } from '../support/spawn-entry.ts';
import { edgeFor, originFor, ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * A real origin process that SIGKILLs itself at an injected point of a write
 * (`STRATA_FAULT`), beside a healthy replica on the same Redis and purge log,
 * with an edge of the healthy replica holding the old value.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function crashingReplica(fault: string, env: Record<string, string>): Promise<{ url: string; proc: Spawned }> {
  const port = await freePort();
  const proc = spawnEntry('origin/main.ts', cleanEnv({ ...env, ORIGIN_PORT: String(port), STRATA_FAULT: fault }));
  cleanups.push(async () => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) await proc.stop();
  });
  const url = `http://127.0.0.1:${port}`;
  await eventually('the crashing replica to listen', async () => (await fetch(`${url}/health`)).ok, 20_000, 50);
  return { url, proc };
}

const put = (base: string, key: string, body: string) =>
  fetch(`${base}/api/v1/cache/crash/${key}?ttl=600`, { method: 'PUT', body });
const read = async (base: string, key: string) => (await fetch(`${base}/api/v1/cache/crash/${key}`)).text();

/** A replica's own log, with intents recovered after 1 s. */
const regionEnv = () => ({
  REDIS_URL: inject('redisUrl'),
  PURGE_LOG_KEY: ownPurgeLogKey(),
  LOG_LEVEL: 'silent',
  PURGE_INTENT_TIMEOUT_MS: '1000',
});

/**
 * A healthy replica with an edge holding 'old' (a cap of 600 s, far beyond
 * any deadline here: only a purge can end the copy), and a replica that
 * dies at `fault` while writing 'new'.
 */
async function crashMidWrite(fault: string) {
  const env = regionEnv();
  const healthy = await originFor(env);
  cleanups.push(() => healthy.close());
  const edge: RunningEdge = await edgeFor(healthy.url, { EDGE_MAX_TTL_SECONDS: '600' });
  cleanups.push(() => edge.close());
  const crashing = await crashingReplica(fault, env);
  await put(healthy.url, 'k', 'old');
  expect(await read(edge.url, 'k')).toBe('old');
  await expect(put(crashing.url, 'k', 'new')).rejects.toThrow();
  expect(await crashing.proc.exited).toBeNull();
  return { healthy, edge };
}

/** Strata's own count of intents an origin recovered (`strata_purge_intents_recovered_total`). */
const recoveredBy = async (url: string) => {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('strata_purge_intents_recovered_total'));
  return Number(line?.split(' ').at(-1) ?? Number.NaN);
};

describe('an origin killed in the middle of a write', () => {
  it('after the log append, before the acknowledgement: the purge is in the log, so edges of the other replica drop the old value', async () => {
    const { edge } = await crashMidWrite('crash-after-log-append');
    // Not acknowledged, but in the store and in the log: the healthy replica relays the purge.
    await eventually('the edge to serve the new value', async () => (await read(edge.url, 'k')) === 'new', 5_000);
  });

  it('after the store write, before the log append: a replica recovers the open intent, so the edge drops the old value long before its cap', async () => {
    const { healthy, edge } = await crashMidWrite('crash-after-store-write');
    // The store took 'new' but no purge was logged; the intent stays open until the healthy replica recovers it:
    // it logs a purge at the version the store holds, which drops the edge's older copy.
    await eventually('the edge to serve the new value', async () => (await read(edge.url, 'k')) === 'new', 15_000, 50);
    expect(await read(healthy.url, 'k')).toBe('new');
    expect((healthy.bus as RedisStreamPurgeBus).openIntents).toBe(0);
    expect(await recoveredBy(healthy.url)).toBe(1);
  });

  it('after the intent, before the store write: the recovery keeps the value the store holds, which is still current', async () => {
    const { healthy, edge } = await crashMidWrite('crash-after-intent');
    await eventually('the intent to be recovered', async () => (await recoveredBy(healthy.url)) === 1, 15_000, 50);
    // The store never saw 'new': its 'old' is the current value, and the recovery's purge (at its version) keeps it.
    expect((healthy.bus as RedisStreamPurgeBus).openIntents).toBe(0);
    expect(await read(healthy.url, 'k')).toBe('old');
    expect(await read(edge.url, 'k')).toBe('old');
  });

  it('a replica started after every writer died recovers the intents they left open', async () => {
    const env = regionEnv();
    const crashing = await crashingReplica('crash-after-store-write', env);
    await put(crashing.url, 'k', 'old').catch(() => {});
    expect(await crashing.proc.exited).toBeNull();
    // 'old' is in the store with an open intent and no replica alive; the next one to start finds the intent.
    const late = await originFor(env);
    cleanups.push(() => late.close());
    await eventually(
      'the late replica to recover the intent',
      async () => (await recoveredBy(late.url)) === 1,
      15_000,
      50,
    );
    expect((late.bus as RedisStreamPurgeBus).openIntents).toBe(0);
    expect(await read(late.url, 'k')).toBe('old');
  });

  it("a purge from Kafka, killed after the store purge: it logged no intent, and Kafka's redelivery to the group's next member drops the edge's old value", async () => {
    const env = regionEnv();
    const healthy = await originFor(env);
    cleanups.push(() => healthy.close());
    const edge: RunningEdge = await edgeFor(healthy.url, { EDGE_MAX_TTL_SECONDS: '600' });
    cleanups.push(() => edge.close());
    await put(healthy.url, 'k', 'old');
    expect(await read(edge.url, 'k')).toBe('old');
    const brokers = inject('kafkaBrokers');
    const topic = uniqueName('crash-kafka');
    await createTopics(brokers, topic, 1);
    // A short session: the next member takes the partition soon after the killed one's session lapses.
    const kafkaEnv = {
      ...env,
      ...kafkaOriginEnv(brokers, topic, uniqueName('group')),
      KAFKA_SESSION_TIMEOUT_MS: '3000',
      KAFKA_HEARTBEAT_INTERVAL_MS: '300',
    };
    const crashing = await crashingReplica('crash-after-store-write', kafkaEnv);
    const producer = await connectProducer(brokers);
    cleanups.push(() => producer.disconnect());
    await produceEvents(producer, topic, [invalidation({ namespace: 'crash', keys: ['k'] })]);
    expect(await crashing.proc.exited).toBeNull();
    // The log holds the PUT's intent and the purge closing it, nothing of the killed apply: no intent is open for
    // the healthy replica to recover, and the edge still holds its copy.
    const log = new Redis(inject('redisUrl'));
    cleanups.push(async () => void log.disconnect());
    const entries = (await log.xrange(`${env.PURGE_LOG_KEY}:stream`, '-', '+')) as [string, string[]][];
    const isIntent = (fields: string[]) =>
      fields.some((f, n) => n % 2 === 0 && f === 'intent' && fields[n + 1] === '1');
    expect(entries.filter(([, fields]) => isIntent(fields))).toHaveLength(1);
    expect(await read(edge.url, 'k')).toBe('old');
    // Its offset was never committed: the group's next member is given the event again and logs its purge.
    const successor = await originFor(kafkaEnv);
    cleanups.push(() => successor.close());
    await eventually('the edge to drop its copy', async () => (await read(edge.url, 'k')) !== 'old', 30_000, 50);
    expect(await recoveredBy(healthy.url)).toBe(0);
  });

  it('a healthy write closes its intent: nothing is recovered', async () => {
    const env = regionEnv();
    const writer = await originFor(env);
    cleanups.push(() => writer.close());
    const other = await originFor(env);
    cleanups.push(() => other.close());
    const bus = other.bus as RedisStreamPurgeBus;
    for (const key of ['a', 'b', 'c', 'orphan']) expect((await put(writer.url, key, key)).status).toBe(200);
    // The other replica's tail sees each intent and then the purge that closes it.
    await eventually(
      'every intent closed at the other replica',
      () => bus.health().seq >= 8 && bus.openIntents === 0,
      5_000,
    );
    // A control: an intent nobody closes, logged after the four writes, is recovered once sweeps have run past the
    // timeout; the four older, closed intents would have been recovered by then too. Each replica recovers it at most
    // once (a replica that sees the other's recovery first has nothing left to do).
    await (writer.bus as RedisStreamPurgeBus).intend({ namespace: 'crash', keys: ['orphan'], tags: [], prefix: null });
    await eventually(
      'the orphan intent to be recovered',
      () => bus.openIntents === 0 && bus.health().seq >= 10,
      10_000,
      50,
    );
    const recovered = (await recoveredBy(writer.url)) + (await recoveredBy(other.url));
    expect(recovered).toBeGreaterThanOrEqual(1);
    expect(recovered).toBeLessThanOrEqual(2);
    for (const key of ['a', 'b', 'c', 'orphan']) expect(await read(other.url, key)).toBe(key);
  });
});
