import { createHash, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { requestBody } from '../../platform/node/request-body.ts';
import { type AppEnv, installErrorHandling, valueSizeLimit } from '../../shared/http.ts';

// Both ways of reading a body, behind the same size limit, on one real node:http server: `/direct/*` reads with
// the helper, `/hono/*` with @hono/node-server's `arrayBuffer()`. The answers must be the same.
const limit = 300_000;
/** What each route's read gave: the bytes' shape, or the error it rejected with. */
type Outcome = { kind: string; plain: boolean; length: number; ownBuffer: boolean } | Error;
const outcomes = new Map<string, Outcome>();
const waiters = new Map<string, (value: Outcome) => void>();

function settle(tag: string, outcome: Outcome) {
  outcomes.set(tag, outcome);
  waiters.get(tag)?.(outcome);
}

function outcomeOf(tag: string): Promise<Outcome> {
  const known = outcomes.get(tag);
  if (known) return Promise.resolve(known);
  return new Promise((resolve) => waiters.set(tag, resolve));
}

/** Resolves once the test's request has been torn down under the route (polled, with a deadline). */
async function untilDestroyed(incoming: IncomingMessage): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!incoming.destroyed) {
    if (Date.now() > deadline) throw new Error('request never torn down');
    await new Promise((r) => setTimeout(r, 5));
  }
}

const app = new Hono<AppEnv>();
installErrorHandling(app);
for (const way of ['direct', 'hono'] as const) {
  app.put(`/${way}/:tag`, valueSizeLimit(limit), async (c) => {
    const tag = `${way}/${c.req.param('tag')}`;
    const incoming = (c.env as unknown as { incoming: IncomingMessage }).incoming;
    if (c.req.param('tag').startsWith('late')) await untilDestroyed(incoming);
    let bytes: Uint8Array;
    try {
      bytes = way === 'direct' ? await requestBody(c) : new Uint8Array(await c.req.arrayBuffer());
    } catch (error) {
      settle(tag, error as Error);
      throw error;
    }
    settle(tag, {
      kind: createHash('sha256').update(bytes).digest('hex'),
      plain: Object.getPrototypeOf(bytes) === Uint8Array.prototype,
      length: bytes.byteLength,
      ownBuffer: bytes.byteOffset === 0 && bytes.buffer.byteLength === bytes.byteLength,
    });
    return c.json({ bytes: bytes.byteLength, sha256: createHash('sha256').update(bytes).digest('hex') });
  });
}

let server: Server;
let base: string;
let port: number;

beforeAll(async () => {
  server = createServer(getRequestListener(app.fetch));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  base = `http://127.0.0.1:${port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function put(way: string, tag: string, body: BodyInit) {
  const res = await fetch(`${base}/${way}/${tag}`, { method: 'PUT', body, duplex: 'half' } as RequestInit);
  const answer = await res.json();
  // An error envelope's timestamp is the only field that differs between two answers.
  if (answer.error?.details) delete answer.error.details.timestamp;
  return { status: res.status, type: res.headers.get('content-type'), body: answer };
}

/** A body with no declared length (chunked transfer coding), in chunks of up to 1,000 bytes. */
const chunked = (bytes: Uint8Array) =>
  new ReadableStream<Uint8Array>({
    start(controller) {
      for (let at = 0; at < bytes.byteLength; at += 1_000) controller.enqueue(bytes.slice(at, at + 1_000));
      controller.close();
    },
  });

/** The bytes a raw PUT sends: the same for both routes, so their reads compare whole. */
const pattern = randomBytes(20_000);

/** Writes a raw HTTP/1.1 PUT declaring `declared` bytes, sends `sent` of them, then ends the connection as told. */
function rawPut(path: string, declared: number, sent: number, ending: 'end' | 'reset'): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      socket.write(`PUT ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: ${declared}\r\n\r\n`);
      socket.write(pattern.subarray(0, sent), () => {
        if (ending === 'end') socket.end();
        else socket.resetAndDestroy();
        resolve();
      });
    });
    socket.on('error', reject);
    socket.resume();
  });
}

describe('reading a request body straight from node:http', () => {
  it('gives the same bytes and answers as @hono/node-server for declared lengths from 0 to the limit, in one plain buffer of exactly that length', async () => {
    for (const size of [0, 1, 1_000, 36_000, 100_000, limit]) {
      const value = randomBytes(size);
      const direct = await put('direct', `s${size}`, value);
      const hono = await put('hono', `s${size}`, value);
      expect(direct).toEqual(hono);
      expect(direct.body).toEqual({ bytes: size, sha256: createHash('sha256').update(value).digest('hex') });
      expect(outcomes.get(`direct/s${size}`)).toMatchObject({ plain: true, length: size, ownBuffer: true });
    }
  });

  it('reads a chunked body (no declared length) the way Hono does, size limit included', async () => {
    const value = randomBytes(50_000);
    const direct = await put('direct', 'chunked', chunked(value));
    expect(direct).toEqual(await put('hono', 'chunked', chunked(value)));
    expect(direct.body.bytes).toBe(50_000);
    const over = randomBytes(limit + 1);
    const directOver = await put('direct', 'chunked-over', chunked(over));
    expect(directOver).toEqual(await put('hono', 'chunked-over', chunked(over)));
    expect([directOver.status, directOver.body.error.code]).toEqual([413, 'CACHE_003']);
  });

  it('answers a declared length over the limit 413 CACHE_003 without reading, as before', async () => {
    const over = randomBytes(limit + 1);
    const direct = await put('direct', 'over', over);
    expect(direct).toEqual(await put('hono', 'over', over));
    expect([direct.status, direct.body.error.code]).toEqual([413, 'CACHE_003']);
    expect(outcomes.has('direct/over')).toBe(false);
  });

  it('rejects a body cut short by the client with the same error as @hono/node-server', async () => {
    for (const way of ['direct', 'hono']) await rawPut(`/${way}/short`, 10_000, 4_000, 'end');
    const direct = await outcomeOf('direct/short');
    const hono = await outcomeOf('hono/short');
    expect(direct).toBeInstanceOf(Error);
    expect(hono).toBeInstanceOf(Error);
    expect([(direct as Error).message, (direct as NodeJS.ErrnoException).code]).toEqual([
      (hono as Error).message,
      (hono as NodeJS.ErrnoException).code,
    ]);
  });

  it('still reads a body received whole before the connection reset, as @hono/node-server does', async () => {
    for (const way of ['direct', 'hono']) await rawPut(`/${way}/late-whole`, 5_000, 5_000, 'reset');
    const direct = await outcomeOf('direct/late-whole');
    const hono = await outcomeOf('hono/late-whole');
    // Hono recovers it: the route gets the whole body though the client is gone.
    expect(hono).toMatchObject({
      length: 5_000,
      kind: createHash('sha256').update(pattern.subarray(0, 5_000)).digest('hex'),
    });
    expect(direct).toEqual({ ...hono, ownBuffer: true });
  });

  it('rejects a body cut short by a reset before the route read it, as @hono/node-server does', async () => {
    for (const way of ['direct', 'hono']) await rawPut(`/${way}/late-short`, 5_000, 1_000, 'reset');
    const direct = await outcomeOf('direct/late-short');
    const hono = await outcomeOf('hono/late-short');
    expect(direct).toBeInstanceOf(Error);
    expect((direct as Error).message).toBe((hono as Error).message);
  });
});
