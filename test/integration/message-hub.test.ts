import { randomUUID } from 'node:crypto';
import { type Consumer, Kafka, logLevel, type Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createHubClient, type HubClient } from '../../client/hub.ts';
import { hubTopicNames } from '../../origin/hub/from-config.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { type HubRequest, type HubResponse, hubEventVersion } from '../../shared/hub.ts';
import { hs256Issuer, type TokenIssuer } from '../support/jwt.ts';
import { uniqueName } from '../support/kafka.ts';
import { cleanEnv, spawnEntry } from '../support/spawn-entry.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * The Message Hub against real Kafka and Redis: an origin with
 * `HUB_ENABLED=true` under its own topic prefix, the typed hub client, and a
 * raw producer and read_committed reader for what the client never sends.
 */
const brokers = inject('kafkaBrokers');
const redisUrl = inject('redisUrl');
const prefix = `${uniqueName('hub')}.`;
const topics = hubTopicNames(prefix);
const groupId = uniqueName('hub-group');

let issuer: TokenIssuer;
let origin: RunningOrigin;
let client: HubClient;
let producer: Producer;
let reader: Consumer;
/** Every committed response on both response topics and the DLQ, in arrival order. */
const seen: { topic: string; key: string; value: string; headers: Record<string, string> }[] = [];

const hubEnv = () => ({
  REDIS_URL: redisUrl,
  KAFKA_BROKERS: brokers,
  HUB_ENABLED: 'true',
  HUB_TOPIC_PREFIX: prefix,
  HUB_GROUP_ID: groupId,
  KAFKA_FROM_BEGINNING: 'true',
  KAFKA_SESSION_TIMEOUT_MS: '6000',
  KAFKA_HEARTBEAT_INTERVAL_MS: '500',
  HUB_REPLY_TOPICS: `${topics.operationResponse},${topics.managementResponse},${prefix}replies`,
  HUB_ALIASES: `${prefix}cache.char.set=set:character,${prefix}cache.char.get=get:character`,
  ...issuer.env,
});

beforeAll(async () => {
  issuer = hs256Issuer();
  origin = await originFor(hubEnv());
  await origin.hub!.ready();
  client = await createHubClient({
    brokers: [brokers],
    service: 'svc-test',
    token: await issuer.sign(),
    topicPrefix: prefix,
  });
  const kafka = new Kafka({ clientId: 'hub-test', brokers: [brokers], logLevel: logLevel.NOTHING });
  producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [
      { topic: `${prefix}replies`, numPartitions: 1 },
      { topic: `${prefix}control`, numPartitions: 1 },
    ],
  });
  await admin.disconnect();
  reader = kafka.consumer({ groupId: uniqueName('hub-reader'), maxWaitTimeInMs: 50 });
  await reader.connect();
  for (const topic of [
    topics.operationResponse,
    topics.managementResponse,
    topics.dlq,
    `${prefix}replies`,
    `${prefix}control`,
  ]) {
    await reader.subscribe({ topic, fromBeginning: true });
  }
  await reader.run({
    eachMessage: async ({ topic, message }) => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(message.headers ?? {})) headers[k] = String(Array.isArray(v) ? v[0] : v);
      seen.push({ topic, key: message.key?.toString() ?? '', value: message.value?.toString() ?? '', headers });
    },
  });
}, 60_000);

afterAll(async () => {
  await client?.close();
  await reader?.disconnect();
  await producer?.disconnect();
  await origin?.close();
  await issuer?.close();
});

const rest = async (path: string, init: RequestInit = {}, token?: string) =>
  await fetch(`${origin.url}${path}`, {
    ...init,
    headers: { Authorization: `Bearer ${token ?? (await issuer.sign())}`, ...(init.headers as Record<string, string>) },
  });

/** A request envelope as a foreign service would write it. */
function raw(data: Record<string, unknown>, event: HubRequest['event'] = 'cache.operation.request') {
  return {
    event,
    version: hubEventVersion,
    data: {
      service: 'svc-raw',
      correlation_id: randomUUID(),
      timestamp: new Date().toISOString(),
      request_ttl_ms: 10_000,
      ...data,
    },
  };
}

/** Produces `request` with `headers`, and waits for its one response. */
async function send(request: ReturnType<typeof raw>, headers: Record<string, string> = {}, key = 'k') {
  const topic = request.event === 'cache.operation.request' ? topics.operationRequest : topics.managementRequest;
  await producer.send({ topic, messages: [{ key, value: JSON.stringify(request), headers }] });
  return await responseTo(request.data.correlation_id);
}

