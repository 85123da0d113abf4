import { connect as http2Connect } from 'node:http2';
import { connect as tcpConnect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { purgeStreamPath } from '../../origin/routes/purge-stream.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { grpcJsClient } from '../support/grpc-clients.ts';
import { originFor } from '../support/stack.ts';

/** Raw HTTP/1.1 exchange whose request is written in the given pieces, one event-loop turn apart. */
function rawHttp1(port: number, pieces: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tcpConnect(port, '127.0.0.1');
    let reply = '';
    socket.on('data', (d) => {
      reply += d.toString();
    });
    socket.on('end', () => resolve(reply));
    socket.on('error', reject);
    socket.on('connect', async () => {
      for (const piece of pieces) {
        socket.write(piece);
        await new Promise((r) => setTimeout(r, 20));
      }
    });
  });
}

describe('one origin port for HTTP/1.1 and h2c', () => {
  let origin: RunningOrigin;
  const ns = 'sameport';

  beforeAll(async () => {
    origin = await originFor();
    await fetch(`${origin.url}/api/v1/cache/${ns}/k`, {
      method: 'PUT',
      body: 'v',
      headers: { 'Content-Type': 'text/plain' },
    });
  });
  afterAll(async () => {
    await origin?.close();
  });

  it('an HTTP/1.1 request that starts like the HTTP/2 preface ("P", then "UT …") is still served as HTTP/1.1', async () => {
    const reply = await rawHttp1(origin.port, [
      'P',
      `UT /api/v1/cache/${ns}/split HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok`,
    ]);
    expect(reply).toMatch(/^HTTP\/1\.1 200/);
    expect(await (await fetch(`${origin.url}/api/v1/cache/${ns}/split`)).text()).toBe('ok');
  });

  it('REST answers the same over h2c prior knowledge as over HTTP/1.1', async () => {
    const session = http2Connect(origin.url);
    try {
      const { status, body } = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        const stream = session.request({ ':path': `/api/v1/cache/${ns}/k` });
        let status = 0;
        let body = '';
        stream.on('response', (h) => {
          status = Number(h[':status']);
        });
        stream.on('data', (d) => {
          body += d;
        });
        stream.on('end', () => resolve({ status, body }));
        stream.on('error', reject);
      });
      expect(status).toBe(200);
      expect(body).toBe('v');
    } finally {
      session.close();
    }
  });

  it('close() returns while a purge stream and a gRPC channel are still open', async () => {
    const other = await originFor();
    const stream = await fetch(`${other.url}${purgeStreamPath}`);
    expect(stream.status).toBe(200);
    const gjs = grpcJsClient(other.port);
    await gjs.call('Health', {});
    await other.close();
    gjs.close();
    await stream.body?.cancel().catch(() => {});
  });
});
