import { Kafka, type KafkaMessage, logLevel, type Producer } from 'kafkajs';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningOrigin } from '../../origin/server.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { type ItemUpdatedEvent, itemUpdatedEventSchema } from '../../shared/hub-events.ts';
import { hs256Issuer, type TokenIssuer } from '../support/jwt.ts';
import { connectProducer, readTopic, uniqueName } from '../support/kafka.ts';
import { cleanEnv, type Spawned, spawnEntry } from '../support/spawn-entry.ts';
import { originFor, ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const brokers = inject('kafkaBrokers');
const redisUrl = inject('redisUrl');

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let producer: Producer;
beforeAll(async () => {
  producer = await connectProducer(brokers);
});
afterAll(async () => {
  await producer?.disconnect();
});

/** Topics of one test, so tests never read each other's events. */
function hubEnv(): Record<string, string> {
  return {
    KAFKA_BROKERS: brokers,
    HUB_EVENTS_ENABLED: 'true',
    KAFKA_ITEM_UPDATED_TOPIC: uniqueName('items'),
    KAFKA_CONFIG_UPDATE_TOPIC: uniqueName('config'),
    KAFKA_CONTROL_TOPIC: uniqueName('control'),
    KAFKA_SESSION_TIMEOUT_MS: '6000',
    KAFKA_HEARTBEAT_INTERVAL_MS: '500',
    HUB_EVENTS_LEASE_MS: '1000',
    LOG_LEVEL: 'silent',
  };
}

/** Every `cache.item.updated` on `topic` from the beginning, validated, with its Kafka message key and partition. */
async function collectItems(topic: string) {
  const seen: { key: string; partition: number; event: ItemUpdatedEvent }[] = [];
  const consumer = new Kafka({ clientId: 'strata-test', brokers: [brokers], logLevel: logLevel.NOTHING }).consumer({
    groupId: uniqueName('items-reader'),
    sessionTimeout: 6_000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
  });
  await consumer.connect();
  // The origin creates the topic; subscribing first would fail on a topic that does not exist yet.
  await eventually(
    'the item topic',
    async () => {
      const admin = new Kafka({ clientId: 'strata-test', brokers: [brokers], logLevel: logLevel.NOTHING }).admin();
      await admin.connect();
      try {
        return (await admin.listTopics()).includes(topic);
      } finally {
        await admin.disconnect();
      }
    },
    20_000,
    100,
  );
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }: { partition: number; message: KafkaMessage }) => {
      const event = itemUpdatedEventSchema.parse(JSON.parse(message.value!.toString('utf8')));
      seen.push({ key: message.key!.toString('utf8'), partition, event });
    },
  });
  cleanups.push(() => consumer.disconnect());
  return {
    seen,
    /** One key's events, first delivery of each id only (at least once allows repeats), in the order received. */
    of(namespace: string, key: string | null) {
      const ids = new Set<string>();
      return seen
        .filter((s) => s.event.data.namespace === namespace && s.event.data.key === key)
        .filter((s) => !ids.has(s.event.id) && ids.add(s.event.id))
        .map((s) => s.event.data);
    },
  };
}

const put = (base: string, ns: string, key: string, body: string, headers: Record<string, string> = {}) =>
  fetch(`${base}/api/v1/cache/${ns}/${key}?ttl=600`, { method: 'PUT', body, headers });

async function putOk(base: string, ns: string, key: string, body: string): Promise<number> {
  const res = await put(base, ns, key, body);
  expect(res.status).toBe(200);
  return ((await res.json()) as { version: number }).version;
}

