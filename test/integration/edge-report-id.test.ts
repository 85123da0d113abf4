import { hostname } from 'node:os';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { edgeIdOf } from '../../edge/edge-id.ts';
import { edgeFor, originFor, ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe("a Node edge's name in its reports to the origin", () => {
  it('without EDGE_ID, the stats report and the applied-position report name the same id, host:port', async () => {
    const origin = await originFor({
      REDIS_URL: inject('redisUrl'),
      PURGE_LOG_KEY: ownPurgeLogKey(),
      PURGE_CANARY_SECONDS: '1',
    });
    cleanups.push(() => origin.close());
    const edge = await edgeFor(origin.url, { EDGE_STATS_INTERVAL_SECONDS: '1' });
    cleanups.push(() => edge.close());
    const [statsIds, canaryIds] = await eventually(
      "the edge in the origin's edge list and in the canary's per-edge figures",
      async () => {
        const stats = (await (await fetch(`${origin.url}/api/v1/stats`)).json()) as { edges: { edge_id: string }[] };
        const ready = (await (await fetch(`${origin.url}/ready`)).json()) as {
          canary: { applied: { edge_id: string }[] } | null;
        };
        const fromStats = stats.edges.map((e) => e.edge_id);
        const fromCanary = ready.canary?.applied.map((e) => e.edge_id) ?? [];
        return fromStats.length > 0 && fromCanary.length > 0 ? [fromStats, fromCanary] : null;
      },
      15_000,
      100,
    );
    expect(statsIds).toEqual([edgeIdOf(undefined, hostname(), edge.port)]);
    expect(canaryIds).toEqual(statsIds);
  });

  it('with EDGE_ID, both reports name it', async () => {
    const origin = await originFor({
      REDIS_URL: inject('redisUrl'),
      PURGE_LOG_KEY: ownPurgeLogKey(),
      PURGE_CANARY_SECONDS: '1',
    });
    cleanups.push(() => origin.close());
    const edge = await edgeFor(origin.url, { EDGE_STATS_INTERVAL_SECONDS: '1', EDGE_ID: 'edge-named' });
    cleanups.push(() => edge.close());
    await eventually(
      'the named edge in both lists',
      async () => {
        const stats = (await (await fetch(`${origin.url}/api/v1/stats`)).json()) as { edges: { edge_id: string }[] };
        const ready = (await (await fetch(`${origin.url}/ready`)).json()) as {
          canary: { applied: { edge_id: string }[] } | null;
        };
        return (
          stats.edges.map((e) => e.edge_id).join() === 'edge-named' &&
          ready.canary?.applied.map((e) => e.edge_id).join() === 'edge-named'
        );
      },
      15_000,
      100,
    );
  });
});
