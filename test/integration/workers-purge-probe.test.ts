import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningOrigin } from '../../origin/server.ts';
import { type EdgeUnderTest, startWorkerdIsolates, workerdRuntime } from '../support/edge-runtimes.ts';
import { originFor } from '../support/stack.ts';

const pollMs = 300;
/** Scheduling slack on a loaded machine (two event loops in one process); the bound itself is the poll interval. */
const marginMs = 100;
const keys = ['p0', 'p1', 'p2'];
const runMs = 4_000;

/**
 * Probe of the Workers edge's bound: writers change keys at the origin (and
 * purge one now and then, by key or by tag) while readers read them through
 * a Workers edge (workerd): one isolate, then two isolates sharing the Cache
 * API as their second tier, read in turn. Every read that starts later than `EDGE_PURGE_POLL_MS` + a
 * margin after the origin acknowledged a change must see that change (a
 * version at least as new, or a miss after a purge). Stale reads beyond the
 * bound are counted: zero.
 */
const setups: Array<{
  name: string;
  start: (originUrl: string, env: Record<string, string>) => Promise<EdgeUnderTest>;
  /** Whether some reads must come from the Cache API (so the probe covers it). */
  sharedTier: boolean;
  /** Milliseconds each writer pauses between changes. */
  writerPauseMs: number;
}> = [
  {
    name: 'one isolate',
    start: (originUrl, env) => workerdRuntime.start(originUrl, env),
    sharedTier: false,
    writerPauseMs: 20,
  },
  // Reads alternate between isolates that fill and read one Cache API, each following the log on its own;
  // writers pause longer so that copies live long enough to be read from the other isolate.
  {
    name: 'two isolates sharing the Cache API',
    start: (originUrl, env) => startWorkerdIsolates(originUrl, env, 2),
    sharedTier: true,
    writerPauseMs: 200,
  },
];

describe.each(setups)('Workers edge purge probe (workerd, $name)', ({ start, sharedTier, writerPauseMs }) => {
  let origin: RunningOrigin;
  let edge: EdgeUnderTest;

  beforeAll(async () => {
    origin = await originFor({ PURGE_HEARTBEAT_MS: '250' });
    edge = await start(origin.url, { EDGE_PURGE_POLL_MS: String(pollMs), EDGE_LEASE_MS: '3000' });
  }, 60_000);
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
  });

  it('no read starting later than the poll interval after an acknowledged change misses it', async () => {
    // Per key: acknowledged changes (the version now current; 0 = purged) and when (in acknowledgement order).
    const acked = new Map<string, { version: number; atMs: number; floor: number }[]>(keys.map((k) => [k, []]));
    const path = (k: string) => `/api/v1/cache/probe/${k}`;
    for (const k of keys) {
      const res = await fetch(`${origin.url}${path(k)}?ttl=600&tags=t-${k}`, { method: 'PUT', body: `${k}-initial` });
      acked.get(k)!.push({ version: ((await res.json()) as { version: number }).version, atMs: Date.now(), floor: 0 });
    }
    const end = Date.now() + runMs;
    let writes = 0;
    let reads = 0;
    let purges = 0;
    let fromCacheApi = 0;
    const stale: { key: string; served: number; owed: number; lateByMs: number }[] = [];

    const writer = async (w: number) => {
      for (let i = 0; Date.now() < end; i++) {
        const k = keys[(w + i) % keys.length]!;
        if (i % 7 === 6) {
          // By key, or by the key's own tag (which a shared tier cannot delete by URL).
          const selector = i % 14 === 13 ? { tags: [`t-${k}`] } : { keys: [k] };
          const res = await fetch(`${origin.url}/api/v1/purge`, {
            method: 'POST',
            body: JSON.stringify({ namespace: 'probe', ...selector }),
            headers: { 'Content-Type': 'application/json' },
          });
          expect(res.status).toBe(200);
          // A purge: the key is gone; a value served after it must come from a later write (above `floor`).
          const floor = Math.max(0, ...acked.get(k)!.map((a) => a.version));
          acked.get(k)!.push({ version: 0, atMs: Date.now(), floor });
          purges++;
        } else {
          const res = await fetch(`${origin.url}${path(k)}?ttl=600&tags=t-${k}`, {
            method: 'PUT',
            body: `${k}-w${w}-${i}`,
          });
          expect(res.status).toBe(200);
          const { version } = (await res.json()) as { version: number };
          acked.get(k)!.push({ version, atMs: Date.now(), floor: 0 });
          writes++;
        }
        await new Promise((r) => setTimeout(r, writerPauseMs));
      }
    };
    // With a shared tier, until some read came from the Cache API (at most one more run): on a loaded machine the
    // writes can purge every copy before the other isolate reads it, and once writes stop both isolates' memory
    // tiers hold the last versions, so reads never reach the Cache API. One key is then rewritten at a time, slower
    // than the poll interval: each isolate drops its memory copy, the first read after fills the Cache API and a
    // read at the other isolate finds it there (an isolate's purge leaves a newer copy another isolate stored).
    const covering = () => sharedTier && fromCacheApi === 0 && Date.now() < end + runMs;
    const reading = () => Date.now() < end || covering();
    const coverer = async () => {
      while (Date.now() < end) await new Promise((r) => setTimeout(r, 50));
      for (let i = 0; covering(); i++) {
        const k = keys[i % keys.length]!;
        const res = await fetch(`${origin.url}${path(k)}?ttl=600&tags=t-${k}`, { method: 'PUT', body: `${k}-c${i}` });
        expect(res.status).toBe(200);
        acked
          .get(k)!
          .push({ version: ((await res.json()) as { version: number }).version, atMs: Date.now(), floor: 0 });
        await new Promise((r) => setTimeout(r, 2 * pollMs + marginMs));
      }
    };
    const reader = async () => {
      while (reading()) {
        for (const k of keys) {
          const startedAt = Date.now();
          // What had to be visible by now: the last change acknowledged before startedAt − bound.
          const owed = acked
            .get(k)!
            .filter((a) => a.atMs < startedAt - pollMs - marginMs)
            .at(-1);
          const res = await edge.fetch(path(k));
          const served = res.status === 200 ? Number(res.headers.get('X-Cache-Version')) : 0;
          if (res.headers.get('X-Cache-Tier') === 'edge-cache-api') fromCacheApi++;
          await res.body?.cancel();
          const endedAt = Date.now();
          reads++;
          if (!owed) continue;
          // Any state from the owed change on is fine: a value at least as new, or a miss from a purge since.
          const history = acked.get(k)!;
          const ok =
            served === 0
              ? owed.version === 0 || history.some((a) => a.version === 0 && a.atMs >= owed.atMs && a.atMs <= endedAt)
              : owed.version === 0
                ? served > owed.floor
                : served >= owed.version;
          if (!ok) stale.push({ key: k, served, owed: owed.version, lateByMs: startedAt - owed.atMs });
        }
      }
    };
    await Promise.all([writer(0), writer(1), coverer(), reader(), reader(), reader()]);
    expect(writes).toBeGreaterThan(20);
    expect(purges).toBeGreaterThan(2);
    expect(reads).toBeGreaterThan(50);
    if (sharedTier) expect(fromCacheApi).toBeGreaterThan(0);
    expect(stale).toEqual([]);
  });
});
