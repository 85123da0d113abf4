import { hostname } from 'node:os';
import { afterEach, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import { edgeIdOf } from '../../edge/edge-id.ts';
import { denoEdgeFor } from '../support/deno.ts';
import { edgeFor, originFor, ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/**
 * An origin timing its staleness canary every second and a Node edge
 * reporting its stats every second (with `edgeEnv`); resolves with the edge
 * once the origin names it both in its edge list (stats reports) and in the
 * canary's per-edge figures (applied-position reports), with those names.
 */
async function reportedIds(
  edgeEnv: Record<string, string>,
): Promise<{ edge: RunningEdge; fromStats: string[]; fromCanary: string[] }> {
  const origin = await originFor({
    REDIS_URL: inject('redisUrl'),
    PURGE_LOG_KEY: ownPurgeLogKey(),
    PURGE_CANARY_SECONDS: '1',
  });
  cleanups.push(() => origin.close());
  const edge = await edgeFor(origin.url, { EDGE_STATS_INTERVAL_SECONDS: '1', ...edgeEnv });
  cleanups.push(() => edge.close());
  return await eventually(
    "the edge in the origin's edge list and in the canary's per-edge figures",
    async () => {
      const stats = (await (await fetch(`${origin.url}/api/v1/stats`)).json()) as { edges: { edge_id: string }[] };
      const ready = (await (await fetch(`${origin.url}/ready`)).json()) as {
        canary: { applied: { edge_id: string }[] } | null;
      };
      const fromStats = stats.edges.map((e) => e.edge_id);
      const fromCanary = ready.canary?.applied.map((e) => e.edge_id) ?? [];
      return fromStats.length > 0 && fromCanary.length > 0 ? { edge, fromStats, fromCanary } : null;
    },
    15_000,
    100,
  );
}

describe("a Node edge's name in its reports to the origin", () => {
  it('without EDGE_ID, the stats report and the applied-position report name the same id, host:port', async () => {
    const { edge, fromStats, fromCanary } = await reportedIds({});
    expect(fromStats).toEqual([edgeIdOf(undefined, hostname(), edge.port)]);
    expect(fromCanary).toEqual(fromStats);
  });

  it('with EDGE_ID, both reports name it', async () => {
    const { fromStats, fromCanary } = await reportedIds({ EDGE_ID: 'edge-named' });
    expect(fromStats).toEqual(['edge-named']);
    expect(fromCanary).toEqual(['edge-named']);
  });
});

describe("a Deno edge's name in its applied-position reports", () => {
  /** Ids the origin's staleness canary names, once it names one, for a real Deno edge started with `edgeEnv`. */
  async function canaryIds(edgeEnv: Record<string, string>): Promise<{ port: number; ids: string[] }> {
    const origin = await originFor({
      REDIS_URL: inject('redisUrl'),
      PURGE_LOG_KEY: ownPurgeLogKey(),
      PURGE_CANARY_SECONDS: '1',
    });
    cleanups.push(() => origin.close());
    const edge = await denoEdgeFor(origin.url, edgeEnv);
    cleanups.push(async () => {
      await edge.close();
    });
    const ids = await eventually(
      "the Deno edge in the canary's per-edge figures",
      async () => {
        const ready = (await (await fetch(`${origin.url}/ready`)).json()) as {
          canary: { applied: { edge_id: string }[] } | null;
        };
        const applied = ready.canary?.applied.map((e) => e.edge_id) ?? [];
        return applied.length > 0 ? applied : null;
      },
      20_000,
      100,
    );
    return { port: Number(new URL(edge.url).port), ids };
  }

  it('without EDGE_ID, it is host:port of its listener, as on Node (stable across restarts on one port)', async () => {
    const { port, ids } = await canaryIds({});
    expect(ids).toEqual([edgeIdOf(undefined, hostname(), port)]);
  }, 40_000);

  it('with EDGE_ID, the report names it', async () => {
    const { ids } = await canaryIds({ EDGE_ID: 'deno-named' });
    expect(ids).toEqual(['deno-named']);
  }, 40_000);
});
