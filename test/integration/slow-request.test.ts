import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { edgeFor, originFor } from '../support/stack.ts';

/** What a raw socket receives before the server closes it, or `deadlineMs` passes. */
function trickle(base: string, head: string, deadlineMs: number): Promise<{ text: string; closed: boolean }> {
  const url = new URL(base);
  return new Promise((resolve) => {
    const socket = connect(Number(url.port), url.hostname);
    let text = '';
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed: false });
    }, deadlineMs);
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('close', () => {
      clearTimeout(timer);
      resolve({ text, closed: true });
    });
    socket.on('error', () => {});
    socket.write(head);
  });
}

/** Slow or stalled requests (slowloris, trickled bodies) are cut with 408 after REQUEST_TIMEOUT_MS. */
describe('request timeouts', () => {
  let origin: RunningOrigin;
  let edge: RunningEdge;
  beforeAll(async () => {
    origin = await originFor({ REQUEST_TIMEOUT_MS: '1000' });
    edge = await edgeFor(origin.url, { REQUEST_TIMEOUT_MS: '1000' });
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
  });

  for (const side of ['edge', 'origin'] as const) {
    it(`${side}: a body that stops halfway gets 408 and the connection closes; nothing is stored`, async () => {
      const base = side === 'edge' ? edge.url : origin.url;
      const head =
        'PUT /api/v1/cache/ns/slow HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\nonly ten b';
      // Generous bound: the timeout is 1 s and Node checks every second; the point is that it ends at all.
      const answer = await trickle(base, head, 15_000);
      expect(answer.closed).toBe(true);
      expect(answer.text).toMatch(/^HTTP\/1\.1 408/);
      expect(answer.text).toContain('"code":"CACHE_005"');
      expect((await fetch(`${origin.url}/api/v1/cache/ns/slow`)).status).toBe(404);
    });

    it(`${side}: headers that never finish get 408`, async () => {
      const base = side === 'edge' ? edge.url : origin.url;
      const answer = await trickle(base, 'GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ', 15_000);
      expect(answer.closed).toBe(true);
      expect(answer.text).toMatch(/^HTTP\/1\.1 408/);
      expect(answer.text).toContain('"code":"CACHE_005"');
    });
  }
});
