import { afterEach, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { type CuttableProxy, cuttableProxy } from '../support/proxy.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/** The purge stream's failure handling over real HTTP: dead connections, origin restarts. */
describe('purge stream', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  const track = <T extends { close(): Promise<void> }>(x: T): T => {
    cleanups.push(() => x.close());
    return x;
  };

  const put = (base: string, key: string, body: string) =>
    fetch(`${base}/api/v1/cache/stream/${key}?ttl=60`, { method: 'PUT', body });
  const read = async (base: string, key: string) => {
    const res = await fetch(`${base}/api/v1/cache/stream/${key}`);
    return { status: res.status, body: await res.text(), cache: res.headers.get('X-Cache') };
  };

  it('an edge whose stream goes silent reconnects after the idle timeout and replays what it missed', async () => {
    const origin: RunningOrigin = track(await originFor({ PURGE_HEARTBEAT_SECONDS: '1' }));
    const proxy: CuttableProxy = track(await cuttableProxy(origin.port));
    const edge: RunningEdge = track(
      await edgeFor(proxy.url, { EDGE_PURGE_IDLE_TIMEOUT_MS: '2500', EDGE_MAX_TTL_SECONDS: '60' }),
    );
    await put(origin.url, 'k', 'old');
    expect((await read(edge.url, 'k')).body).toBe('old');
    expect((await read(edge.url, 'k')).cache).toBe('HIT');
    const positionBefore = edge.subscription.position;

    proxy.stallExisting();
    await put(origin.url, 'k', 'new');
    // The purge cannot arrive on the stalled connection; after the idle timeout the edge reconnects,
    // sends Last-Event-ID, and the origin replays the gap.
    await eventually(
      'edge to serve the new value',
      async () => (await read(edge.url, 'k')).body === 'new',
      15_000,
      100,
    );
    expect(edge.subscription.position).not.toBe(positionBefore);
    expect(edge.subscription.position).toBe(origin.bus.health().position);
  });

  it('an edge reconnecting to a restarted origin (a new incarnation of its purge log) drops its whole tier', async () => {
    const first: RunningOrigin = await originFor();
    const port = String(first.port);
    let current = first;
    cleanups.push(() => current.close());
    const edge: RunningEdge = track(await edgeFor(first.url, { EDGE_MAX_TTL_SECONDS: '60' }));
    await put(first.url, 'a', 'A');
    await put(first.url, 'b', 'B');
    await read(edge.url, 'a');
    await read(edge.url, 'b');
    expect(edge.cache.tier.size).toBe(2);

    await first.close();
    current = await originFor({ ORIGIN_PORT: port });
    // The new origin process holds different data; the edge must not keep serving the old tier.
    await eventually(
      'edge to reconnect and reset',
      () => edge.subscription.position === current.bus.health().position,
      15_000,
      50,
    );
    expect(edge.cache.tier.size).toBe(0);
    expect((await read(edge.url, 'a')).status).toBe(404);
  });
});
