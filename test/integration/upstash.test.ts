import { join } from 'node:path';
import { Redis } from '@upstash/redis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';
import { hs256Issuer, type TokenIssuer } from '../support/jwt.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { expectScenario } from '../support/upstash-runtimes.ts';
import { upstashScenario } from '../support/upstash-scenario.ts';
import { eventually } from '../support/wait.ts';

const ns = 'upstash';

/** One raw protocol request, as the client sends it. */
async function post(url: string, token: string | null, body: unknown, headers: Record<string, string> = {}) {
  const res = await fetch(url, {
    method: 'POST',
    body: JSON.stringify(body),
    headers: { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}), ...headers },
  });
  return { status: res.status, headers: res.headers, body: (await res.json()) as Record<string, unknown> };
}

describe('the Upstash protocol with the real @upstash/redis client, Node edges over an origin on Redis', () => {
  let issuer: TokenIssuer;
  let origin: RunningOrigin;
  let a: RunningEdge;
  let b: RunningEdge;
  let token: string;
  let tokens: { token: string; readOnlyToken: string; otherNamespaceToken: string };
  let run = 0;
  const prefix = () => `run${Date.now().toString(36)}-${++run}`;

  beforeAll(async () => {
    issuer = hs256Issuer();
    origin = await originFor({ ...issuer.env, REDIS_URL: inject('redisUrl'), PURGE_HEARTBEAT_MS: '250' });
    const env = {
      ...issuer.env,
      EDGE_ORIGIN_TOKEN: await issuer.sign({ serviceId: 'edge' }),
      EDGE_MAX_TTL_SECONDS: '60',
    };
    a = await edgeFor(origin.url, env);
    b = await edgeFor(origin.url, env);
    token = await issuer.sign({ serviceId: 'app', ns: [ns] });
    tokens = {
      token,
      readOnlyToken: await issuer.sign({ serviceId: 'reader', scope: ['cache:read'], ns: [ns] }),
      otherNamespaceToken: await issuer.sign({ serviceId: 'other', ns: ['elsewhere'] }),
    };
  }, 60_000);
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await origin?.close();
    await issuer?.close();
  });

  it('strings, numbers, JSON, options, counters, TTLs, pipelines, multi-exec, errors and auth behave as the client expects, at the edge', async () => {
    expectScenario(await upstashScenario(Redis, { baseUrl: a.url, namespace: ns, prefix: prefix(), ...tokens }));
  });

  it('the same session against the origin directly', async () => {
    expectScenario(await upstashScenario(Redis, { baseUrl: origin.url, namespace: ns, prefix: prefix(), ...tokens }));
  });

  it('a value written through Upstash at one edge is purged from another edge, and the writer reads its write at once', async () => {
    const key = `${prefix()}:shared`;
    const atA = new Redis({ url: `${a.url}/upstash/${ns}`, token, enableTelemetry: false });
    const atB = new Redis({ url: `${b.url}/upstash/${ns}`, token, enableTelemetry: false });
    await atA.set(key, 'v1');
    expect(await atB.get(key)).toBe('v1');
    const loads = b.originLoads;
    expect(await atB.get(key)).toBe('v1');
    expect(b.originLoads, 'the second read is served by edge B from its tier').toBe(loads);
    await atA.set(key, 'v2');
    expect(await atA.get(key), 'read-your-writes at the writing edge').toBe('v2');
    await eventually('edge B to serve the new value', async () => (await atB.get(key)) === 'v2', 10_000);
  });

  it('a client that wrote through one edge reads its write through another at once (upstash-sync-token)', async () => {
    const key = `${prefix()}:ryw`;
    const reader = new Redis({ url: `${b.url}/upstash/${ns}`, token, enableTelemetry: false });
    await reader.set(key, 'old');
    expect(await reader.get(key)).toBe('old'); // cached at edge B
    // The same client state (its sync token) moving to edge A for the write, then back to B.
    const first = await post(`${a.url}/upstash/${ns}`, token, ['SET', key, 'new']);
    const syncToken = first.headers.get('upstash-sync-token')!;
    expect(Number(syncToken)).toBeGreaterThan(0);
    const read = await post(`${b.url}/upstash/${ns}`, token, ['GET', key], { 'upstash-sync-token': syncToken });
    expect(read.body).toEqual({ result: 'new' });
    expect(Number(read.headers.get('upstash-sync-token'))).toBeGreaterThanOrEqual(Number(syncToken));
  });

  it('bytes written through REST come back byte-exact through Upstash with base64 encoding, at the edge and the origin', async () => {
    const key = `${prefix()}:bin`;
    const bytes = new Uint8Array([0, 255, 254, 128, 10, 13, 0xc3, 0x28, 0xf0, 0x90, 0x80]);
    const put = await fetch(`${origin.url}/api/v1/cache/${ns}/${encodeURIComponent(key)}?ttl=60`, {
      method: 'PUT',
      body: bytes,
      headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/octet-stream' },
    });
    expect(put.status).toBe(200);
    for (const base of [a.url, a.url, origin.url]) {
      const single = await post(`${base}/upstash/${ns}`, token, ['GET', key], { 'Upstash-Encoding': 'base64' });
      expect([...Buffer.from(single.body.result as string, 'base64')]).toEqual([...bytes]);
      const piped = await post(`${base}/upstash/${ns}/pipeline`, token, [['MGET', key, 'absent']], {
        'Upstash-Encoding': 'base64',
      });
      const [values] = (piped.body as unknown as { result: (string | null)[] }[]).map((r) => r.result);
      expect([...Buffer.from(values![0]!, 'base64')]).toEqual([...bytes]);
      expect(values![1]).toBeNull();
    }
  });

  it('REST and Upstash see the same entries: INCR of a REST value, then REST reads the result', async () => {
    const key = `${prefix()}:shared-counter`;
    const url = `${a.url}/api/v1/cache/${ns}/${encodeURIComponent(key)}`;
    await fetch(`${url}?ttl=60`, { method: 'PUT', body: '41', headers: { Authorization: `Bearer ${token}` } });
    const redis = new Redis({ url: `${a.url}/upstash/${ns}`, token, enableTelemetry: false });
    expect(await redis.incr(key)).toBe(42);
    expect(await redis.ttl(key)).toBeGreaterThan(50); // INCR keeps the entry's TTL
    const rest = await fetch(url, { headers: { Authorization: `Bearer ${token}` } });
    expect(await rest.text()).toBe('42');
  });

  it('an entry a REST writer left in its grace window is absent to Upstash: SET NX and INCR write it anew', async () => {
    const key = `${prefix()}:stale`;
    const url = `${origin.url}/api/v1/cache/${ns}/${encodeURIComponent(key)}`;
    const headers = { Authorization: `Bearer ${token}`, 'Cache-Control': 'max-age=1, stale-while-revalidate=60' };
    for (const [k, body] of [
      [key, 'old'],
      [`${key}:n`, '41'],
    ] as const) {
      const put = await fetch(`${origin.url}/api/v1/cache/${ns}/${encodeURIComponent(k)}`, {
        method: 'PUT',
        body,
        headers,
      });
      expect(put.ok).toBe(true);
    }
    const staleAt = async (u: string) => {
      const res = await fetch(u, { headers: { Authorization: `Bearer ${token}` } });
      await res.arrayBuffer();
      return res.headers.get('X-Cache') === 'STALE';
    };
    await eventually(
      'both entries to be served stale',
      async () => (await staleAt(url)) && (await staleAt(`${url}%3An`)),
    );
    const redis = new Redis({ url: `${origin.url}/upstash/${ns}`, token, enableTelemetry: false });
    expect(await redis.get(key)).toBeNull();
    expect(await redis.set(key, 'new', { nx: true })).toBe('OK');
    expect(await redis.incr(`${key}:n`)).toBe(1);
    expect(await redis.get(key)).toBe('new');
  });

  it('after a namespace flush the keys read as absent, and SET NX and INCR write them anew', async () => {
    const admin = await issuer.sign({ serviceId: 'admin' });
    const flushed = 'upstash-flush';
    const redis = new Redis({ url: `${a.url}/upstash/${flushed}`, token: admin, enableTelemetry: false });
    const key = `${prefix()}:f`;
    await redis.set(key, 'before');
    await redis.set(`${key}:n`, 41);
    const flush = await fetch(`${origin.url}/api/v1/namespaces/${flushed}/flush`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${admin}` },
    });
    expect(flush.status).toBe(200);
    await eventually('the flush to reach the edge', async () => (await redis.get(key)) === null, 10_000);
    expect(await redis.set(key, 'after', { nx: true })).toBe('OK');
    expect(await redis.incr(`${key}:n`)).toBe(1);
    expect(await redis.get(key)).toBe('after');
  });

  it('raw protocol errors use the Upstash shape and status codes', async () => {
    const base = `${a.url}/upstash/${ns}`;
    expect(await post(base, token, ['HGETALL', 'k'])).toMatchObject({
      status: 400,
      body: { error: "ERR Command is not available: 'hgetall'" },
    });
    expect(await post(base, null, ['GET', 'k'])).toMatchObject({ status: 401, body: { error: 'Unauthorized' } });
    expect(await post(base, token, { not: 'a command' })).toMatchObject({ status: 400 });
    expect(await post(base, token, ['SET', 'k'])).toMatchObject({
      status: 400,
      body: { error: "ERR wrong number of arguments for 'set' command" },
    });
    expect(await post(`${a.url}/upstash/Bad`, token, ['GET', 'k'])).toMatchObject({ status: 400 });
    const path = await fetch(`${base}/set/${encodeURIComponent(`${prefix()}:path`)}/via%20path/EX/60`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    expect(await path.json()).toEqual({ result: 'OK' });
  });

  it('SCAN, KEYS and FLUSHDB over the raw protocol: path style, pipelines, base64 replies, grants and multi-exec', async () => {
    const admin = await issuer.sign({ serviceId: 'admin' });
    const flushed = `upstash-scan-${Date.now().toString(36)}`;
    const base = `${a.url}/upstash/${flushed}`;
    const keys = ['user:1', 'user:2', 'user:3', 'order:1'];
    expect(
      (
        await post(
          `${base}/pipeline`,
          admin,
          keys.map((k) => ['SET', k, 'v']),
        )
      ).status,
    ).toBe(200);
    // Path style, and SCAN's reply shape: [cursor, keys], the cursor "0" when done.
    const listed: string[] = [];
    let cursor = '0';
    do {
      const res = await fetch(`${base}/scan/${encodeURIComponent(cursor)}/match/user:*/count/1`, {
        headers: { Authorization: `Bearer ${admin}` },
      });
      const { result } = (await res.json()) as { result: [string, string[]] };
      listed.push(...result[1]);
      cursor = result[0];
    } while (cursor !== '0');
    expect(listed.sort()).toEqual(['user:1', 'user:2', 'user:3']);
    // In a pipeline, with base64 replies: the cursor and every key are base64, as the client decodes them.
    const piped = await post(
      `${base}/pipeline`,
      admin,
      [
        ['KEYS', 'order:*'],
        ['SCAN', '0', 'MATCH', 'order:*', 'COUNT', '1000', 'WITHTYPE'],
        ['SCAN', '0', 'TYPE', 'hash'],
        ['SCAN', 'not-a-cursor'],
        ['SCAN', '0', 'COUNT', 'many'],
      ],
      { 'Upstash-Encoding': 'base64' },
    );
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    expect(piped.body).toEqual([
      { result: [b64('order:1')] },
      { result: [b64('0'), [b64('order:1'), b64('string')]] },
      { result: [b64('0'), []] },
      { error: expect.stringContaining('ERR Invalid cursor') },
      { error: 'ERR value is not an integer or out of range' },
    ]);
    // The grants REST asks for: cache:read to list, cache:flush to flush.
    const writer = await issuer.sign({ serviceId: 'writer', scope: ['cache:write'], ns: [flushed] });
    const reader = await issuer.sign({ serviceId: 'reader', scope: ['cache:read'], ns: [flushed] });
    expect(await post(base, writer, ['KEYS', '*'])).toMatchObject({ status: 403 });
    expect(await post(base, reader, ['FLUSHDB'])).toMatchObject({
      status: 403,
      body: { error: expect.stringContaining("NOPERM this token has no permissions to run the 'flushdb' command") },
    });
    expect(await post(`${base}/multi-exec`, admin, [['SET', 'user:1', 'x'], ['FLUSHDB']])).toMatchObject({
      status: 400,
      body: { error: "ERR 'flushdb' cannot run inside multi-exec here" },
    });
    // A flush through Upstash at edge A: the version history names the caller, edge B stops serving the keys.
    expect((await post(`${b.url}/upstash/${flushed}`, admin, ['GET', 'user:1'])).body).toEqual({ result: 'v' });
    const flush = await post(base, admin, ['FLUSHDB', 'ASYNC']);
    expect(flush).toMatchObject({ status: 200, body: { result: 'OK' } });
    expect(Number(flush.headers.get('upstash-sync-token'))).toBeGreaterThan(0);
    expect((await post(base, admin, ['KEYS', '*'])).body).toEqual({ result: [] });
    await eventually(
      'edge B to drop the flushed namespace',
      async () => (await post(`${b.url}/upstash/${flushed}`, admin, ['GET', 'user:1'])).body.result === null,
      10_000,
    );
    const version = await fetch(`${origin.url}/api/v1/namespaces/${flushed}`, {
      headers: { Authorization: `Bearer ${admin}` },
    });
    expect(((await version.json()) as { history: { service_id: string }[] }).history[0]!.service_id).toBe('edge');
  });

  it('counts Upstash requests in strata_requests_total: served at the edge, relayed, and refused', async () => {
    const admin = await issuer.sign({ serviceId: 'admin' });
    const counted = async (url: string, tier: string, result: string) => {
      const text = await (await fetch(`${url}/metrics`, { headers: { Authorization: `Bearer ${admin}` } })).text();
      const line = text
        .split('\n')
        .find(
          (l) =>
            l.startsWith('strata_requests_total{') &&
            l.includes('operation="upstash"') &&
            l.includes(`tier="${tier}"`) &&
            l.includes(`result="${result}"`),
        );
      return line ? Number(line.slice(line.lastIndexOf(' ') + 1)) : 0;
    };
    const before = {
      edgeOk: await counted(a.url, 'edge', 'ok'),
      relayed: await counted(a.url, 'none', 'ok'),
      refused: await counted(a.url, 'none', 'refused'),
      originOk: await counted(origin.url, 'redis', 'ok'),
    };
    await post(`${a.url}/upstash/${ns}`, token, ['PING']);
    await post(`${a.url}/upstash/${ns}`, token, ['SET', `${prefix()}:m`, '1']);
    await post(`${a.url}/upstash/${ns}`, null, ['PING']);
    expect({
      edgeOk: await counted(a.url, 'edge', 'ok'),
      relayed: await counted(a.url, 'none', 'ok'),
      refused: await counted(a.url, 'none', 'refused'),
      originOk: await counted(origin.url, 'redis', 'ok'),
    }).toEqual({
      edgeOk: before.edgeOk + 1,
      relayed: before.relayed + 1,
      refused: before.refused + 1,
      originOk: before.originOk + 1,
    });
  });
});

describe('the Upstash protocol under the edge rate limit', () => {
  let issuer: TokenIssuer;
  let origin: RunningOrigin;
  let edge: RunningEdge;
  beforeAll(async () => {
    issuer = hs256Issuer();
    origin = await originFor(issuer.env);
    const env = { ...issuer.env, EDGE_ORIGIN_TOKEN: await issuer.sign({ serviceId: 'edge' }) };
    edge = await edgeFor(origin.url, { ...env, EDGE_RATE_LIMIT_RPS: '0.01', EDGE_RATE_LIMIT_BURST: '2' });
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
    await issuer?.close();
  });

  it('counts Upstash requests against the caller, and refuses past the burst with 429 and Retry-After', async () => {
    const token = await issuer.sign({ serviceId: 'busy', ns: [ns] });
    const statuses: number[] = [];
    let last: Awaited<ReturnType<typeof post>> | undefined;
    for (let i = 0; i < 3; i++) {
      last = await post(`${edge.url}/upstash/${ns}`, token, ['PING']);
      statuses.push(last.status);
    }
    expect(statuses).toEqual([200, 200, 429]);
    expect(last!.body).toEqual({ error: 'ERR rate limit exceeded' });
    expect(Number(last!.headers.get('Retry-After'))).toBeGreaterThan(0);
  });
});

describe('multi-exec on an origin over Redis Cluster', () => {
  let cluster: RunningRedisCluster;
  let origin: RunningOrigin;
  beforeAll(async () => {
    cluster = await startRedisCluster({ dir: join(inject('serversDir'), `cluster-${process.pid}-upstash`) });
    origin = await originFor({ REDIS_CLUSTER_NODES: cluster.env.REDIS_CLUSTER_NODES! });
  }, 120_000);
  afterAll(async () => {
    await origin?.close();
    await cluster?.stop();
  });

  it('is atomic when every key shares a hash slot, and answers CROSSSLOT otherwise', async () => {
    const redis = new Redis({ url: `${origin.url}/upstash/${ns}`, token: 'unused', enableTelemetry: false });
    expect(await redis.multi().set('{order:1}a', 1).incr('{order:1}b').get('{order:1}a').exec()).toEqual(['OK', 1, 1]);
    await expect(redis.multi().set('alpha', 1).set('beta', 2).exec()).rejects.toThrow(
      "CROSSSLOT Keys in request don't hash to the same slot",
    );
    expect(await redis.mget('alpha', 'beta')).toEqual([null, null]);
  });

  it('SCAN and KEYS walk the namespace’s key index on every master, and FLUSHDB empties it', async () => {
    const scanNs = `upstash-cluster-${Date.now().toString(36)}`;
    const redis = new Redis({ url: `${origin.url}/upstash/${scanNs}`, token: 'unused', enableTelemetry: false });
    const keys = Array.from({ length: 40 }, (_, i) => `item:${i}`);
    // One SET per key: an MSET over several hash slots is refused with CROSSSLOT on a Cluster.
    const pipeline = redis.pipeline();
    for (const k of keys) pipeline.set(k, 'v');
    await pipeline.exec();
    const scanned: string[] = [];
    let cursor = '0';
    do {
      const [next, page] = await redis.scan(cursor, { match: 'item:*', count: 7 });
      scanned.push(...page);
      cursor = String(next);
    } while (cursor !== '0');
    expect(scanned.length).toBe(keys.length);
    expect(scanned.sort()).toEqual([...keys].sort());
    expect((await redis.keys('item:1*')).sort()).toEqual(keys.filter((k) => k.startsWith('item:1')).sort());
    expect(await redis.flushdb()).toBe('OK');
    expect(await redis.keys('*')).toEqual([]);
  });
});