/** Writes, deletes, a purge and a flush through REST; returns what each key must show, in order. */
async function changeThroughRest(url: string, ns: string) {
  const v1 = await putOk(url, ns, 'a', 'one');
  const v2 = await putOk(url, ns, 'b', 'two');
  const v3 = await putOk(url, ns, 'a', 'three');
  expect((await fetch(`${url}/api/v1/cache/${ns}/a`, { method: 'DELETE' })).status).toBeLessThan(300);
  const batch = await fetch(`${url}/api/v1/cache/${ns}/batch/set`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ ttl: 600, entries: { c: 'C' } }),
  });
  expect(batch.status).toBe(200);
  const purge = await fetch(`${url}/api/v1/purge`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ namespace: ns, keys: ['b'] }),
  });
  expect(purge.status).toBe(200);
  const flush = await fetch(`${url}/api/v1/namespaces/${ns}/flush`, { method: 'POST' });
  expect(flush.status).toBe(200);
  return { v1, v2, v3 };
}

/**
 * Asserts every expected change appears in `events`, in this order (at least
 * once allows more: a crashed or slow writer's change is purged again by its
 * recovery, which is one more event of the key).
 */
function expectInOrder(events: ItemUpdatedEvent['data'][], expected: { operation: string; version?: number }[]) {
  let at = 0;
  for (const want of expected) {
    const found = events.findIndex(
      (e, i) => i >= at && e.operation === want.operation && (want.version === undefined || e.version === want.version),
    );
    expect(found, `${JSON.stringify(want)} after event ${at} of ${JSON.stringify(events)}`).toBeGreaterThanOrEqual(0);
    at = found + 1;
  }
}

async function expectRestChangesPublished(url: string, topic: string, ns: string) {
  const items = await collectItems(topic);
  const { v1, v2, v3 } = await changeThroughRest(url, ns);
  await eventually('the flush event', () => items.of(ns, null).length >= 1, 20_000, 50);
  const a = items.of(ns, 'a');
  expectInOrder(a, [{ operation: 'set', version: v1 }, { operation: 'set', version: v3 }, { operation: 'delete' }]);
  // Never resurrected: nothing after the delete says the key holds a value.
  expect(a.slice(a.findIndex((e) => e.operation === 'delete')).every((e) => e.operation !== 'set')).toBe(true);
  expectInOrder(items.of(ns, 'b'), [{ operation: 'set', version: v2 }, { operation: 'purge' }]);
  expectInOrder(items.of(ns, 'c'), [{ operation: 'set' }]);
  expectInOrder(items.of(ns, null), [{ operation: 'flush' }]);
  // One key's events share one partition (message key `namespace:key`), so its order holds for every consumer.
  const keyed = items.seen.filter((s) => s.event.data.namespace === ns && s.event.data.key === 'a');
  expect(new Set(keyed.map((s) => s.key))).toEqual(new Set([`${ns}:a`]));
  expect(new Set(keyed.map((s) => s.partition)).size).toBe(1);
  for (const s of items.seen) expect(s.event.data.origin_region).toBe('local');
}

