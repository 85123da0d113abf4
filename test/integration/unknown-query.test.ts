import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { edgeFor, originFor } from '../support/stack.ts';

interface Case {
  readonly method: string;
  readonly path: string;
  readonly body?: string;
  readonly originOnly?: boolean;
}

const json = (v: unknown) => JSON.stringify(v);
const cases: Case[] = [
  { method: 'GET', path: '/api/v1/cache/demo/k' },
  { method: 'PUT', path: '/api/v1/cache/demo/k', body: 'v' },
  { method: 'DELETE', path: '/api/v1/cache/demo/k' },
  { method: 'POST', path: '/api/v1/cache/demo/batch/get', body: json({ keys: ['k'] }) },
  { method: 'POST', path: '/api/v1/cache/demo/batch/set', body: json({ entries: { k: 'v' }, ttl: 60 }) },
  { method: 'POST', path: '/api/v1/purge', body: json({ namespace: 'demo', keys: ['k'] }) },
  { method: 'GET', path: '/api/v1/purge/stream', originOnly: true },
  { method: 'GET', path: '/api/v1/stats', originOnly: true },
  {
    method: 'POST',
    path: '/api/v1/invalidations',
    originOnly: true,
    body: json({ id: 'q-1', namespace: 'demo', keys: ['k'], action: 'delete', timestamp: 1 }),
  },
];

describe('an unknown query parameter is 400 CACHE_004 naming it, on every API route of edge and origin', () => {
  let origin: RunningOrigin;
  let edge: RunningEdge;
  beforeAll(async () => {
    origin = await originFor();
    edge = await edgeFor(origin.url, { EDGE_STATS_INTERVAL_SECONDS: '0' });
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
  });

  for (const side of ['edge', 'origin'] as const) {
    for (const c of cases) {
      if (c.originOnly && side === 'edge') continue;
      it(`${side}: ${c.method} ${c.path}?TTL=5`, async () => {
        const base = side === 'edge' ? edge.url : origin.url;
        const res = await fetch(`${base}${c.path}?TTL=5`, {
          method: c.method,
          body: c.body,
          headers: c.body?.startsWith('{') ? { 'Content-Type': 'application/json' } : {},
        });
        expect(res.status).toBe(400);
        const body = (await res.json()) as { error: { code: string; message: string; details: { parameter: string } } };
        expect(body.error.code).toBe('CACHE_004');
        expect(body.error.details.parameter).toBe('TTL');
        expect(body.error.message).toContain('"TTL"');
      });
    }
  }

  it('a PUT with ?TTL=5 stores nothing, and the documented ttl and tags are accepted', async () => {
    const refused = await fetch(`${edge.url}/api/v1/cache/demo/typo?TTL=5`, { method: 'PUT', body: 'v' });
    expect(refused.status).toBe(400);
    await refused.text();
    const miss = await fetch(`${origin.url}/api/v1/cache/demo/typo`);
    expect(miss.status).toBe(404);
    await miss.text();
    const ok = await fetch(`${edge.url}/api/v1/cache/demo/typo?ttl=5&tags=a,b`, { method: 'PUT', body: 'v' });
    expect(ok.status).toBe(200);
    await ok.text();
  });
});
