/**
 * The floor of the Deno hit path: a bare `Deno.serve` handler answering any
 * request with a fixed body, with no framework and no cache. Port from
 * `BARE_PORT`; value size from `BARE_VALUE_BYTES`.
 */
const env = Deno.env.toObject();
const body = new Uint8Array(Number(env.BARE_VALUE_BYTES ?? 1024)).fill(120);
Deno.serve({ port: Number(env.BARE_PORT ?? 0), hostname: '127.0.0.1', onListen: () => {} }, (req) =>
  new URL(req.url).pathname === '/health'
    ? Response.json({ status: 'ok' })
    : new Response(body, { headers: { 'Content-Type': 'application/octet-stream', 'X-Cache': 'HIT' } }),
);