describe('cache.item.updated', () => {
  it('on Redis, every acknowledged write, delete, purge and flush through REST is published from the purge log, in per-key order', async () => {
    const env = hubEnv();
    const origin = await originFor({ ...env, REDIS_URL: redisUrl });
    cleanups.push(() => origin.close());
    expect(origin.hubEvents?.publisher.kind).toBe('log');
    await expectRestChangesPublished(origin.url, env.KAFKA_ITEM_UPDATED_TOPIC!, 'items-redis');
  });

  it('on the memory store, the same changes are published from the in-process bus (best effort)', async () => {
    const env = hubEnv();
    const origin = await originFor(env);
    cleanups.push(() => origin.close());
    expect(origin.hubEvents?.publisher.kind).toBe('in-process');
    await expectRestChangesPublished(origin.url, env.KAFKA_ITEM_UPDATED_TOPIC!, 'items-memory');
  });

  it('a publishing replica SIGKILLed mid-stream loses nothing: the other takes over, and each key keeps its order', async () => {
    const env: Record<string, string> = { ...hubEnv(), REDIS_URL: redisUrl, PURGE_LOG_KEY: ownPurgeLogKey() };
    const replicas: { url: string; proc: Spawned }[] = [];
    for (const id of ['replica-a', 'replica-b']) {
      const port = await freePort();
      const proc = spawnEntry('origin/main.ts', cleanEnv({ ...env, ORIGIN_PORT: String(port), ORIGIN_ID: id }));
      cleanups.push(() => proc.stop());
      const url = `http://127.0.0.1:${port}`;
      await eventually(`${id} to listen`, async () => (await fetch(`${url}/health`)).ok, 60_000, 50);
      replicas.push({ url, proc });
    }
    const leads = async (url: string) =>
      /^strata_hub_item_events_leader(\{[^}]*\})? 1$/m.test(await (await fetch(`${url}/metrics`)).text());
    const leader = await eventually(
      'one replica to hold the publishing lease',
      async () => {
        for (const r of replicas) if (await leads(r.url)) return r;
        return null;
      },
      20_000,
      50,
    );
    const survivor = replicas.find((r) => r !== leader)!;
    const items = await collectItems(env.KAFKA_ITEM_UPDATED_TOPIC!);
    const ns = 'takeover';
    const keys = ['k0', 'k1', 'k2', 'k3'];
    const acked = new Map<string, number[]>(keys.map((k) => [k, []]));
    // Writes go to the survivor, so every one of them is acknowledged; the leader dies while they flow.
    let killed = false;
    for (let round = 0; round < 30; round++) {
      for (const key of keys) acked.get(key)!.push(await putOk(survivor.url, ns, key, `${key}-${round}`));
      if (round === 10) {
        leader.proc.child.kill('SIGKILL');
        killed = true;
      }
    }
    expect(killed).toBe(true);
    expect(await leader.proc.exited).toBeNull();
    await eventually('the survivor to take the lease over', () => leads(survivor.url), 20_000, 50);
    await eventually(
      'an event for every acknowledged write',
      () => keys.every((k) => items.of(ns, k).filter((e) => e.version === acked.get(k)!.at(-1)).length > 0),
      30_000,
      100,
    );
    for (const key of keys) {
      const events = items.of(ns, key);
      // Nothing lost, and in order: every acknowledged write's event, in the writes' order.
      expectInOrder(
        events,
        acked.get(key)!.map((version) => ({ operation: 'set', version })),
      );
      const versions = events.map((e) => e.version);
      expect(versions).toEqual([...versions].sort((x, y) => x - y));
    }
  });
});

/** Produces one command with an optional `authorization` header. */
async function command(topic: string, value: unknown, token?: string) {
  await producer.send({
    topic,
    messages: [
      {
        key: 'command',
        value: typeof value === 'string' ? value : JSON.stringify(value),
        headers: token ? { authorization: `Bearer ${token}` } : {},
      },
    ],
  });
}

/** The TTL, seconds, a PUT without `ttl` got. */
async function defaultTtlOf(url: string, ns: string, token: string): Promise<number> {
  const res = await fetch(`${url}/api/v1/cache/${ns}/probe-${crypto.randomUUID().slice(0, 6)}`, {
    method: 'PUT',
    body: 'x',
    headers: { authorization: `Bearer ${token}` },
  });
  expect(res.status).toBe(200);
  const body = (await res.json()) as { expires_at_ms: number; created_at_ms: number };
  return Math.round((body.expires_at_ms - body.created_at_ms) / 1000);
}

const commandCount = async (url: string, token: string | null, labels: string) => {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  const text = await (await fetch(`${url}/metrics`, { headers })).text();
  const line = text.split('\n').find((l) => l.startsWith('strata_hub_commands_total{') && l.includes(labels));
  return Number(line?.split(' ').at(-1) ?? 0);
};

/**
 * Sends `probe` until `seen` holds (a consumer of a new group starts at the
 * end of the topic, so a probe sent before it placed itself is not seen).
 */
async function probeUntil(what: string, probe: () => Promise<void>, seen: () => Promise<boolean>) {
  await eventually(
    what,
    async () => {
      if (await seen()) return true;
      await probe();
      return await eventually(`${what} (probe)`, seen, 3_000, 100).catch(() => false);
    },
    60_000,
    0,
  );
}