const responsesTo = (id: string) => seen.filter((m) => m.headers['correlation-id'] === id);
async function responseTo(id: string) {
  const [first] = await eventually(
    `a response to ${id}`,
    () => (responsesTo(id).length > 0 ? responsesTo(id) : null),
    20_000,
  );
  return { topic: first!.topic, response: JSON.parse(first!.value) as HubResponse };
}

const bearer = async (claims: Parameters<TokenIssuer['sign']>[0] = {}) => ({
  authorization: `Bearer ${await issuer.sign(claims)}`,
});

describe('the hub and REST answer the same operations alike', () => {
  it('a value set through the hub reads the same through REST, and one PUT through REST reads the same through the hub', async () => {
    const ns = uniqueName('eq').replace(/[^a-z0-9_-]/g, '');
    const bytes = new Uint8Array([0, 1, 2, 250, 255]);
    const written = await client.set(ns, 'bin', bytes, { ttl: 600, contentType: 'application/x-test' });
    const res = await rest(`/api/v1/cache/${ns}/bin`);
    expect(res.status).toBe(200);
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes);
    expect(res.headers.get('Content-Type')).toBe('application/x-test');
    expect(res.headers.get('ETag')).toContain(String(written.version));

    const put = await rest(`/api/v1/cache/${ns}/text?ttl=600`, {
      method: 'PUT',
      body: 'hello',
      headers: { 'Content-Type': 'text/plain' },
    });
    const putBody = (await put.json()) as { version: number; expires_at_ms: number };
    const read = await client.get(ns, 'text');
    expect(new TextDecoder().decode(read!.value)).toBe('hello');
    expect(read!.contentType).toBe('text/plain');
    expect(read!.version).toBe(putBody.version);
    expect(read!.expiresAtMs).toBe(putBody.expires_at_ms);
  });

  it('a delete through either interface is a miss through the other', async () => {
    const ns = uniqueName('del').replace(/[^a-z0-9_-]/g, '');
    await client.set(ns, 'a', 'one', { ttl: 600 });
    expect(await client.delete(ns, 'a')).toMatchObject({ deleted: true });
    expect((await rest(`/api/v1/cache/${ns}/a`)).status).toBe(404);
    expect(await client.delete(ns, 'a')).toMatchObject({ deleted: false });

    await rest(`/api/v1/cache/${ns}/b?ttl=600`, { method: 'PUT', body: 'two' });
    expect(await client.get(ns, 'b')).not.toBeNull();
    expect((await rest(`/api/v1/cache/${ns}/b`, { method: 'DELETE' })).status).toBe(200);
    expect(await client.get(ns, 'b')).toBeNull();
  });

  it('set_many and get_many match the REST batches both ways', async () => {
    const ns = uniqueName('batch').replace(/[^a-z0-9_-]/g, '');
    const stored = await client.setMany(ns, { a: 'A', b: 'B' }, { ttl: 600 });
    expect(stored.storedCount).toBe(2);
    const got = await rest(`/api/v1/cache/${ns}/batch/get`, {
      method: 'POST',
      body: JSON.stringify({ keys: ['a', 'b', 'c'] }),
      headers: { 'Content-Type': 'application/json' },
    });
    expect(await got.json()).toMatchObject({ values: { a: 'A', b: 'B' }, missing_keys: ['c'] });

    await rest(`/api/v1/cache/${ns}/batch/set`, {
      method: 'POST',
      body: JSON.stringify({ entries: { c: 'C', d: 'D' }, ttl: 600 }),
      headers: { 'Content-Type': 'application/json' },
    });
    const many = await client.getMany(ns, ['a', 'c', 'd', 'zz']);
    expect(Object.fromEntries([...many].map(([k, v]) => [k, new TextDecoder().decode(v)]))).toEqual({
      a: 'A',
      c: 'C',
      d: 'D',
    });
  });

  it('get_many names the values served stale and why, as the REST batch get does', async () => {
    const ns = uniqueName('stale').replace(/[^a-z0-9_-]/g, '');
    for (const [key, control] of [
      ['fresh', 'max-age=600'],
      ['graced', 'max-age=1, stale-while-revalidate=300'],
    ]) {
      const put = await rest(`/api/v1/cache/${ns}/${key}`, {
        method: 'PUT',
        body: key,
        headers: { 'Cache-Control': control! },
      });
      expect(put.status).toBe(200);
    }
    const keys = ['fresh', 'graced', 'absent'];
    const viaRest = async () =>
      (await (
        await rest(`/api/v1/cache/${ns}/batch/get`, {
          method: 'POST',
          body: JSON.stringify({ keys, encoding: 'utf8' }),
          headers: { 'Content-Type': 'application/json' },
        })
      ).json()) as Record<string, unknown>;
    const viaHub = async () =>
      (await send(raw({ operation: 'get_many', namespace: ns, keys, encoding: 'utf8' }), await bearer())).response.data;
    // Every value fresh: neither answer has stale_reasons.
    const [freshRest, freshHub] = [await viaRest(), await viaHub()];
    expect(freshRest.stale_reasons).toBeUndefined();
    expect(freshHub).toMatchObject({ status: 'success', values: freshRest.values, missing_keys: ['absent'] });
    expect(freshHub.stale_reasons).toBeUndefined();
    const stale = await eventually('the graced value to be served stale', async () => {
      const answer = await viaRest();
      return answer.stale_reasons ? answer : null;
    });
    expect(stale.stale_reasons).toEqual({ graced: 'revalidating' });
    const hub = await viaHub();
    expect(hub).toMatchObject({
      status: 'success',
      values: stale.values,
      missing_keys: stale.missing_keys,
      encoding: stale.encoding,
      stale_reasons: stale.stale_reasons,
    });
  });

  it('a flush through either interface hides the namespace from the other, and both see the same version', async () => {
    const ns = uniqueName('flush').replace(/[^a-z0-9_-]/g, '');
    await client.set(ns, 'a', 'one', { ttl: 600 });
    const flushed = await client.flush(ns);
    expect(flushed.namespace).toBe(ns);
    expect(flushed.service_id).toBe('svc-test');
    expect((await rest(`/api/v1/cache/${ns}/a`)).status).toBe(404);
    const info = (await (await rest(`/api/v1/namespaces/${ns}`)).json()) as { version: number };
    expect(info.version).toBe(flushed.version);

    await rest(`/api/v1/cache/${ns}/b?ttl=600`, { method: 'PUT', body: 'two' });
    const viaRest = (await (await rest(`/api/v1/namespaces/${ns}/flush`, { method: 'POST' })).json()) as {
      version: number;
    };
    expect(viaRest.version).toBeGreaterThan(flushed.version);
    expect(await client.get(ns, 'b')).toBeNull();
    const stats = (await client.stats(ns)) as { namespace: string; version: number; writes: number };
    const restStats = (await (await rest(`/api/v1/namespaces/${ns}/stats`)).json()) as typeof stats;
    expect(stats).toMatchObject({ namespace: ns, version: viaRest.version, writes: restStats.writes });
    const all = (await client.stats()) as { namespaces: { namespace: string }[] };
    expect(all.namespaces.map((n) => n.namespace)).toContain(ns);
  });

  it('reload through the hub answers as POST /api/v1/reload does', async () => {
    const viaRest = await (await rest('/api/v1/reload', { method: 'POST' })).json();
    expect(await client.reload()).toEqual(viaRest);
  });
});

