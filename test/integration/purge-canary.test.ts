import { afterEach, describe, expect, inject, it } from 'vitest';
import { pollPurgeSource } from '../../edge/purge-sources/poll.ts';
import { canaryNamespace } from '../../origin/purge/canary.ts';
import type { PurgeMessage } from '../../shared/schemas.ts';
import { edgeFor, originFor, ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * The staleness canary on a real origin over the test Redis (region purge
 * log), with a streaming edge and a polling one following it.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface ReadyCanary {
  at: string;
  write_ms: number;
  edges: number;
  delivered: number;
  max_lag_ms: number | null;
  error: string | null;
  applied: { edge_id: string; lag_ms: number | null; behind_ms: number; lagging: boolean }[];
}

const readyCanary = async (url: string) =>
  ((await (await fetch(`${url}/ready`)).json()) as { canary: ReadyCanary | null }).canary;

const histogramCount = (text: string) => {
  const line = text.split('\n').find((l) => l.startsWith('strata_purge_canary_lag_seconds_count'));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
};

describe('the staleness canary', () => {
  it('times its write to every edge, streaming and polling, and shows it in /ready and the metrics', async () => {
    const env = {
      REDIS_URL: inject('redisUrl'),
      PURGE_LOG_KEY: ownPurgeLogKey(),
      PURGE_CANARY_SECONDS: '1',
    };
    const origin = await originFor(env);
    cleanups.push(() => origin.close());
    const edge = await edgeFor(origin.url);
    cleanups.push(() => edge.close());
    const polled: PurgeMessage[] = [];
    const poller = pollPurgeSource({ originUrl: origin.url, pollMs: 100, pageSize: 50 }).subscribe({
      onPurge: (message) => polled.push(message),
      onReset: () => {},
    });
    cleanups.push(() => poller.close());

    // A probe that started with the streaming edge connected: it reached that edge, and the poller read it too.
    const canary = await eventually(
      'a probe delivered to the streaming edge and read by the poller',
      async () => {
        const body = (await (await fetch(`${origin.url}/ready`)).json()) as { canary: ReadyCanary | null };
        const c = body.canary;
        return c && c.error === null && c.edges === 1 && c.delivered >= 2 ? c : null;
      },
      15_000,
      100,
    );
    expect(canary.max_lag_ms).toBeGreaterThanOrEqual(0);
    expect(canary.write_ms).toBeGreaterThanOrEqual(0);
    expect(Number.isNaN(Date.parse(canary.at))).toBe(false);
    expect(polled.some((m) => m.namespace === canaryNamespace)).toBe(true);
    const metrics = await (await fetch(`${origin.url}/metrics`)).text();
    expect(histogramCount(metrics)).toBeGreaterThanOrEqual(2);
  });

  it("times each edge until it applied the canary's purge, and shows a cut-off edge as lagging", async () => {
    const origin = await originFor({
      REDIS_URL: inject('redisUrl'),
      PURGE_LOG_KEY: ownPurgeLogKey(),
      PURGE_CANARY_SECONDS: '1',
    });
    cleanups.push(() => origin.close());
    const a = await edgeFor(origin.url, { EDGE_ID: 'edge-a' });
    cleanups.push(() => a.close());
    const b = await edgeFor(origin.url, { EDGE_ID: 'edge-b' });
    let bOpen = true;
    cleanups.push(() => (bOpen ? b.close() : undefined));

    // One probe that both edges applied and reported back: each has an end-to-end lag for it.
    const both = await eventually(
      'a probe applied by both edges',
      async () => {
        const c = await readyCanary(origin.url);
        const ids = c?.applied.filter((e) => e.lag_ms !== null && !e.lagging).map((e) => e.edge_id);
        return c && ids?.includes('edge-a') && ids.includes('edge-b') ? c : null;
      },
      15_000,
      100,
    );
    for (const e of both.applied) {
      expect(e.lag_ms).toBeGreaterThanOrEqual(0);
      expect(e.behind_ms).toBeGreaterThanOrEqual(0);
    }
    const metrics = await (await fetch(`${origin.url}/metrics`)).text();
    for (const id of ['edge-a', 'edge-b']) {
      const line = metrics
        .split('\n')
        .find((l) => l.startsWith('strata_purge_canary_applied_seconds_count{') && l.includes(`edge="${id}"`));
      expect(Number(line?.split(' ').at(-1))).toBeGreaterThanOrEqual(1);
    }

    // Edge B is cut off: later probes reach only A, and B shows as lagging while A keeps applying.
    await b.close();
    bOpen = false;
    const after = await eventually(
      'edge-b lagging while edge-a keeps up',
      async () => {
        const c = await readyCanary(origin.url);
        const ea = c?.applied.find((e) => e.edge_id === 'edge-a');
        const eb = c?.applied.find((e) => e.edge_id === 'edge-b');
        return ea && eb?.lagging && !ea.lagging && ea.lag_ms !== null ? { c, ea, eb } : null;
      },
      15_000,
      100,
    );
    expect(after.eb.lag_ms).toBeNull();
    expect(after.eb.behind_ms).toBeGreaterThan(1000);
    expect(after.ea.behind_ms).toBeLessThanOrEqual(1000);
    expect(after.c?.edges).toBe(1);
  });

  it('is off by default: no canary in /ready and no canary writes, and edge reports are still taken', async () => {
    const origin = await originFor({ REDIS_URL: inject('redisUrl'), PURGE_LOG_KEY: ownPurgeLogKey() });
    cleanups.push(() => origin.close());
    const body = (await (await fetch(`${origin.url}/ready`)).json()) as Record<string, unknown>;
    expect(body.status).toBe('ready');
    expect('canary' in body).toBe(false);
    // Edges report what they applied whether or not the canary is on; the origin takes it and moves on.
    const report = (payload: unknown) =>
      fetch(`${origin.url}/api/v1/purge/applied`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(payload),
      });
    expect((await report({ edge_id: 'edge-1', position: 'l:i:1' })).status).toBe(204);
    const bad = await report({ edge_id: '', position: 'has spaces' });
    expect(bad.status).toBe(400);
    expect(((await bad.json()) as { error: { code: string } }).error.code).toBe('CACHE_004');
    expect(origin.bus.health().seq).toBe(0);
  });
});
