/**
 * Run by `deno` (`denoFastHitTwin` in `test/support/deno.ts`): one edge, built
 * as `edge/adapters/deno/main.ts` builds it from the environment, served twice
 * by `Deno.serve` on loopback: once through the Deno fast-hit handler (fast
 * path, then the app) and once by the app alone, so a test can send every
 * request to both and compare the answers. A third listener is the test's
 * control: `PUT /clock` with a Unix ms body sets the clock both sides read,
 * `GET /last` answers who answered the last request on the fast side
 * (`fast`, `app` or `none`). Prints one line `{"fast":url,"full":url,"control":url}`
 * once all three listen.
 */
import { fastHitHandler } from '../../edge/adapters/deno/fast-hit.ts';
import { buildEdge } from '../../edge/build-edge.ts';
import { textEdgeMetrics } from '../../edge/text-metrics.ts';
import { edgeConfigSchema, parseConfig } from '../../shared/config.ts';
import { watchFastHit } from './fast-hit-watch.ts';

declare const Deno: {
  readonly env: { toObject(): Record<string, string> };
  serve(
    options: { port: number; hostname: string; onListen: (address: { port: number }) => void },
    handler: (request: Request) => Response | Promise<Response>,
  ): unknown;
};

const config = parseConfig(edgeConfigSchema, Deno.env.toObject());
const state = { clock: Date.now(), last: 'none' as 'fast' | 'app' | 'none' };
const edge = buildEdge(config, { purgeSource: 'stream', metrics: textEdgeMetrics, now: () => state.clock });
const watched = watchFastHit(edge.fastHit, (side) => {
  state.last = side;
});

const listen = (handler: (request: Request) => Response | Promise<Response>) =>
  new Promise<string>((resolve) => {
    Deno.serve(
      { port: 0, hostname: '127.0.0.1', onListen: ({ port }) => resolve(`http://127.0.0.1:${port}`) },
      handler,
    );
  });

const fast = await listen(fastHitHandler(watched, edge.app.fetch));
const full = await listen(edge.app.fetch);
const control = await listen(async (request) => {
  const path = new URL(request.url).pathname;
  if (request.method === 'PUT' && path === '/clock') {
    state.clock = Number(await request.text());
    return new Response(null, { status: 204 });
  }
  if (path === '/last') {
    const last = state.last;
    state.last = 'none';
    return new Response(last);
  }
  if (path === '/connected') return new Response(String(edge.subscription.connected));
  return new Response(null, { status: 404 });
});
console.log(JSON.stringify({ fast, full, control }));
