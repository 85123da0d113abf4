/**
 * A test Worker that runs the `EdgeTier` conformance suite inside workerd
 * against the real Cache API (`caches.default`) through the Cache API tier.
 * Bundled with `vitest` replaced by `vitest-shim.ts`; driven by
 * `test/integration/edge-tier-workers-cache.test.ts`:
 * `GET /cases` lists the cases (`[{ name, skip }]`), `POST /run?case=<i>`
 * runs one and answers `{ ok: true }` or `{ ok: false, error }`.
 */
import { cacheApiTier } from '../../edge/adapters/workers/cache-api-tier.ts';
import { runEdgeTierConformance } from '../conformance/edge-tier.ts';
import { cases } from './vitest-shim.ts';

/** The Workers extension of `CacheStorage`. */
interface WorkersCacheStorage {
  readonly default: Cache;
}

let tiers = 0;
const bases = new WeakMap<object, string>();

function register(numRuns: number): void {
  runEdgeTierConformance(
    'Workers Cache API tier (caches.default)',
    // Each tier keys its entries under a base of its own (a fresh tier on the shared cache is empty)
    // unless it shares another's, as a second isolate does.
    ({ now, shareWith }) => {
      const baseUrl = (shareWith && bases.get(shareWith)) ?? `https://tier-${++tiers}.conformance.invalid/`;
      const tier = cacheApiTier({
        cache: (caches as unknown as WorkersCacheStorage).default,
        baseUrl,
        now,
        trustAfterMs: 0,
      });
      bases.set(tier, baseUrl);
      return tier;
    },
    // The Cache API has no byte budget of ours: it evicts by its own rules.
    { injectedClock: true, byteBudget: false, sharedStorage: true },
    { numRuns },
  );
}

export default {
  async fetch(request: Request, env: { NUM_RUNS?: string }): Promise<Response> {
    if (cases.length === 0) register(Number(env.NUM_RUNS ?? 100));
    const url = new URL(request.url);
    if (url.pathname === '/cases') return Response.json(cases.map(({ name, skip }) => ({ name, skip })));
    const selected = cases[Number(url.searchParams.get('case'))];
    if (url.pathname !== '/run' || !selected) return new Response('no such case', { status: 404 });
    try {
      await selected.fn();
      return Response.json({ ok: true });
    } catch (error) {
      const message = error instanceof Error ? `${error.message}\n${error.stack ?? ''}` : String(error);
      return Response.json({ ok: false, error: message });
    }
  },
};
