import { Miniflare } from 'miniflare';
import { buildWorker } from '../../scripts/build-worker.ts';
import { denoEdgeFor } from './deno.ts';
import { edgeFor } from './stack.ts';
import { eventually } from './wait.ts';

/** An edge under test on some runtime, reached through `fetch`. */
export interface EdgeUnderTest {
  /** `http://127.0.0.1:PORT`, for clients that take a base URL. */
  readonly url: string;
  /** Sends a request to the edge (`path` with query, e.g. `/api/v1/cache/ns/k`). */
  fetch(path: string, init?: RequestInit): Promise<Response>;
  close(): Promise<void>;
}

/** One runtime the edge runs on. */
export interface EdgeRuntime {
  readonly name: 'node' | 'deno' | 'workerd';
  /** Starts an edge pointing at `originUrl` with `env` over the defaults; resolves once `/ready` answers 200. */
  start(originUrl: string, env?: Record<string, string>): Promise<EdgeUnderTest>;
}

const readyWithin = 20_000;

async function ready(edge: EdgeUnderTest): Promise<EdgeUnderTest> {
  await eventually(
    'the edge to be ready',
    async () => {
      try {
        const res = await edge.fetch('/ready');
        await res.body?.cancel();
        return res.status === 200;
      } catch {
        return false;
      }
    },
    readyWithin,
  );
  return edge;
}

const over = (base: string) => (path: string, init?: RequestInit) => fetch(`${base}${path}`, init);

/** Node (`@hono/node-server`), in this process. */
export const nodeRuntime: EdgeRuntime = {
  name: 'node',
  async start(originUrl, env = {}) {
    const edge = await edgeFor(originUrl, { EDGE_STATS_INTERVAL_SECONDS: '0', ...env });
    return await ready({ url: edge.url, fetch: over(edge.url), close: () => edge.close() });
  },
};

/** Deno (`Deno.serve`), a real `deno` process. */
export const denoRuntime: EdgeRuntime = {
  name: 'deno',
  async start(originUrl, env = {}) {
    const edge = await denoEdgeFor(originUrl, env);
    return await ready({
      url: edge.url,
      fetch: over(edge.url),
      close: async () => {
        await edge.close();
      },
    });
  },
};

/** Cloudflare Workers: the bundled Worker in workerd (Miniflare). */
export const workerdRuntime: EdgeRuntime = {
  name: 'workerd',
  async start(originUrl, env = {}) {
    const mf = new Miniflare({
      modules: true,
      scriptPath: await buildWorker(),
      compatibilityDate: '2025-09-01',
      bindings: { ORIGIN_URL: originUrl, ...env },
    });
    const url = (await mf.ready).origin;
    return await ready({ url, fetch: dispatchTo(mf, 'edge.test'), close: () => mf.dispose() });
  },
};

/** Sends a request into Miniflare for host `host`; hands the test a standard Response (not Miniflare's own type). */
function dispatchTo(mf: Miniflare, host: string): EdgeUnderTest['fetch'] {
  return async (path, init) => {
    const res = await mf.dispatchFetch(`http://${host}${path}`, init as never);
    return new Response(await res.arrayBuffer(), {
      status: res.status,
      headers: Object.fromEntries(res.headers.entries()),
    });
  };
}

/**
 * Several Workers edges in one workerd (Miniflare), as the isolates of one
 * data center: each its own isolate (memory tier, purge poll, lease), all
 * sharing the Cache API as their second tier (`EDGE_CACHE_API=true`).
 * Requests go to the isolates in turn. Resolves once every isolate is ready.
 */
export async function startWorkerdIsolates(
  originUrl: string,
  env: Record<string, string> = {},
  isolates = 2,
): Promise<EdgeUnderTest> {
  const scriptPath = await buildWorker();
  const names = Array.from({ length: isolates }, (_, i) => `isolate${i}`);
  const mf = new Miniflare({
    workers: names.map((name) => ({
      name,
      routes: [`${name}.edge.test/*`],
      modules: true,
      scriptPath,
      compatibilityDate: '2025-09-01',
      bindings: { ORIGIN_URL: originUrl, EDGE_CACHE_API: 'true', ...env },
    })),
  });
  // A client given this URL reaches the first isolate; tests reach each isolate through `fetch`.
  const url = (await mf.ready).origin;
  const fetchers = names.map((name) => dispatchTo(mf, `${name}.edge.test`));
  for (const f of fetchers) await ready({ url, fetch: f, close: async () => {} });
  let turn = 0;
  return {
    url,
    fetch: (path, init) => fetchers[turn++ % fetchers.length]!(path, init),
    close: () => mf.dispose(),
  };
}

/** Every runtime the edge ships on. */
export const edgeRuntimes: readonly EdgeRuntime[] = [nodeRuntime, denoRuntime, workerdRuntime];