describe('config.cache.update and control.cache.action', () => {
  let issuer: TokenIssuer;
  let origin: RunningOrigin;
  let env: Record<string, string>;
  let admin: string;
  beforeAll(async () => {
    issuer = hs256Issuer();
    env = { ...hubEnv(), ...issuer.env, REDIS_URL: redisUrl, CACHE_DEFAULT_TTL: '3600' };
    origin = await originFor(env);
    admin = await issuer.sign();
    await origin.hubEvents!.commands.ready();
    // The origin reads both command topics from here on: it obeyed a first command on each (changing nothing).
    await probeUntil(
      'a reload from the control topic',
      () =>
        command(
          env.KAFKA_CONTROL_TOPIC!,
          { event: 'control.cache.action', data: { action: 'reload', target: 'all' } },
          admin,
        ),
      async () => (await commandCount(origin.url, admin, 'action="reload",result="applied"')) >= 1,
    );
    await probeUntil(
      'a change from the config topic',
      () =>
        command(
          env.KAFKA_CONFIG_UPDATE_TOPIC!,
          {
            event: 'config.cache.update',
            data: { policy: 'defaults', scope: 'all', parameters: { default_ttl: 3600 } },
          },
          admin,
        ),
      async () => (await commandCount(origin.url, admin, 'action="defaults",result="applied"')) >= 1,
    );
  });
  afterAll(async () => {
    await origin?.close();
    await issuer?.close();
  });

  it('a default TTL change applies to the next PUT without ttl; an invalid one is refused, dead-lettered, and the old one stays', async () => {
    const topic = env.KAFKA_CONFIG_UPDATE_TOPIC!;
    expect(await defaultTtlOf(origin.url, 'cfg', admin)).toBe(3600);
    await command(
      topic,
      { event: 'config.cache.update', data: { policy: 'defaults', scope: 'all', parameters: { default_ttl: 42 } } },
      admin,
    );
    await eventually(
      'the new default TTL',
      async () => (await defaultTtlOf(origin.url, 'cfg', admin)) === 42,
      15_000,
      100,
    );
    await command(
      topic,
      { event: 'config.cache.update', data: { policy: 'defaults', scope: 'all', parameters: { default_ttl: -5 } } },
      admin,
    );
    const [dead] = await readTopic(brokers, `${topic}.dlq`, 1);
    expect(dead!.headers['strata-error']).toMatch(/CACHE_DEFAULT_TTL/);
    expect(await commandCount(origin.url, admin, 'result="refused"')).toBe(1);
    expect(await defaultTtlOf(origin.url, 'cfg', admin)).toBe(42);
    // A namespace's profile: its own default TTL, the others keep the global one.
    await command(
      topic,
      { event: 'config.cache.update', data: { policy: 'profile', scope: 'cfg-ns', parameters: { ttl: 77 } } },
      admin,
    );
    await eventually(
      'the profile TTL',
      async () => (await defaultTtlOf(origin.url, 'cfg-ns', admin)) === 77,
      15_000,
      100,
    );
    expect(await defaultTtlOf(origin.url, 'cfg', admin)).toBe(42);
  });

  it('flush, purge and reload run; unauthorised and poison commands go to the dead-letter topic and the partition keeps moving', async () => {
    const topic = env.KAFKA_CONTROL_TOPIC!;
    const auth = { authorization: `Bearer ${admin}` };
    const get = async (key: string) => (await fetch(`${origin.url}/api/v1/cache/ctl/${key}`, { headers: auth })).status;
    for (const key of ['x', 'y']) expect((await put(origin.url, 'ctl', key, key, auth)).status).toBe(200);
    // A reader without cache:flush, a token from nobody, and a message that is not JSON: refused, in that order.
    const reader = await issuer.sign({ scope: ['cache:read'] });
    await command(topic, { event: 'control.cache.action', data: { action: 'flush', target: 'ctl' } }, reader);
    await command(topic, { event: 'control.cache.action', data: { action: 'flush', target: 'ctl' } });
    await command(topic, 'not json', admin);
    await command(
      topic,
      { event: 'control.cache.action', data: { action: 'purge', target: 'ctl', parameters: { keys: ['x'] } } },
      admin,
    );
    await eventually('the purge to run after the refused commands', async () => (await get('x')) === 404, 15_000, 100);
    expect(await get('y')).toBe(200);
    const dead = await readTopic(brokers, `${topic}.dlq`, 3);
    expect(dead.map((m) => m.headers['strata-error']!.split(':')[0])).toEqual([
      'forbidden',
      'unauthenticated',
      'not JSON',
    ]);
    await command(topic, { event: 'control.cache.action', data: { action: 'flush', target: 'ctl' } }, admin);
    await eventually('the flush', async () => (await get('y')) === 404, 15_000, 100);
    const version = (await (await fetch(`${origin.url}/api/v1/namespaces/ctl`, { headers: auth })).json()) as {
      version: number;
    };
    expect(version.version).toBeGreaterThan(0);
    const reloads = () => commandCount(origin.url, admin, 'action="reload",result="applied"');
    const before = await reloads();
    await command(topic, { event: 'control.cache.action', data: { action: 'reload', target: 'all' } }, admin);
    await eventually('the reload', async () => (await reloads()) === before + 1, 15_000, 100);
  });
});

