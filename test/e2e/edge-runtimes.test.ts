import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningOrigin } from '../../origin/server.ts';
import { errorEnvelopeSchema } from '../../shared/errors.ts';
import { type EdgeUnderTest, edgeRuntimes } from '../support/edge-runtimes.ts';
import { hs256Issuer, type TokenIssuer } from '../support/jwt.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const ns = 'runtimes';
const deadlineMs = 10_000;

/** Origin GETs of cache entries so far, from the origin's own Prometheus counters. */
async function originGets(origin: RunningOrigin, token: string): Promise<number> {
  const text = await (await fetch(`${origin.url}/metrics`, { headers: { Authorization: `Bearer ${token}` } })).text();
  let total = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('strata_requests_total{') && line.includes('operation="get"')) {
      total += Number(line.slice(line.lastIndexOf(' ') + 1));
    }
  }
  return total;
}

/**
 * One end-to-end suite, run against the edge on Node, on Deno (a real
 * `deno` process) and in workerd (Miniflare), each in front of the same
 * kind of origin with authentication on: miss then hit, coalescing of
 * concurrent misses, a write through the edge, a purge sent through another
 * edge, 401 and 403, and bad input answered with the error envelope.
 */
describe.each(edgeRuntimes)('edge end to end on $name', (runtime) => {
  let issuer: TokenIssuer;
  let origin: RunningOrigin;
  let edge: EdgeUnderTest;
  let other: Awaited<ReturnType<typeof edgeFor>>;
  let admin: string;
  let counter = 0;
  const fresh = () => `${runtime.name}-k${++counter}`;
  const auth = () => ({ Authorization: `Bearer ${admin}` });
  const put = (target: (path: string, init?: RequestInit) => Promise<Response>, key: string, value: string) =>
    target(`/api/v1/cache/${ns}/${key}?ttl=600`, {
      method: 'PUT',
      body: value,
      headers: { ...auth(), 'Content-Type': 'text/plain' },
    });
  const get = (key: string, headers: Record<string, string> = auth()) =>
    edge.fetch(`/api/v1/cache/${ns}/${key}`, { headers });
  const atOrigin = (path: string, init?: RequestInit) => fetch(`${origin.url}${path}`, init);

  beforeAll(async () => {
    issuer = hs256Issuer();
    origin = await originFor({ ...issuer.env, PURGE_HEARTBEAT_MS: '250' });
    admin = await issuer.sign({ serviceId: 'admin' });
    const env = {
      ...issuer.env,
      EDGE_ORIGIN_TOKEN: await issuer.sign({ serviceId: 'edge' }),
      EDGE_PURGE_POLL_MS: '200',
    };
    edge = await runtime.start(origin.url, env);
    other = await edgeFor(origin.url, { ...env, EDGE_STATS_INTERVAL_SECONDS: '0' });
  }, 60_000);
  afterAll(async () => {
    await edge?.close();
    await other?.close();
    await origin?.close();
    await issuer?.close();
  });

  it('a miss is filled from the origin, the next read is a hit at the edge', async () => {
    const key = fresh();
    expect((await put(atOrigin, key, 'from origin')).status).toBe(200);
    const first = await get(key);
    expect(first.status).toBe(200);
    expect(first.headers.get('X-Cache')).toBe('MISS');
    expect(await first.text()).toBe('from origin');
    const second = await get(key);
    expect(second.headers.get('X-Cache')).toBe('HIT');
    expect(second.headers.get('X-Cache-Tier')).toBe('edge');
    expect(await second.text()).toBe('from origin');
  });

  it('concurrent misses of one key reach the origin once', async () => {
    const key = fresh();
    await put(atOrigin, key, 'coalesced');
    const before = await originGets(origin, admin);
    const answers = await Promise.all(Array.from({ length: 20 }, () => get(key)));
    expect(answers.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(await Promise.all(answers.map((r) => r.text()))).toEqual(Array(20).fill('coalesced'));
    expect((await originGets(origin, admin)) - before).toBe(1);
  });

  it('a write through the edge reaches the origin and the edge serves it', async () => {
    const key = fresh();
    await put(atOrigin, key, 'old');
    await get(key);
    expect((await put(edge.fetch, key, 'written at the edge')).status).toBe(200);
    expect(await (await atOrigin(`/api/v1/cache/${ns}/${key}`, { headers: auth() })).text()).toBe(
      'written at the edge',
    );
    expect(await (await get(key)).text()).toBe('written at the edge');
  });

  it('a purge sent through another edge stops this edge serving the old value', async () => {
    const key = fresh();
    await put(atOrigin, key, 'before purge');
    await get(key);
    expect((await get(key)).headers.get('X-Cache')).toBe('HIT');
    const purged = await fetch(`${other.url}/api/v1/purge`, {
      method: 'POST',
      body: JSON.stringify({ namespace: ns, keys: [key] }),
      headers: { ...auth(), 'Content-Type': 'application/json' },
    });
    expect(purged.status).toBe(200);
    await eventually('the purged key to miss', async () => (await get(key)).status === 404, deadlineMs);
  });

  it('401 without a token and 403 for another namespace, with the envelope', async () => {
    const key = fresh();
    const anonymous = await get(key, {});
    expect(anonymous.status).toBe(401);
    expect(errorEnvelopeSchema.parse(await anonymous.json()).error.code).toBe('AUTH_001');
    const elsewhere = await issuer.sign({ scope: ['cache:read'], ns: ['another'] });
    const denied = await get(key, { Authorization: `Bearer ${elsewhere}` });
    expect(denied.status).toBe(403);
    expect(errorEnvelopeSchema.parse(await denied.json()).error.code).toBe('AUTH_002');
  });

  it('bad input answers 400 CACHE_004 without reaching the origin', async () => {
    const before = await originGets(origin, admin);
    const badKey = await edge.fetch(`/api/v1/cache/${ns}/${'x'.repeat(600)}`, { headers: auth() });
    expect(badKey.status).toBe(400);
    expect(errorEnvelopeSchema.parse(await badKey.json()).error.code).toBe('CACHE_004');
    const badTtl = await edge.fetch(`/api/v1/cache/${ns}/${fresh()}?ttl=-5`, {
      method: 'PUT',
      body: 'x',
      headers: auth(),
    });
    expect(badTtl.status).toBe(400);
    expect(errorEnvelopeSchema.parse(await badTtl.json()).error.code).toBe('CACHE_004');
    expect(await originGets(origin, admin)).toBe(before);
  });
});