describe('npm run hub', () => {
  const cli = async (args: string[], env: Record<string, string>) => {
    const proc = spawnEntry('scripts/hub.ts', cleanEnv(env), args);
    const code = await proc.exited;
    return { code, out: proc.stdout(), err: proc.stderr() };
  };

  it('sets, gets, flushes and reports a miss through the hub, with brokers and token from the environment', async () => {
    const env = { KAFKA_BROKERS: brokers, STRATA_TOKEN: await issuer.sign(), HUB_TOPIC_PREFIX: prefix };
    const ns = uniqueName('cli').replace(/[^a-z0-9_-]/g, '');
    const set = await cli(['set', ns, 'char:1', 'hello', '--ttl', '600'], env);
    expect(set.code).toBe(0);
    expect(JSON.parse(set.out)).toMatchObject({ version: expect.any(Number) });
    expect(await cli(['get', ns, 'char:1'], env)).toMatchObject({ code: 0, out: 'hello\n' });
    expect(JSON.parse((await cli(['flush', ns], env)).out)).toMatchObject({ namespace: ns });
    const miss = await cli(['get', ns, 'char:1'], env);
    expect(miss.code).toBe(1);
    expect(miss.err).toContain('CACHE_001');
    const refused = await cli(['get', ns, 'char:1'], { ...env, STRATA_TOKEN: await issuer.forge() });
    expect(refused).toMatchObject({ code: 1, err: expect.stringContaining('AUTH_001') });
    const noBrokers = await cli(['get', ns, 'k'], { STRATA_TOKEN: 'x' });
    expect(noBrokers).toMatchObject({ code: 2, err: expect.stringContaining('KAFKA_BROKERS') });
  }, 60_000);
});

