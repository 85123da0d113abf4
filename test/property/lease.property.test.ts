import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { EdgeCache } from '../../edge/core/edge-cache.ts';
import { Lease } from '../../edge/core/lease.ts';
import { memoryTier } from '../../edge/core/memory-tier.ts';
import type { PurgeConfirmation } from '../../edge/core/purge-source.ts';
import type { PurgeMessage } from '../../shared/schemas.ts';
import { originRead } from '../support/fixtures.ts';

const leaseMs = 3_000;
const keys = ['a', 'b', 'c'] as const;

type Step =
  | { kind: 'write'; key: (typeof keys)[number] }
  | { kind: 'heartbeat' }
  | { kind: 'cut' }
  | { kind: 'reconnect' }
  | { kind: 'tail'; live: boolean }
  | { kind: 'advance'; ms: number }
  | { kind: 'read'; key: (typeof keys)[number] };

const key = fc.constantFrom(...keys);
const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: key.map((k) => ({ kind: 'write' as const, key: k })) },
  { weight: 2, arbitrary: fc.constant({ kind: 'heartbeat' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'cut' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'reconnect' as const }) },
  { weight: 1, arbitrary: fc.boolean().map((live) => ({ kind: 'tail' as const, live })) },
  { weight: 3, arbitrary: fc.integer({ min: 1, max: 2_500 }).map((ms) => ({ kind: 'advance' as const, ms })) },
  { weight: 4, arbitrary: key.map((k) => ({ kind: 'read' as const, key: k })) },
);

/**
 * Random interleavings of origin writes (each acknowledged, its purge sent
 * down an in-order stream), heartbeats, silent cuts of the stream,
 * reconnects (the gap replayed), the origin's tail going dead or live, time
 * passing and reads at one edge whose renewals and revalidations reach the
 * origin only while the link is up. Property: no read serves a version older
 * than one the origin acknowledged at or before `now − lease`.
 */
describe('lease property', () => {
  it('no read serves a value older than one acknowledged before now − lease', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 30, maxLength: 150 }), async (steps) => {
        let now = 1_000_000;
        const clock = () => now;
        let linkUp = true;
        let tailLive = true;
        let confirmation: PurgeConfirmation | null = { atMs: now, tailLive: true };
        // The origin: current version per key and every acknowledged write (key, version, time).
        const versions = new Map<string, number>();
        const acked: { key: string; version: number; atMs: number }[] = [];
        let nextVersion = 1;
        // Purges sent but not yet delivered (the stream is cut).
        let backlog: PurgeMessage[] = [];
        const tier = memoryTier({ maxBytes: 1 << 20, now: clock });
        const heartbeat = () => {
          if (!linkUp) return false;
          confirmation = { atMs: now, tailLive };
          return tailLive;
        };
        const lease = new Lease({
          leaseMs,
          renewAfterMs: leaseMs,
          confirmation: () => confirmation,
          renew: async () => heartbeat(),
          now: clock,
        });
        const unreachable = () => Object.assign(new Error('origin unreachable'), { code: 'CACHE_005' });
        const cache = new EdgeCache({
          tier,
          maxTtlMs: 300_000,
          now: clock,
          lease,
          load: async (_ns, k) => {
            if (!linkUp) throw unreachable();
            const v = versions.get(k);
            return v === undefined ? null : originRead(`v${v}`, v);
          },
          revalidate: async (_ns, k, version) => {
            if (!linkUp) throw unreachable();
            const v = versions.get(k);
            if (v === undefined) return null;
            return v === version ? 'not-modified' : originRead(`v${v}`, v);
          },
        });
        const deliver = () => {
          for (const m of backlog) cache.apply(m);
          backlog = [];
        };
        // Every key exists at the origin and sits in the edge's tier to begin with.
        for (const k of keys) {
          const version = nextVersion++;
          versions.set(k, version);
          acked.push({ key: k, version, atMs: now });
          await cache.read('ns', k);
        }
        for (const s of steps) {
          switch (s.kind) {
            case 'write': {
              const version = nextVersion++;
              versions.set(s.key, version);
              acked.push({ key: s.key, version, atMs: now });
              backlog.push({
                type: 'purge',
                position: String(version),
                namespace: 'ns',
                keys: [s.key],
                tags: [],
                prefix: null,
                version,
                action: 'update',
                ts: now,
              });
              if (linkUp) deliver();
              break;
            }
            case 'heartbeat':
              heartbeat();
              break;
            case 'cut':
              linkUp = false;
              break;
            case 'reconnect':
              linkUp = true;
              deliver();
              break;
            case 'tail':
              tailLive = s.live;
              break;
            case 'advance':
              now += s.ms;
              break;
            case 'read': {
              let read: Awaited<ReturnType<EdgeCache['read']>>;
              try {
                read = await cache.read('ns', s.key);
              } catch {
                continue; // 503: nothing served
              }
              if (read.kind === 'miss') continue;
              const owed = acked.filter((w) => w.key === s.key && w.atMs <= now - leaseMs);
              const newestOwed = Math.max(0, ...owed.map((w) => w.version));
              expect(read.entry.version).toBeGreaterThanOrEqual(newestOwed);
              break;
            }
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