describe('commands with two replicas of a region', () => {
  it('a flush runs once for the region and a reload on every replica; a poison message is dead-lettered once', async () => {
    const env: Record<string, string> = { ...hubEnv(), REDIS_URL: redisUrl, PURGE_LOG_KEY: ownPurgeLogKey() };
    const a = await originFor(env);
    cleanups.push(() => a.close());
    const b = await originFor(env);
    cleanups.push(() => b.close());
    await a.hubEvents!.commands.ready();
    await b.hubEvents!.commands.ready();
    const topic = env.KAFKA_CONTROL_TOPIC!;
    const count = (url: string, labels: string) => commandCount(url, null, labels);
    const reloads = async (url: string) => await count(url, 'action="reload",result="applied"');
    // Both replicas read the topic from here on: each obeyed a first reload.
    await probeUntil(
      'both replicas to read the control topic',
      () => command(topic, { event: 'control.cache.action', data: { action: 'reload', target: 'all' } }),
      async () => (await reloads(a.url)) >= 1 && (await reloads(b.url)) >= 1,
    );
    const before = [await reloads(a.url), await reloads(b.url)];
    await command(topic, 'poison');
    await command(topic, { event: 'control.cache.action', id: 'op-1', data: { action: 'flush', target: 'twice' } });
    await command(topic, { event: 'control.cache.action', data: { action: 'reload', target: 'all' } });
    await eventually(
      'both replicas to reload',
      async () => (await reloads(a.url)) === before[0]! + 1 && (await reloads(b.url)) === before[1]! + 1,
      // Generous: a replica waiting on a peer's claim waits for that peer, on a loaded machine too.
      60_000,
      100,
    );
    const applied =
      (await count(a.url, 'action="flush",result="applied"')) + (await count(b.url, 'action="flush",result="applied"'));
    const skipped =
      (await count(a.url, 'action="flush",result="skipped"')) + (await count(b.url, 'action="flush",result="skipped"'));
    expect([applied, skipped]).toEqual([1, 1]);
    const history = (await (await fetch(`${a.url}/api/v1/namespaces/twice`)).json()) as {
      history: { service_id: string }[];
    };
    expect(history.history.map((h) => h.service_id)).toEqual(['hub:op-1']);
    // Both replicas handled the poison before the reload behind it, and refused it; one wrote the dead letter.
    const kafkaAdmin = new Kafka({ clientId: 'strata-test', brokers: [brokers], logLevel: logLevel.NOTHING }).admin();
    await kafkaAdmin.connect();
    const offsets = await kafkaAdmin.fetchTopicOffsets(`${topic}.dlq`).finally(() => kafkaAdmin.disconnect());
    expect(offsets.map((o) => Number(o.high))).toEqual([1]);
    expect((await readTopic(brokers, `${topic}.dlq`, 1))[0]!.value).toBe('poison');
    expect((await count(a.url, 'result="invalid"')) + (await count(b.url, 'result="invalid"'))).toBe(2);
  });
});
