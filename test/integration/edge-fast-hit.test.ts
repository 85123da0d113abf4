import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getRequestListener } from '@hono/node-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fastHitHandler } from '../../edge/adapters/deno/fast-hit.ts';
import { edgeNodeMetrics } from '../../edge/adapters/node/metrics.ts';
import { fastHitListener } from '../../edge/adapters/node/server.ts';
import { type BuiltEdge, buildEdge } from '../../edge/build-edge.ts';
import { memoryTier } from '../../edge/core/memory-tier.ts';
import type { EdgeTier } from '../../edge/core/tier.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { edgeConfigSchema, parseConfig } from '../../shared/config.ts';
import type { RequestRecord } from '../../shared/http.ts';
import { denoFastHitTwin } from '../support/deno.ts';
import { watchFastHit } from '../support/fast-hit-watch.ts';
import { hs256Issuer, type TokenIssuer } from '../support/jwt.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * The hit fast path (`edge/fast-hit.ts`) against the Hono app it stands in
 * front of: the same edge (one tier, one verifier, one limiter, one clock)
 * served twice on loopback, once by the Node adapter's listener (fast path,
 * then the app) and once by the app alone; every request goes to both and the
 * answers must match in status, headers (but `Date`, and a generated
 * `X-Request-Id`) and body. Which side answered is recorded, so the cases the
 * fast path must take are shown to be taken.
 */

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** One request with a raw target and raw header list (fetch would normalise both). */
function send(port: number, method: string, target: string, headers: string[] = [], body?: string): Promise<Answer> {
  return new Promise((resolve, reject) => {
    // A raw header list gets no Host from Node, and Node's server refuses a request without one.
    const raw = ['Host', `127.0.0.1:${port}`, ...headers];
    const req = httpRequest({ host: '127.0.0.1', port, method, path: target, headers: raw, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

/**
 * An answer without what legitimately differs: `Date`, `X-Request-Id` unless
 * the client gave a well-formed one, and an error envelope's `timestamp`.
 */
function comparable(answer: Answer, keepRequestId: boolean): Answer {
  const { date: _date, 'x-request-id': requestId, ...rest } = answer.headers;
  const body = answer.body.replace(/"timestamp":"[^"]*"/, '"timestamp":"…"');
  return { ...answer, body, headers: keepRequestId ? { ...rest, 'x-request-id': requestId } : rest };
}

/**
 * Sends one request to the fast side, asks `taken` who answered it there,
 * sends it to the app alone, and asserts the two answers match; returns the
 * fast side's answer and who answered it.
 */
async function sendBoth<W>(
  fastPort: number,
  fullPort: number,
  taken: () => W | Promise<W>,
  method: string,
  target: string,
  headers: string[] = [],
): Promise<{ answer: Answer; taken: W }> {
  const viaFast = await send(fastPort, method, target, headers);
  const who = await taken();
  const viaApp = await send(fullPort, method, target, headers);
  // A well-formed X-Request-Id is echoed by both; otherwise each side generates its own.
  const at = headers.findIndex((h) => h.toLowerCase() === 'x-request-id');
  const given = at === -1 ? undefined : headers[at + 1];
  const keepId = given !== undefined && /^[A-Za-z0-9._:-]{1,128}$/.test(given);
  expect(comparable(viaFast, keepId), `${method} ${target} ${headers.join(' ')}`).toEqual(comparable(viaApp, keepId));
  return { answer: viaFast, taken: who };
}

async function listen(listener: RequestListener): Promise<Server> {
  const server = createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

const portOf = (server: Server) => (server.address() as AddressInfo).port;

interface Twin {
  readonly edge: BuiltEdge;
  readonly fast: Server;
  readonly full: Server;
  readonly logs: RequestRecord[];
  /** Who answered the last request sent to `fast`: the fast path or the app. */
  last: 'fast' | 'app' | undefined;
  /** The clock both sides read (Unix ms); the test moves it. */
  clock: number;
  close(): Promise<void>;
}

async function twin(originUrl: string, env: Record<string, string>, tier?: EdgeTier): Promise<Twin> {
  const config = parseConfig(edgeConfigSchema, {
    EDGE_PORT: '0',
    ORIGIN_URL: originUrl,
    EDGE_STATS_INTERVAL_SECONDS: '0',
    ...env,
  });
  const logs: RequestRecord[] = [];
  const state = { last: undefined as 'fast' | 'app' | undefined, clock: Date.now() };
  const edge = buildEdge(config, {
    purgeSource: 'stream',
    metrics: edgeNodeMetrics,
    requestLog: (record) => logs.push(record),
    now: () => state.clock,
    ...(tier ? { tier } : {}),
  });
  const watched = watchFastHit(edge.fastHit, (side) => {
    state.last = side;
  });
  const app = getRequestListener(edge.app.fetch, { hostname: '127.0.0.1' });
  const fast = await listen(fastHitListener(watched, app));
  const full = await listen(app);
  await eventually('the purge stream', () => edge.subscription.connected, 10_000);
  return Object.assign(state, {
    edge,
    fast,
    full,
    logs,
    async close() {
      edge.close();
      for (const s of [fast, full]) {
        s.closeAllConnections();
        await new Promise((r) => s.close(r));
      }
    },
  });
}

describe('edge hit fast path', () => {
  let issuer: TokenIssuer;
  let origin: RunningOrigin;
  let admin: string;
  let t: Twin;

  beforeAll(async () => {
    issuer = hs256Issuer();
    origin = await originFor({ ...issuer.env });
    admin = await issuer.sign({ serviceId: 'admin' });
    t = await twin(origin.url, { ...issuer.env, EDGE_ORIGIN_TOKEN: admin });
  }, 30_000);

  afterAll(async () => {
    await t?.close();
    await origin?.close();
    await issuer?.close();
  });

  const put = async (path: string, body: string, token = admin) => {
    const res = await send(portOf(t.full), 'PUT', path, ['Authorization', `Bearer ${token}`], body);
    expect(res.status, res.body).toBe(200);
    return JSON.parse(res.body) as { version: number };
  };

  /** Sends one request to both servers at one clock reading; asserts the answers match; returns the fast side's. */
  const both = async (method: string, target: string, headers: string[] = []) => {
    t.clock = Date.now();
    t.last = undefined;
    return await sendBoth(portOf(t.fast), portOf(t.full), () => t.last, method, target, headers);
  };

  it('answers every request exactly as the app does, and takes only fresh hits', async () => {
    await put('/api/v1/cache/fh/k1?ttl=300&tags=a,b', 'value-1');
    const reader = await issuer.sign({ serviceId: 'reader', scope: ['cache:read'], ns: ['fh'] });
    const bearer = (token: string) => ['Authorization', `Bearer ${token}`];
    // Fill the tier and let the verifier remember both tokens (the fast path takes only remembered ones).
    expect((await send(portOf(t.full), 'GET', '/api/v1/cache/fh/k1', bearer(admin))).status).toBe(200);
    expect((await send(portOf(t.full), 'GET', '/api/v1/cache/fh/k1', bearer(reader))).status).toBe(200);
    const etag = (await send(portOf(t.full), 'GET', '/api/v1/cache/fh/k1', bearer(admin))).headers.etag as string;

    const taken: [string, string[], 'fast' | 'app', number][] = [
      ['/api/v1/cache/fh/k1', bearer(admin), 'fast', 200],
      ['/api/v1/cache/fh/k1', bearer(reader), 'fast', 200],
      ['/api/v1/cache/fh/k1', [...bearer(reader), 'X-Request-Id', 'trace-abc.1:2'], 'fast', 200],
      ['/api/v1/cache/fh/k1', [...bearer(reader), 'X-Request-Id', 'not a valid id'], 'fast', 200],
      ['/api/v1/cache/fh/k1', [...bearer(reader), 'If-None-Match', etag], 'fast', 304],
      ['/api/v1/cache/fh/k1', [...bearer(reader), 'If-None-Match', `"v1", ${etag}`], 'fast', 304],
      ['/api/v1/cache/fh/k1', [...bearer(reader), 'If-None-Match', '*'], 'fast', 304],
      ['/api/v1/cache/fh/k1', [...bearer(reader), 'If-None-Match', '"v1"'], 'fast', 200],
      // Other spellings of a remembered token's Authorization value (the fast path remembers each value's token).
      ['/api/v1/cache/fh/k1', ['Authorization', `bearer ${reader}`], 'fast', 200],
      ['/api/v1/cache/fh/k1', ['Authorization', `Bearer   ${reader}`], 'fast', 200],
      ['/api/v1/cache/fh/k1', ['Authorization', `bearer ${reader}`], 'fast', 200],
      ['/api/v1/cache/fh/k1', ['Authorization', `Bearer${reader}`], 'app', 401],
      ['/api/v1/cache/fh/k1', ['Authorization', `Token ${reader}`], 'app', 401],
      ['/api/v1/cache/fh/k1', ['Authorization', `Token ${reader}`], 'app', 401],
      // Refused before the route: no token, a forged one, an expired one, a missing grant or scope, two tokens.
      ['/api/v1/cache/fh/k1', [], 'app', 401],
      ['/api/v1/cache/fh/k1', ['Authorization', 'Basic Zm9vOmJhcg=='], 'app', 401],
      ['/api/v1/cache/fh/k1', bearer(await issuer.forge()), 'app', 401],
      ['/api/v1/cache/fh/k1', bearer(await issuer.sign({ expiresIn: -120 })), 'app', 401],
      ['/api/v1/cache/fh/k1', bearer(await issuer.sign({ ns: ['other'] })), 'app', 403],
      ['/api/v1/cache/fh/k1', bearer(await issuer.sign({ scope: ['cache:write'] })), 'app', 403],
      ['/api/v1/cache/fh/k1', [...bearer(reader), ...bearer(admin)], 'app', 401],
      // Read preferences and revalidation: the app's to answer.
      ['/api/v1/cache/fh/k1', [...bearer(reader), 'Prefer', 'lease'], 'app', 200],
      ['/api/v1/cache/fh/k1', [...bearer(reader), 'Cache-Control', 'no-cache'], 'app', 200],
      ['/api/v1/cache/fh/k1', [...bearer(reader), 'Cache-Control', 'max-age=0'], 'app', 200],
      // Queries and path tricks.
      ['/api/v1/cache/fh/k1?', bearer(admin), 'app', 200],
      ['/api/v1/cache/fh/k1?ttl=5', bearer(admin), 'app', 400],
      ['/api/v1/cache/fh/k1?x=1&x=2', bearer(admin), 'app', 400],
      ['/api/v1/cache/fh/%6b1', bearer(admin), 'app', 200],
      ['/api/v1/cache/fh/%2e%2e', bearer(admin), 'app', 400],
      ['/api/v1/cache/fh/..', bearer(admin), 'app', 400],
      ['/api/v1/cache/fh/.', bearer(admin), 'app', 400],
      ['/api/v1/cache/fh/a%2Fb', bearer(admin), 'app', 400],
      ['/api/v1/cache/fh/k1/', bearer(admin), 'app', 404],
      ['/api/v1/cache/fh/a\\b', bearer(admin), 'app', 400],
      ['/api/v1/cache/./fh/k1', bearer(admin), 'app', 400],
      ['/api/v1/cache/Bad/k1', bearer(admin), 'app', 400],
      ['/api/v1/cache/fh/absent', bearer(admin), 'app', 404],
    ];
    for (const [target, headers, side, status] of taken) {
      const { answer, taken: who } = await both('GET', target, headers);
      expect([target, headers.join(' '), who, answer.status]).toEqual([target, headers.join(' '), side, status]);
    }
    const hit = await both('GET', '/api/v1/cache/fh/k1', bearer(reader));
    expect(hit.answer.body).toBe('value-1');
    expect(hit.answer.headers).toMatchObject({ 'x-cache': 'HIT', 'x-cache-tier': 'edge', 'cache-tag': 'a,b' });
    expect(hit.answer.headers['content-length']).toBe('7');
    // HEAD is the app's (Hono answers it through the GET route).
    expect((await both('HEAD', '/api/v1/cache/fh/k1', bearer(reader))).taken).toBe('app');
    // Other methods too.
    expect((await both('DELETE', '/api/v1/cache/fh/nothing-here', bearer(reader))).taken).toBe('app');
  });

  it('counts and logs a fast hit as the app counts and logs a hit', async () => {
    await put('/api/v1/cache/fh/counted', 'c');
    const headers = ['Authorization', `Bearer ${admin}`, 'X-Request-Id', 'count-me'];
    expect((await send(portOf(t.full), 'GET', '/api/v1/cache/fh/counted', headers)).status).toBe(200);
    const hits = async () => {
      const text = (await t.edge.metrics?.render()) ?? '';
      const line = /^strata_requests_total\{[^}]*operation="get"[^}]*tier="edge"[^}]*result="hit"[^}]*\} (\d+)/m.exec(
        text,
      );
      return Number(line?.[1] ?? 0);
    };
    const before = await hits();
    t.logs.length = 0;
    const { taken } = await both('GET', '/api/v1/cache/fh/counted', headers);
    expect(taken).toBe('fast');
    expect(await hits()).toBe(before + 2);
    expect(t.logs).toHaveLength(2);
    const [fast, app] = t.logs.map(({ duration_ms, ...rest }) => {
      expect(duration_ms).toBeGreaterThanOrEqual(0);
      return rest;
    });
    expect(fast).toEqual(app);
    expect(fast).toMatchObject({
      request_id: 'count-me',
      operation: 'get',
      namespace: 'fh',
      tier: 'edge',
      result: 'hit',
    });
  });

  it('never serves a purged, replaced or expired copy', async () => {
    const headers = ['Authorization', `Bearer ${admin}`];
    await put('/api/v1/cache/fh/gone?ttl=300', 'old');
    expect((await send(portOf(t.full), 'GET', '/api/v1/cache/fh/gone', headers)).body).toBe('old');
    expect((await both('GET', '/api/v1/cache/fh/gone', headers)).taken).toBe('fast');
    // A write at the origin (not through this edge) reaches the edge as a purge on the stream.
    const rewritten = await fetch(`${origin.url}/api/v1/cache/fh/gone?ttl=300`, {
      method: 'PUT',
      body: 'new',
      headers: { Authorization: `Bearer ${admin}` },
    });
    expect(rewritten.status).toBe(200);
    await eventually('the purge applied at the edge', () => t.edge.cache.tier.get('fh', 'gone') === undefined);
    // The refill changes the tier (MISS, then HIT), so it goes to one side alone.
    t.last = undefined;
    const refill = await send(portOf(t.fast), 'GET', '/api/v1/cache/fh/gone', headers);
    expect([t.last, refill.headers['x-cache'], refill.body]).toEqual(['app', 'MISS', 'new']);
    const again = await both('GET', '/api/v1/cache/fh/gone', headers);
    expect([again.taken, again.answer.body]).toEqual(['fast', 'new']);
    // Deleted at the origin: the fast path declines and the app answers the miss.
    const deleted = await fetch(`${origin.url}/api/v1/cache/fh/gone`, {
      method: 'DELETE',
      headers: { Authorization: `Bearer ${admin}` },
    });
    expect(deleted.status).toBe(200);
    await eventually('the delete applied at the edge', () => t.edge.cache.tier.get('fh', 'gone') === undefined);
    const miss = await both('GET', '/api/v1/cache/fh/gone', headers);
    expect([miss.taken, miss.answer.status]).toEqual(['app', 404]);
    // Expired (the clock moved past the TTL): not fresh, so not the fast path's.
    await put('/api/v1/cache/fh/short?ttl=1', 'brief');
    expect((await send(portOf(t.full), 'GET', '/api/v1/cache/fh/short', headers)).body).toBe('brief');
    t.clock = Date.now() + 1_500;
    t.last = undefined;
    await send(portOf(t.fast), 'GET', '/api/v1/cache/fh/short', headers);
    expect(t.last).toBe('app');
  });

  it('the Deno handler answers as the app does', async () => {
    await put('/api/v1/cache/fh/deno', 'd');
    const handler = fastHitHandler(t.edge.fastHit, t.edge.app.fetch);
    const url = 'http://edge.test/api/v1/cache/fh/deno';
    const auth = { Authorization: `Bearer ${admin}`, 'X-Request-Id': 'deno-1' };
    await (await t.edge.app.fetch(new Request(url, { headers: auth }))).arrayBuffer();
    const extras: Record<string, string>[] = [
      {},
      { 'If-None-Match': '*' },
      { Prefer: 'lease' },
      { 'X-Request-Id': 'deno-2' },
      { 'If-None-Match': '"v0"' },
    ];
    const without = (h: Headers) => Object.fromEntries([...h].filter(([name]) => name !== 'date'));
    // Each answer twice (the second from the prebuilt response), then again a second and a minute later (Age moved).
    const started = Date.now();
    for (const at of [started, started + 1_500, started + 61_000]) {
      for (const extra of [...extras, ...extras]) {
        t.clock = at;
        const a = await handler(new Request(url, { headers: { ...auth, ...extra } }));
        const b = await t.edge.app.fetch(new Request(url, { headers: { ...auth, ...extra } }));
        expect([a.status, without(a.headers), await a.text()]).toEqual([b.status, without(b.headers), await b.text()]);
      }
    }
    // A generated request id is the answer's own, not the prebuilt response's.
    t.clock = started;
    const ids = [];
    for (let i = 0; i < 2; i++) {
      const a = await handler(new Request(url, { headers: { Authorization: `Bearer ${admin}` } }));
      expect(a.headers.get('x-cache')).toBe('HIT');
      ids.push(a.headers.get('x-request-id'));
    }
    expect(new Set(ids).size).toBe(2);
  });
});

/**
 * The real memory tier (LFU), with its eviction-policy accesses (`get`; `peek`
 * counts none) counted per key, so that one request is shown to count one access.
 */
function countingTier(clock: () => number): { tier: EdgeTier; accesses: (ns: string, key: string) => number } {
  const inner = memoryTier({ maxBytes: 1 << 20, policy: 'lfu', now: clock });
  const counts = new Map<string, number>();
  const tier = new Proxy(inner, {
    get(target, property) {
      if (property !== 'get') return Reflect.get(target, property);
      return (ns: string, key: string) => {
        counts.set(`${ns}/${key}`, (counts.get(`${ns}/${key}`) ?? 0) + 1);
        return target.get(ns, key);
      };
    },
  });
  return { tier, accesses: (ns, key) => counts.get(`${ns}/${key}`) ?? 0 };
}

describe('edge hit fast path and the eviction policy', () => {
  it('counts one access per request whether the fast path answers or declines after looking at the copy', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-fast-hit-'));
    const profiles = join(dir, 'profiles.json');
    writeFileSync(
      profiles,
      JSON.stringify({ profiles: [{ namespace: 'fa', key_prefix: 'strong:', ttl: 300, consistency: 'strong' }] }),
    );
    const origin = await originFor({ CACHE_PROFILES: profiles });
    let clock = Date.now();
    const counted = countingTier(() => clock);
    const t = await twin(origin.url, {}, counted.tier);
    try {
      for (const key of ['plain', 'strong:1']) {
        const put = await send(portOf(t.full), 'PUT', `/api/v1/cache/fa/${key}?ttl=300`, [], key);
        expect(put.status, put.body).toBe(200);
        // The first read fills the tier.
        expect((await send(portOf(t.full), 'GET', `/api/v1/cache/fa/${key}`)).body).toBe(key);
      }
      /** Accesses one request to `server` counts for `key`, and who answered it. */
      const accessesOf = async (server: Server, key: string) => {
        clock = Date.now();
        t.clock = clock;
        t.last = undefined;
        const before = counted.accesses('fa', key);
        const answer = await send(portOf(server), 'GET', `/api/v1/cache/fa/${key}`);
        expect([key, answer.status, answer.body]).toEqual([key, 200, key]);
        return [counted.accesses('fa', key) - before, t.last] as const;
      };
      // A fresh hit the fast path answers, then the app answering the same.
      expect(await accessesOf(t.fast, 'plain')).toEqual([1, 'fast']);
      expect(await accessesOf(t.full, 'plain')).toEqual([1, undefined]);
      // A strong copy: the fast path looks, declines, and the app reads (and revalidates) it.
      const full = await accessesOf(t.full, 'strong:1');
      expect(full[0]).toBeGreaterThan(0);
      expect(await accessesOf(t.fast, 'strong:1')).toEqual([full[0], 'app']);
    } finally {
      await t.close();
      await origin.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('edge hit fast path with a rate limit', () => {
  it('shares the limiter with the app and leaves the refusal to it', async () => {
    const origin = await originFor();
    const counted = countingTier(Date.now);
    const t = await twin(origin.url, { EDGE_RATE_LIMIT_RPS: '0.01', EDGE_RATE_LIMIT_BURST: '3' }, counted.tier);
    try {
      const put = await send(portOf(t.full), 'PUT', '/api/v1/cache/rl/k', [], 'v');
      expect(put.status, put.body).toBe(200);
      // The write took the first token; one more each for a fast hit and an app hit.
      expect((await send(portOf(t.fast), 'GET', '/api/v1/cache/rl/k')).status).toBe(200);
      expect(t.last).toBe('fast');
      expect((await send(portOf(t.full), 'GET', '/api/v1/cache/rl/k')).status).toBe(200);
      t.clock = Date.now();
      const before = counted.accesses('rl', 'k');
      const viaFast = await send(portOf(t.fast), 'GET', '/api/v1/cache/rl/k');
      expect(t.last).toBe('app');
      const refusedFast = counted.accesses('rl', 'k') - before;
      const viaApp = await send(portOf(t.full), 'GET', '/api/v1/cache/rl/k');
      expect(viaFast.status).toBe(429);
      // A refused read counts as many eviction-policy accesses either way (the fast path only peeked).
      expect(refusedFast).toBe(counted.accesses('rl', 'k') - before - refusedFast);
      expect(comparable(viaFast, false)).toEqual(comparable(viaApp, false));
    } finally {
      await t.close();
      await origin.close();
    }
  });
});

/**
 * The same comparison in a real `deno` process (`test/support/deno-fast-hit-twin.ts`):
 * Deno's own `Response`, `clone()` and `Deno.serve`, so the prebuilt
 * responses of the Deno adapter are shown to answer byte for byte as the app
 * does, hit after hit, across `Age` changes, a new version and the bound on
 * what they hold.
 */
describe('edge hit fast path in a deno process', () => {
  let issuer: TokenIssuer;
  let origin: RunningOrigin;
  let admin: string;
  let twin: Awaited<ReturnType<typeof denoFastHitTwin>>;
  const port = (url: string) => Number(new URL(url).port);
  const setClock = async (ms: number) => {
    expect((await fetch(`${twin.control}/clock`, { method: 'PUT', body: String(ms) })).status).toBe(204);
  };
  const last = async () => await (await fetch(`${twin.control}/last`)).text();
  const both = async (target: string, headers: string[]) =>
    await sendBoth(port(twin.fast), port(twin.full), last, 'GET', target, headers);
  const putAtOrigin = async (path: string, body: string) => {
    const res = await fetch(`${origin.url}${path}`, {
      method: 'PUT',
      body,
      headers: { Authorization: `Bearer ${admin}` },
    });
    expect(res.status, await res.text()).toBe(200);
  };

  beforeAll(async () => {
    issuer = hs256Issuer();
    origin = await originFor({ ...issuer.env });
    admin = await issuer.sign({ serviceId: 'admin' });
    twin = await denoFastHitTwin(origin.url, {
      ...issuer.env,
      EDGE_ORIGIN_TOKEN: admin,
      EDGE_STATS_INTERVAL_SECONDS: '0',
    });
    await eventually(
      'the purge stream',
      async () => (await (await fetch(`${twin.control}/connected`)).text()) === 'true',
      10_000,
    );
  }, 60_000);

  afterAll(async () => {
    await twin?.close();
    await origin?.close();
    await issuer?.close();
  });

  it('answers hit after hit exactly as the app does, across Age changes and a new version', async () => {
    const bearer = ['Authorization', `Bearer ${admin}`];
    const path = '/api/v1/cache/dh/k1';
    await putAtOrigin(`${path}?ttl=300&tags=a,b`, 'deno-value-1');
    await setClock(Date.now());
    expect((await send(port(twin.full), 'GET', path, bearer)).headers['x-cache']).toBe('MISS');
    const etagNow = async () => (await send(port(twin.full), 'GET', path, bearer)).headers.etag as string;
    // The edge's lease with the origin may be on its way (at start, or renewed once the clock moved past its
    // renewal age); until it holds, the app answers every hit.
    const leaseHeld = () =>
      eventually(
        'the fast path taking hits',
        async () => (await send(port(twin.fast), 'GET', path, bearer)).status === 200 && (await last()) === 'fast',
        10_000,
      );
    await leaseHeld();
    const casesFor = (etag: string): [string[], 'fast' | 'app', number][] => [
      [bearer, 'fast', 200],
      [[...bearer, 'X-Request-Id', 'deno-abc.1:2'], 'fast', 200],
      [[...bearer, 'X-Request-Id', 'not a valid id'], 'fast', 200],
      [[...bearer, 'If-None-Match', etag], 'fast', 304],
      [[...bearer, 'If-None-Match', '*'], 'fast', 304],
      [[...bearer, 'If-None-Match', '"v0"'], 'fast', 200],
      [[...bearer, 'Prefer', 'lease'], 'app', 200],
      [[], 'app', 401],
      // Another spelling of the same token's Authorization value, and a value with no bearer token.
      [['Authorization', bearer[1]!.replace('Bearer ', 'bearer  ')], 'fast', 200],
      [['Authorization', bearer[1]!.replace('Bearer ', 'Token ')], 'app', 401],
    ];
    const cases = casesFor(await etagNow());
    const started = Date.now();
    for (const at of [started, started + 1_500, started + 61_000]) {
      await setClock(at);
      await leaseHeld();
      for (const [headers, side, status] of [...cases, ...cases]) {
        const { answer, taken } = await both(path, headers);
        const label = `+${at - started} ms ${headers.join(' ')}`;
        expect([label, taken, answer.status]).toEqual([label, side, status]);
      }
    }
    const hit = await both(path, bearer);
    expect([hit.taken, hit.answer.body, hit.answer.headers['content-length']]).toEqual(['fast', 'deno-value-1', '12']);

    // A new version at the origin reaches the edge as a purge; the refill is answered from its own response.
    await putAtOrigin(`${path}?ttl=300`, 'deno-value-2');
    await setClock(Date.now());
    await eventually(
      'the new version at the edge',
      async () => (await send(port(twin.full), 'GET', path, bearer)).body === 'deno-value-2',
      10_000,
    );
    await leaseHeld();
    for (const [headers, side, status] of casesFor(await etagNow())) {
      const { answer, taken } = await both(path, headers);
      expect([headers.join(' '), taken, answer.status]).toEqual([headers.join(' '), side, status]);
    }
    expect((await both(path, bearer)).answer.body).toBe('deno-value-2');
  }, 60_000);

  it('answers alike past the bound on prebuilt responses', async () => {
    const bearer = ['Authorization', `Bearer ${admin}`];
    // 32 values of 48 KiB: more than the prebuilt responses hold (1 MiB), so the oldest are dropped and rebuilt.
    const keys = Array.from({ length: 32 }, (_, i) => `big-${i}`);
    for (const [i, key] of keys.entries()) {
      await putAtOrigin(`/api/v1/cache/dh/${key}?ttl=300`, String.fromCharCode(97 + (i % 26)).repeat(48 * 1024));
    }
    await setClock(Date.now());
    for (const key of keys) {
      expect((await send(port(twin.full), 'GET', `/api/v1/cache/dh/${key}`, bearer)).status).toBe(200);
    }
    for (const key of [...keys, ...keys.slice(0, 4)]) {
      const { answer, taken } = await both(`/api/v1/cache/dh/${key}`, bearer);
      expect([key, taken, answer.status, answer.body.length]).toEqual([key, 'fast', 200, 48 * 1024]);
    }
  }, 60_000);
});
