/**
 * SIGKILL of a region's forwarding replica while it holds purge log entries
 * it has read but Kafka has not acknowledged. Each replica of region A
 * reaches this file's own Kafka through a Toxiproxy proxy of its own (the
 * broker advertises one listener per replica), so the forwarder's link alone
 * can be cut: it keeps its lease (in Redis) and its read entries stay pending
 * in the consumer group until it is killed and the other replica claims them.
 */
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { forwarderGroup } from '../../origin/regions/forwarder.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { type RunningKafka, startKafka } from '../../scripts/services/kafka.ts';
import { type RunningToxiproxy, setProxyEnabled, startToxiproxy } from '../../scripts/services/toxiproxy.ts';
import { createTopics, uniqueName } from '../support/kafka.ts';
import { distinctIds, firstOccurrencesPerKey, increasing, topicEvents } from '../support/region-topic.ts';
import { cleanEnv, type Spawned, spawnEntry } from '../support/spawn-entry.ts';
import { ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

let kafka: RunningKafka;
let toxiproxy: RunningToxiproxy;
let redis: Redis;
let topic: string;
const logKey = ownPurgeLogKey();
const stream = `${logKey}:stream`;
const replicas: { id: string; url: string; proc: Spawned }[] = [];

async function replica(id: string, brokers: string): Promise<{ id: string; url: string; proc: Spawned }> {
  const port = await freePort();
  const proc = spawnEntry(
    'origin/main.ts',
    cleanEnv({
      ORIGIN_PORT: String(port),
      ORIGIN_ID: id,
      STRATA_REGION: 'a',
      REDIS_URL: inject('redisUrl'),
      PURGE_LOG_KEY: logKey,
      KAFKA_BROKERS: brokers,
      KAFKA_INVALIDATION_TOPIC: topic,
      KAFKA_GROUP_ID: uniqueName('a'),
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      KAFKA_HEARTBEAT_INTERVAL_MS: '500',
      REGION_FORWARD_LEASE_MS: '1500',
      LOG_LEVEL: 'silent',
    }),
  );
  const url = `http://127.0.0.1:${port}`;
  await eventually(`${id} to listen`, async () => (await fetch(`${url}/health`).catch(() => null))?.ok, 30_000, 100);
  return { id, url, proc };
}

const forwards = async (url: string): Promise<boolean> =>
  ((await (await fetch(`${url}/ready`)).json()) as { region?: { forwarder?: boolean } }).region?.forwarder === true;

/** Stream ids the forwarder group holds as read by `consumer` but not acknowledged (not yet sent to Kafka). */
async function pendingOf(consumer: string): Promise<string[]> {
  const rows = (await redis.xpending(stream, forwarderGroup, '-', '+', 10_000, consumer)) as [string, ...unknown[]][];
  return rows.map(([id]) => id);
}

beforeAll(async () => {
  const dir = inject('serversDir');
  const [p1, p2] = await Promise.all([freePort(), freePort()]);
  [kafka, toxiproxy] = await Promise.all([
    startKafka({
      dir: join(dir, uniqueName('kafka-forwarder-kill')),
      extraListeners: [
        { name: 'REPLICA_1', protocol: 'PLAINTEXT', advertised: `127.0.0.1:${p1}` },
        { name: 'REPLICA_2', protocol: 'PLAINTEXT', advertised: `127.0.0.1:${p2}` },
      ],
    }),
    startToxiproxy({ dir: join(dir, uniqueName('toxiproxy-kill')) }),
  ]);
  for (const [name, port] of [
    ['REPLICA_1', p1],
    ['REPLICA_2', p2],
  ] as const) {
    await toxiproxy.client.createProxy({
      name: `kafka-${name.toLowerCase()}`,
      listen: `127.0.0.1:${port}`,
      upstream: `127.0.0.1:${kafka.listenerPorts[name]}`,
    });
  }
  topic = uniqueName('inv-kill');
  await createTopics(kafka.brokers, topic);
  redis = new Redis(inject('redisUrl'));
  // The first replica starts alone, so it is the one holding the lease.
  replicas.push(await replica('kill-r1', `127.0.0.1:${p1}`));
  await eventually('kill-r1 forwards', () => forwards(replicas[0]!.url), 30_000, 100);
  replicas.push(await replica('kill-r2', `127.0.0.1:${p2}`));
}, 120_000);

afterAll(async () => {
  await Promise.all(replicas.map((r) => r.proc.stop()));
  redis?.disconnect();
  await Promise.all([kafka?.stop(), toxiproxy?.stop()]);
});

describe('the forwarding replica is killed with entries read but not acknowledged', () => {
  it('the other replica claims them with XAUTOCLAIM: every purge reaches the topic, in log order per key', async () => {
    const [leader, survivor] = replicas as [(typeof replicas)[0], (typeof replicas)[0]];
    const ns = uniqueName('xr-kill-pending');
    const put = async (i: number) => {
      const res = await fetch(`${survivor.url}/api/v1/cache/${ns}/k${i % 5}?ttl=600`, { method: 'PUT', body: `v${i}` });
      expect(res.status).toBe(200);
    };
    const writes = 60;
    // Forwarding works before the cut.
    for (let i = 0; i < 10; i++) await put(i);
    await topicEvents(kafka.brokers, topic, ns, (seen) => distinctIds(seen) >= 10);

    await setProxyEnabled(toxiproxy.client, 'kafka-replica_1', false);
    for (let i = 10; i < 35; i++) await put(i);
    const held = await eventually(
      'kill-r1 holds unacknowledged entries',
      async () => {
        const ids = await pendingOf(leader.id);
        return ids.length > 0 ? ids : undefined;
      },
      20_000,
      50,
    );
    for (let i = 35; i < writes; i++) await put(i);
    // Still the leader (its lease lives in Redis), still holding them: now kill it.
    expect(await forwards(leader.url)).toBe(true);
    expect((await pendingOf(leader.id)).length).toBeGreaterThan(0);
    leader.proc.child.kill('SIGKILL');
    expect(await leader.proc.exited).toBeNull();

    await eventually('the survivor forwards', () => forwards(survivor.url), 15_000, 100);
    const events = await topicEvents(kafka.brokers, topic, ns, (seen) => distinctIds(seen) >= writes, 40_000);
    expect(distinctIds(events)).toBe(writes);
    // The purges the killed replica held (its intents are not sent) are among them, under their log ids.
    const ids = new Set(events.map((e) => String(e.event.id).split(':').pop()));
    const heldPurges: string[] = [];
    for (const id of held) {
      const [entry] = (await redis.xrange(stream, id, id)) as [string, string[]][];
      const fields = entry?.[1] ?? [];
      const intent = fields.includes('intent') && fields[fields.indexOf('intent') + 1] === '1';
      if (!intent) heldPurges.push(id);
    }
    expect(heldPurges.length).toBeGreaterThan(0);
    for (const id of heldPurges) expect(ids.has(id)).toBe(true);
    // Per key, first occurrences follow the log's order; nothing is left pending in the group.
    const perKey = firstOccurrencesPerKey(events);
    expect(perKey.size).toBe(5);
    for (const sequence of perKey.values()) expect(increasing(sequence)).toBe(true);
    await eventually('nothing left pending', async () => (await pendingOf(survivor.id)).length === 0, 15_000, 100);
    expect(await pendingOf(leader.id)).toEqual([]);
  });
});
