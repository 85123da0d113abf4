/**
 * The floor of the Node hit path: a bare `node:http` listener answering any
 * request with a fixed body (and the health check the harness waits for),
 * with no framework, no cache and no request object. Port from `BARE_PORT`;
 * value size from `BARE_VALUE_BYTES`.
 */
import { createServer } from 'node:http';

const body = new Uint8Array(Number(process.env.BARE_VALUE_BYTES ?? 1024)).fill(120);
const health = Buffer.from('{"status":"ok"}');
const headers = ['Content-Type', 'application/octet-stream', 'X-Cache', 'HIT', 'Content-Length', String(body.length)];
const healthHeaders = ['Content-Type', 'application/json', 'Content-Length', String(health.length)];
createServer((req, res) => {
  if (req.url === '/health') res.writeHead(200, healthHeaders).end(health);
  else res.writeHead(200, headers).end(body);
}).listen(Number(process.env.BARE_PORT ?? 0), '127.0.0.1');
