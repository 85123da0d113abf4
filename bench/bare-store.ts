/**
 * The data-path baseline of bench (s), back half: a bare in-memory store on
 * `node:http`, no cache logic. `GET /api/v1/cache/:namespace/:key` answers
 * 200 with the stored bytes or 404; `PUT` stores the body (one Buffer per
 * value) and answers 200; `GET /health` answers 200. Port from `BARE_PORT`.
 */
import { createServer } from 'node:http';

const values = new Map<string, Buffer>();
const prefix = '/api/v1/cache/';

const server = createServer((req, res) => {
  const url = req.url ?? '';
  if (url === '/health') {
    res.writeHead(200).end('ok');
    return;
  }
  if (!url.startsWith(prefix)) {
    res.writeHead(404).end();
    return;
  }
  const key = url.slice(prefix.length).split('?', 1)[0]!;
  if (req.method === 'PUT') {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      values.set(key, chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks));
      res.writeHead(200, { 'Content-Length': 0 }).end();
    });
    return;
  }
  const value = values.get(key);
  if (value === undefined) res.writeHead(404, { 'Content-Length': 0 }).end();
  else
    res.writeHead(200, { 'Content-Type': 'application/octet-stream', 'Content-Length': value.byteLength }).end(value);
});
// Idle keep-alive connections outlive the client's reuse window, so a reused socket is never closed under a request.
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.BARE_PORT ?? 0), '127.0.0.1');