describe('requests the hub refuses get one error response, never silence', () => {
  it('no token, a forged token, an expired token and a token without the grant', async () => {
    const ns = 'authz';
    const set = () => raw({ operation: 'set', namespace: ns, key: 'k', value: 'dg==', ttl: 60 });
    expect((await send(set())).response.data.error?.code).toBe('AUTH_001');
    const forged = { authorization: `Bearer ${await issuer.forge()}` };
    expect((await send(set(), forged)).response.data.error?.code).toBe('AUTH_001');
    expect((await send(set(), await bearer({ expiresIn: -120 }))).response.data.error?.code).toBe('AUTH_001');
    expect((await send(set(), await bearer({ scope: ['cache:read'] }))).response.data.error?.code).toBe('AUTH_002');
    expect((await send(set(), await bearer({ ns: ['other'] }))).response.data.error?.code).toBe('AUTH_002');
    expect((await rest(`/api/v1/cache/${ns}/k`)).status).toBe(404);
  });

  it('a token that expired while its request was queued counts within the request TTL, and not after it', async () => {
    const token = await bearer({ expiresIn: -100 });
    const sent = new Date(Date.now() - 120_000).toISOString();
    const within = raw({ operation: 'set', namespace: 'grace', key: 'k', value: 'dg==', ttl: 60 });
    Object.assign(within.data, { timestamp: sent, request_ttl_ms: 150_000 });
    expect((await send(within, token)).response.data.status).toBe('success');
    const past = raw({ operation: 'set', namespace: 'grace', key: 'k2', value: 'dg==', ttl: 60 });
    Object.assign(past.data, { timestamp: sent, request_ttl_ms: 60_000 });
    expect((await send(past, token)).response.data.error?.code).toBe('CACHE_005');
  });

  it('a request past its TTL is not processed and gets exactly one error response', async () => {
    const late = raw({ operation: 'set', namespace: 'late', key: 'k', value: 'dg==', ttl: 60 });
    Object.assign(late.data, { timestamp: new Date(Date.now() - 30_000).toISOString(), request_ttl_ms: 1_000 });
    const { response } = await send(late, await bearer(), 'late:k');
    expect(response.data).toMatchObject({ status: 'error', error: { code: 'CACHE_005' } });
    // A later request on the same key (same partition) is answered after it: no second answer came before.
    await send(raw({ operation: 'get', namespace: 'late', key: 'k' }), await bearer(), 'late:k');
    expect(responsesTo(late.data.correlation_id)).toHaveLength(1);
    expect((await rest('/api/v1/cache/late/k')).status).toBe(404);
  });

  it('a reply-to topic not on HUB_REPLY_TOPICS is refused on the default topic; an allowed one is used', async () => {
    const get = raw({ operation: 'get', namespace: 'reply', key: 'k' });
    const refused = await send(get, { ...(await bearer()), 'reply-to': `${prefix}control` });
    expect(refused.topic).toBe(topics.operationResponse);
    expect(refused.response.data.error?.code).toBe('CACHE_004');
    expect(seen.some((m) => m.topic === `${prefix}control`)).toBe(false);
    const allowed = await send(raw({ operation: 'get', namespace: 'reply', key: 'k' }), {
      ...(await bearer()),
      'reply-to': `${prefix}replies`,
    });
    expect(allowed.topic).toBe(`${prefix}replies`);
    expect(allowed.response.data.error?.code).toBe('CACHE_001');
  });

  it('an invalid request with a correlation id gets CACHE_004; poison goes to the dead-letter topic and the partition moves on', async () => {
    const bad = raw({ operation: 'set', namespace: 'BAD NS', key: 'k', value: 'dg==' });
    expect((await send(bad, await bearer())).response.data.error?.code).toBe('CACHE_004');
    await producer.send({
      topic: topics.operationRequest,
      messages: [
        { key: 'poison:k', value: 'not json' },
        { key: 'poison:k', value: JSON.stringify({ event: 'cache.operation.request', data: {} }) },
      ],
    });
    const after = await send(raw({ operation: 'get', namespace: 'poison', key: 'k' }), await bearer(), 'poison:k');
    expect(after.response.data.error?.code).toBe('CACHE_001');
    const dead = await eventually('two dead letters', () => {
      const d = seen.filter((m) => m.topic === topics.dlq && m.key === 'poison:k');
      return d.length === 2 ? d : null;
    });
    expect(dead.map((d) => d.headers['strata-error'])).toEqual([
      'value is not JSON',
      expect.stringContaining('correlation_id'),
    ]);
    expect(dead[0]!.headers['strata-source-topic']).toBe(topics.operationRequest);
    const metrics = await (await rest('/metrics')).text();
    expect(metrics).toMatch(/strata_hub_requests_total\{[^}]*outcome="dead_lettered"[^}]*\} 2\n/);
  });

  it('the same correlation id with other content is refused; the same request again gets the recorded answer', async () => {
    const set = raw({ operation: 'set', namespace: 'dedup', key: 'k', value: 'dg==', ttl: 60 });
    const token = await bearer();
    const first = await send(set, token, 'dedup:k');
    expect(first.response.data.status).toBe('success');
    // Same request, later timestamp: the recorded answer, not a second write.
    const again = { ...set, data: { ...set.data, timestamp: new Date().toISOString() } };
    await producer.send({
      topic: topics.operationRequest,
      messages: [{ key: 'dedup:k', value: JSON.stringify(again), headers: token }],
    });
    await eventually('the replayed answer', () => responsesTo(set.data.correlation_id).length === 2);
    const [a, b] = responsesTo(set.data.correlation_id).map((m) => JSON.parse(m.value) as HubResponse);
    expect(b!.data).toEqual(a!.data);
    const etag = (await rest('/api/v1/cache/dedup/k')).headers.get('ETag');
    expect(etag).toContain(String(a!.data.version));
    const other = { ...set, data: { ...set.data, value: 'eA==' } };
    await producer.send({
      topic: topics.operationRequest,
      messages: [{ key: 'dedup:k', value: JSON.stringify(other), headers: token }],
    });
    await eventually('the refusal', () => responsesTo(set.data.correlation_id).length === 3);
    expect((JSON.parse(responsesTo(set.data.correlation_id)[2]!.value) as HubResponse).data.error?.code).toBe(
      'CACHE_004',
    );
  });
});

