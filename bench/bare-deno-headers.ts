/**
 * A bare `Deno.serve` handler answering the way the Deno edge answers a hit,
 * with no cache and no framework: the clone of a response prebuilt once,
 * plus an `X-Request-Id` appended per request. `BARE_HEADERS` is how many
 * constant headers the prebuilt response carries besides `Content-Type`:
 * 1 (`X-Cache`, as the bare handler of bench (a′)) up to 6 (the edge hit's
 * `X-Cache`, `X-Cache-Tier`, `ETag`, `Age`, `X-Cache-Version`,
 * `Cache-Control`, with values of the same length). Port from `BARE_PORT`;
 * 1 KiB body. For `bench/deno-header-cost.ts`.
 */
const env = Deno.env.toObject();
const body = new Uint8Array(1024).fill(120);
const extra: [string, string][] = [
  ['x-cache', 'HIT'],
  ['x-cache-tier', 'edge'],
  ['etag', '"v1"'],
  ['age', '12'],
  ['x-cache-version', '1'],
  ['cache-control', 'public, max-age=3588'],
];
const count = Number(env.BARE_HEADERS ?? 1);
const prebuilt = new Response(body, {
  headers: [['content-type', 'application/octet-stream'], ...extra.slice(0, count)],
});
Deno.serve({ port: Number(env.BARE_PORT ?? 0), hostname: '127.0.0.1', onListen: () => {} }, (req) => {
  if (new URL(req.url).pathname === '/health') return Response.json({ status: 'ok' });
  const response = prebuilt.clone();
  response.headers.append('x-request-id', crypto.randomUUID());
  return response;
});
