import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/** Negative caching over real HTTP: an origin on real Redis and two Node edges that remember misses for a minute. */
describe('negative caching at the edge', () => {
  let origin: RunningOrigin;
  let a: RunningEdge;
  let b: RunningEdge;
  const ns = `neg${Date.now().toString(36)}`;

  beforeAll(async () => {
    origin = await originFor({ REDIS_URL: inject('redisUrl') });
    a = await edgeFor(origin.url, { EDGE_NEGATIVE_TTL_MS: '60000' });
    b = await edgeFor(origin.url, { EDGE_NEGATIVE_TTL_MS: '60000' });
  });
  afterAll(async () => {
    await a?.close();
    await b?.close();
    await origin?.close();
  });

  const url = (edge: RunningEdge, key: string) => `${edge.url}/api/v1/cache/${ns}/${key}`;

  it('a remembered miss is answered by the edge alone, and a write at another edge clears it through the purge stream', async () => {
    expect((await fetch(url(a, 'later'))).status).toBe(404);
    // Written behind the edge's back, straight at the origin's store: edge A keeps answering its remembered miss…
    await origin.service.store.set(ns, 'later', {
      value: new TextEncoder().encode('sneaked'),
      contentType: 'text/plain',
      ttlMs: 60_000,
      tags: [],
    });
    expect((await fetch(url(a, 'later'))).status).toBe(404);
    // …until a write through the API (here at edge B) purges the key everywhere.
    expect((await fetch(url(b, 'later'), { method: 'PUT', body: 'written at b' })).status).toBe(200);
    const read = await eventually('edge A to see the write', async () => {
      const res = await fetch(url(a, 'later'));
      return res.status === 200 ? res : null;
    });
    expect(await read.text()).toBe('written at b');
  });
});
