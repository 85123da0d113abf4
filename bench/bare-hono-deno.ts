/**
 * The Deno baseline of the hit-path benchmark: a bare Hono route served by
 * `Deno.serve` that answers the cache path with a fixed body, doing no cache
 * work. Port from `BARE_PORT`; value size from `BARE_VALUE_BYTES`.
 */
import { Hono } from 'hono';

const env = Deno.env.toObject();
const body = new Uint8Array(Number(env.BARE_VALUE_BYTES ?? 1024)).fill(120);
const app = new Hono();
app.get('/api/v1/cache/:namespace/:key', (c) =>
  c.body(body, 200, { 'Content-Type': 'application/octet-stream', 'X-Cache': 'HIT' }),
);
app.get('/health', (c) => c.json({ status: 'ok' }));
Deno.serve({ port: Number(env.BARE_PORT ?? 0), hostname: '127.0.0.1', onListen: () => {} }, app.fetch);
