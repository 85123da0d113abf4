/**
 * The data-path baseline of bench (s), front half: a bare `node:http`
 * reverse proxy, no cache logic, that streams every request to
 * `BARE_ORIGIN_URL` over a keep-alive agent and streams the answer back
 * (status, headers and body as they come). `GET /health` answers 200 itself.
 * Port from `BARE_PORT`.
 */
import { Agent, createServer, request } from 'node:http';

const origin = new URL(process.env.BARE_ORIGIN_URL ?? 'http://127.0.0.1:8080');
const agent = new Agent({ keepAlive: true, maxSockets: 64 });

const server = createServer((req, res) => {
  if (req.url === '/health') {
    res.writeHead(200).end('ok');
    return;
  }
  const upstream = request(
    {
      host: origin.hostname,
      port: origin.port,
      method: req.method,
      path: req.url,
      headers: req.headers,
      agent,
    },
    (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    },
  );
  upstream.on('error', () => {
    if (!res.headersSent) res.writeHead(502);
    res.end();
  });
  req.pipe(upstream);
});
// Idle keep-alive connections outlive the client's reuse window, so a reused socket is never closed under a request.
server.keepAliveTimeout = 65_000;
server.listen(Number(process.env.BARE_PORT ?? 0), '127.0.0.1');