describe('per-service event names (HUB_ALIASES)', () => {
  it('cache.char.set and cache.char.get act as set and get on the character namespace, answered on the operation response topic', async () => {
    const token = await bearer();
    const key = `char:${randomUUID()}`;
    // As a service following the Message Hub plan writes them: no operation, no namespace.
    const aliased = (event: string, data: Record<string, unknown>) => ({ ...raw(data), event });
    const set = aliased('cache.char.set', { key, value: 'aGVsbG8=', encoding: 'base64', ttl: 600 });
    await producer.send({
      topic: `${prefix}cache.char.set`,
      messages: [{ key: `character:${key}`, value: JSON.stringify(set), headers: token }],
    });
    const stored = await responseTo(set.data.correlation_id);
    expect(stored.topic).toBe(topics.operationResponse);
    expect(stored.response.event).toBe('cache.operation.response');
    expect(stored.response.data).toMatchObject({ status: 'success', operation: 'set', namespace: 'character', key });
    // The same entry through REST.
    const read = await rest(`/api/v1/cache/character/${encodeURIComponent(key)}`);
    expect(await read.text()).toBe('hello');
    const get = aliased('cache.char.get', { key, encoding: 'utf8' });
    await producer.send({
      topic: `${prefix}cache.char.get`,
      messages: [{ key: `character:${key}`, value: JSON.stringify(get), headers: token }],
    });
    expect((await responseTo(get.data.correlation_id)).response.data).toMatchObject({
      status: 'success',
      value: 'hello',
      version: stored.response.data.version,
    });
    // An alias carries its own operation and namespace only.
    const wrong = { ...get, data: { ...get.data, correlation_id: randomUUID(), namespace: 'campaign' } };
    await producer.send({
      topic: `${prefix}cache.char.get`,
      messages: [{ key: `character:${key}`, value: JSON.stringify(wrong), headers: token }],
    });
    expect((await responseTo(wrong.data.correlation_id)).response.data.error?.code).toBe('CACHE_004');
  });
});

