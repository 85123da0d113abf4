import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import { startEdge } from '../../edge/adapters/node/server.ts';
import { fetchTransport } from '../../edge/origin-transport.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { edgeConfigSchema, parseConfig } from '../../shared/config.ts';
import { originFor } from '../support/stack.ts';

/**
 * The Node edge reaches the origin over undici's `request`; the `fetch`
 * transport is what Deno and Workers use and what the Node edge used before.
 * Two real pairs (origin on the memory store + Node edge), one per transport,
 * get the same requests in the same order, and every answer must be the
 * same: status, headers (but the request id, the date and the entry's own
 * timestamps and versions, which two origins take from their clocks) and
 * body bytes. The requests cover edge misses filled from the origin (large,
 * compressed and incompressible values, chunked by the socket), hits,
 * revalidation after a write elsewhere, writes through the edge, an origin
 * error relayed as its envelope, and a delete.
 */

const ns = `transport-${Date.now().toString(36)}`;
const json = JSON.stringify({ rows: Array.from({ length: 3000 }, (_, i) => ({ id: i, name: `row-${i}` })) });
const noise = crypto.getRandomValues(new Uint8Array(60_000));
const noiseBody = new Uint8Array(300_000);
for (let at = 0; at < noiseBody.byteLength; at += noise.byteLength)
  noiseBody.set(noise.subarray(0, noiseBody.byteLength - at), at);

interface Step {
  readonly to: 'edge' | 'origin';
  readonly method: string;
  readonly path: string;
  readonly body?: string | Uint8Array<ArrayBuffer>;
  readonly headers?: Record<string, string>;
}

const steps: Step[] = [
  { to: 'edge', method: 'GET', path: 'json' },
  { to: 'origin', method: 'PUT', path: 'json', body: json, headers: { 'Content-Type': 'application/json' } },
  { to: 'edge', method: 'GET', path: 'json' },
  { to: 'edge', method: 'GET', path: 'json' },
  {
    to: 'origin',
    method: 'PUT',
    path: 'noise?ttl=120',
    body: noiseBody,
    headers: { 'Content-Type': 'application/octet-stream', 'Cache-Tag': 'a,b' },
  },
  { to: 'edge', method: 'GET', path: 'noise' },
  { to: 'edge', method: 'PUT', path: 'small', body: 'hello', headers: { 'Content-Type': 'text/plain' } },
  { to: 'edge', method: 'GET', path: 'small' },
  {
    to: 'edge',
    method: 'PUT',
    path: 'json',
    body: json.replace('row-1', 'row-one'),
    headers: { 'Content-Type': 'application/json', 'Cache-Control': 'max-age=60, stale-while-revalidate=30' },
  },
  { to: 'edge', method: 'GET', path: 'json' },
  { to: 'edge', method: 'PUT', path: 'leased', body: 'x', headers: { 'X-Cache-Lease': 'not-a-lease' } },
  { to: 'edge', method: 'DELETE', path: 'small' },
  { to: 'edge', method: 'GET', path: 'small' },
];

/**
 * Status, headers (minus the ones that name the request or the clock) and body, as comparable text. The
 * seconds that count down or up with the clock (`max-age`, `s-maxage`, `stale-*` in Cache-Control, and
 * Age) are taken out into `seconds`: the second pair answers a moment after the first, so across a
 * second boundary its remaining lifetime is one less.
 */
async function outcome(
  res: Response,
): Promise<{ status: number; headers: [string, string][]; body: string; seconds: number[] }> {
  const seconds: number[] = [];
  const timed = (name: string, value: string): string => {
    if (name === 'age') {
      seconds.push(Number(value));
      return '<s>';
    }
    if (name !== 'cache-control') return value;
    return value.replace(/=(\d+)/g, (_, n: string) => {
      seconds.push(Number(n));
      return '=<s>';
    });
  };
  const skipped = new Set(['x-request-id', 'date']);
  // Unix milliseconds, versions (milliseconds × 1000 + a counter), ISO 8601 times.
  const clock = /(?<!\d)1\d{12}(?:\d{3})?(?!\d)|\d{4}-\d\d-\d\dT[\d:.]+Z/g;
  const headers = [...res.headers]
    .filter(([name]) => !skipped.has(name))
    .map(([name, value]): [string, string] => [name, timed(name, value.replace(clock, '<ms>'))]);
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = res.headers.get('Content-Type')?.includes('json') ? bytes.toString('utf8').replace(clock, '<ms>') : '';
  return { status: res.status, headers, body: text || bytes.toString('base64'), seconds };
}

describe('edge origin transports give the same answers', () => {
  const pairs: Array<{ origin: RunningOrigin; edge: RunningEdge }> = [];

  beforeAll(async () => {
    for (const originTransport of [undefined, fetchTransport()]) {
      const origin = await originFor();
      const config = parseConfig(edgeConfigSchema, { EDGE_PORT: '0', ORIGIN_URL: origin.url });
      const edge = await startEdge(config, {
        logger: pino({ level: 'silent' }),
        ...(originTransport ? { originTransport } : {}),
      });
      pairs.push({ origin, edge });
    }
  });
  afterAll(async () => {
    for (const { origin, edge } of pairs) {
      await edge.close();
      await origin.close();
    }
  });

  it('answers every request of the sequence identically over undici and over fetch', async () => {
    const [viaUndici, viaFetch] = pairs as [(typeof pairs)[0], (typeof pairs)[0]];
    const seen: number[] = [];
    for (const step of steps) {
      const run = async (pair: (typeof pairs)[0]) =>
        outcome(
          await fetch(`${(step.to === 'edge' ? pair.edge : pair.origin).url}/api/v1/cache/${ns}/${step.path}`, {
            method: step.method,
            ...(step.body !== undefined ? { body: step.body } : {}),
            headers: step.headers ?? {},
          }),
        );
      const a = await run(viaUndici);
      const b = await run(viaFetch);
      const label = `${step.method} ${step.to} ${step.path}`;
      expect({ ...a, seconds: a.seconds.length }, label).toEqual({ ...b, seconds: b.seconds.length });
      // Same directives, and each count of seconds within the one second that can pass between the two.
      for (const [i, n] of a.seconds.entries())
        expect(Math.abs(n - (b.seconds[i] ?? Number.NaN)), label).toBeLessThanOrEqual(1);
      seen.push(a.status);
    }
    // The sequence did reach what it is meant to cover: misses, fills, hits, writes, an origin error, a delete.
    expect(seen).toEqual([404, 200, 200, 200, 200, 200, 200, 200, 200, 200, 412, 200, 404]);
    expect(viaUndici.edge.originLoads).toBeGreaterThan(0);
    expect(viaUndici.edge.originLoads).toBe(viaFetch.edge.originLoads);
  });
});
