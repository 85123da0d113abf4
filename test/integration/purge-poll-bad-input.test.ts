import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningOrigin } from '../../origin/server.ts';
import { errorEnvelopeSchema } from '../../shared/errors.ts';
import { purge } from '../conformance/purge-bus.ts';
import { workerdRuntime } from '../support/edge-runtimes.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const leaseMs = 1_500;
const slackMs = 100;

type Tamper = 'none' | 'malformed' | 'unauthorized' | 'foreign';

/**
 * An HTTP relay to the origin that tampers with the purge poll only
 * (`GET /api/v1/purges`): a malformed answer, a 401, or a position of
 * another incarnation of the log sent in place of the edge's.
 */
async function tamperingRelay(originUrl: string, foreignPosition: string) {
  let tamper: Tamper = 'none';
  const server: Server = createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', originUrl);
    if (url.pathname === '/api/v1/purges' && tamper === 'malformed') {
      res.writeHead(200, { 'Content-Type': 'application/json' }).end('{"entries":"not a list","tail_live":"yes"}');
      return;
    }
    if (url.pathname === '/api/v1/purges' && tamper === 'unauthorized') {
      res
        .writeHead(401, { 'Content-Type': 'application/json' })
        .end(JSON.stringify({ error: { code: 'AUTH_001', message: 'Unauthenticated' } }));
      return;
    }
    if (url.pathname === '/api/v1/purges' && tamper === 'foreign') url.searchParams.set('after', foreignPosition);
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const upstream = await fetch(new URL(`${url.pathname}${url.search}`, originUrl), {
      method: req.method,
      headers: Object.fromEntries(
        Object.entries(req.headers).filter((e): e is [string, string] => typeof e[1] === 'string' && e[0] !== 'host'),
      ),
      body: chunks.length > 0 ? Buffer.concat(chunks) : undefined,
    });
    const body = Buffer.from(await upstream.arrayBuffer());
    const headers = Object.fromEntries(upstream.headers.entries());
    delete headers['content-encoding'];
    delete headers['content-length'];
    res.writeHead(upstream.status, headers).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    set(mode: Tamper) {
      tamper = mode;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Bad answers to a Workers edge's purge poll: a malformed answer and a 401
 * show on `/ready` as 503 CACHE_005 naming the failure, and the edge never
 * serves a value the origin replaced more than a lease ago (it revalidates
 * instead); a position from another incarnation of the log gets a reset,
 * which empties the isolate's tier.
 */
describe('purge poll bad input (workerd)', () => {
  const cleanups: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  const setUp = async () => {
    const origin: RunningOrigin = await originFor({ PURGE_HEARTBEAT_MS: '250' });
    cleanups.push(() => origin.close());
    const elsewhere = await originFor();
    const foreign = (await elsewhere.bus.publish(purge('elsewhere'))).message.position;
    await elsewhere.close();
    const relay = await tamperingRelay(origin.url, foreign);
    cleanups.push(() => relay.close());
    const edge = await workerdRuntime.start(relay.url, {
      EDGE_LEASE_MS: String(leaseMs),
      EDGE_PURGE_POLL_MS: '300',
      EDGE_ORIGIN_TIMEOUT_MS: '1000',
    });
    cleanups.push(() => edge.close());
    const path = '/api/v1/cache/bad/k';
    const write = (value: string) => fetch(`${origin.url}${path}?ttl=600`, { method: 'PUT', body: value });
    return { origin, relay, edge, path, write };
  };

  it.each([
    ['malformed', /purge poll|expected|invalid/i],
    ['unauthorized', /HTTP 401/],
  ] as const)('a %s poll answer: /ready says why, and no value older than the lease is served', async (mode, why) => {
    const { relay, edge, path, write } = await setUp();
    await write('old');
    expect(await (await edge.fetch(path)).text()).toBe('old');
    relay.set(mode);
    await write('new');
    const acknowledgedAt = Date.now();
    const ready = await eventually(
      'the failure on /ready',
      async () => {
        const res = await edge.fetch('/ready');
        return res.status === 503 ? errorEnvelopeSchema.parse(await res.json()) : null;
      },
      10_000,
    );
    expect(ready.error.code).toBe('CACHE_005');
    expect(String(ready.error.details?.error)).toMatch(why);
    const late: number[] = [];
    while (Date.now() - acknowledgedAt < leaseMs * 2) {
      const startedAt = Date.now();
      const res = await edge.fetch(path);
      if ((await res.text()) === 'old' && startedAt - acknowledgedAt > leaseMs + slackMs) late.push(startedAt);
    }
    expect(late).toEqual([]);
    expect(await (await edge.fetch(path)).text()).toBe('new');
  });

  it('a position from another incarnation of the log gets a reset: the tier is emptied', async () => {
    const { relay, edge, path, write } = await setUp();
    await write('kept');
    await edge.fetch(path);
    expect((await edge.fetch(path)).headers.get('X-Cache')).toBe('HIT');
    relay.set('foreign');
    await eventually(
      'a miss after the reset',
      async () => (await edge.fetch(path)).headers.get('X-Cache') === 'MISS',
      10_000,
    );
    relay.set('none');
    expect((await edge.fetch('/ready')).status).toBe(200);
  });
});