describe('exactly once across an origin killed between apply and commit', () => {
  it('the requester gets one response per correlation id and set_many is applied once', async () => {
    // A second group and prefix-free of the first origin: only the crashing origin, then its successor, consume it.
    const crashPrefix = `${uniqueName('hubcrash')}.`;
    const crashTopics = hubTopicNames(crashPrefix);
    const crashGroup = uniqueName('hub-crash');
    const { HUB_REPLY_TOPICS: _own, HUB_ALIASES: _aliases, ...shared } = hubEnv();
    const env = { ...shared, HUB_TOPIC_PREFIX: crashPrefix, HUB_GROUP_ID: crashGroup, LOG_LEVEL: 'silent' };
    const port = await freePort();
    const crashing = spawnEntry(
      'origin/main.ts',
      cleanEnv({ ...env, ORIGIN_PORT: String(port), HUB_FAULT: 'crash-before-commit' }),
    );
    try {
      await eventually(
        'the crashing origin to listen',
        async () => (await fetch(`http://127.0.0.1:${port}/health`)).ok,
        20_000,
        50,
      );
      const ns = uniqueName('once').replace(/[^a-z0-9_-]/g, '');
      const request = raw({
        operation: 'set_many',
        namespace: ns,
        entries: { a: 'QQ==', b: 'Qg==' },
        ttl: 600,
        encoding: 'base64',
      });
      request.data.request_ttl_ms = 120_000;
      const crashReader: typeof seen = [];
      const kafka = new Kafka({ clientId: 'hub-crash-test', brokers: [brokers], logLevel: logLevel.NOTHING });
      const consumer = kafka.consumer({ groupId: uniqueName('crash-reader'), maxWaitTimeInMs: 50 });
      await consumer.connect();
      await eventually(
        'the crash topics',
        async () => {
          const admin = kafka.admin();
          await admin.connect();
          try {
            return (await admin.listTopics()).includes(crashTopics.operationResponse);
          } finally {
            await admin.disconnect();
          }
        },
        20_000,
        200,
      );
      await consumer.subscribe({ topic: crashTopics.operationResponse, fromBeginning: true });
      await consumer.run({
        eachMessage: async ({ message }) => {
          crashReader.push({
            topic: '',
            key: '',
            value: message.value!.toString(),
            headers: { 'correlation-id': String(message.headers?.['correlation-id']) },
          });
        },
      });
      await producer.send({
        topic: crashTopics.operationRequest,
        messages: [{ key: `${ns}`, value: JSON.stringify(request), headers: await bearer() }],
      });
      expect(await crashing.exited).toBeNull();
      // Applied before the kill: the store holds both entries; no response is committed.
      const applied = await rest(`/api/v1/cache/${ns}/a`);
      expect(applied.status).toBe(200);
      const versionBefore = applied.headers.get('ETag');
      expect(crashReader).toHaveLength(0);

      const successor = await originFor({ ...env });
      try {
        await eventually('one response after the restart', () => crashReader.length >= 1, 40_000, 50);
        const answer = JSON.parse(crashReader[0]!.value) as HubResponse;
        expect(answer.data).toMatchObject({
          status: 'success',
          correlation_id: request.data.correlation_id,
          stored_count: 2,
        });
        // Not applied a second time: the entries keep the versions of the first (recorded) application.
        const after = await rest(`/api/v1/cache/${ns}/a`);
        expect(after.headers.get('ETag')).toBe(versionBefore);
        expect(after.headers.get('ETag')).toContain(String(answer.data.versions!.a));
        // Let the successor answer a later request on the same partition, then count: still one.
        const later = raw({ operation: 'get', namespace: ns, key: 'a' });
        await producer.send({
          topic: crashTopics.operationRequest,
          messages: [{ key: `${ns}`, value: JSON.stringify(later), headers: await bearer() }],
        });
        await eventually(
          'the later answer',
          () => crashReader.some((m) => m.headers['correlation-id'] === later.data.correlation_id),
          20_000,
        );
        expect(crashReader.filter((m) => m.headers['correlation-id'] === request.data.correlation_id)).toHaveLength(1);
      } finally {
        await consumer.disconnect();
        await successor.close();
      }
    } finally {
      await crashing.stop();
    }
  }, 90_000);
});
