import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { AppEnv } from '../../shared/http.ts';
import type { StreamMessage } from '../../shared/schemas.ts';
import { formatPosition, type PurgeHub, parsePosition } from '../purge-hub.ts';

/** Path of the purge stream every edge subscribes to. */
export const purgeStreamPath = '/api/v1/purge/stream';

/**
 * Mounts the purge stream: Server-Sent Events, one persistent response per
 * edge. SSE was chosen over WebSocket because it is one-way (origin → edge,
 * exactly our flow), is plain HTTP through any proxy, and has resumption
 * built in: the client sends `Last-Event-ID` (here `epoch:seq`) on reconnect,
 * which is the replay protocol of ARCHITECTURE.md §4. The edge reads it with
 * `fetch`, so the same subscriber runs on Node and in workerd.
 *
 * Each event: `id: epoch:seq`, `event: hello | purge | reset`, `data: JSON`.
 * A comment line every `heartbeatMs` keeps idle connections alive. An edge
 * that falls more than the hub's buffer behind gets a `reset` instead of an
 * unbounded queue.
 */
export function purgeStreamRoutes(hub: PurgeHub, heartbeatMs: number): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get(purgeStreamPath, (c) => {
    const from = parsePosition(c.req.header('Last-Event-ID') ?? c.req.query('since'));
    return streamSSE(c, async (stream) => {
      let queue: StreamMessage[] = hub.catchUp(from);
      let wake: (() => void) | undefined;
      let closed = false;
      const unsubscribe = hub.subscribe((message) => {
        queue.push(message);
        if (queue.length > hub.capacity) {
          queue = [{ type: 'reset', epoch: hub.epoch, seq: hub.seq, reason: 'edge fell behind the purge stream' }];
        }
        wake?.();
      });
      const heartbeat = setInterval(() => {
        void stream.write(': keep-alive\n\n').catch(() => {});
      }, heartbeatMs);
      stream.onAbort(() => {
        closed = true;
        wake?.();
      });
      try {
        while (!closed) {
          while (queue.length > 0 && !closed) {
            const batch = queue;
            queue = [];
            for (const m of batch) {
              await stream.writeSSE({ id: formatPosition(m.epoch, m.seq), event: m.type, data: JSON.stringify(m) });
            }
          }
          if (!closed) await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        clearInterval(heartbeat);
        unsubscribe();
      }
    });
  });
  return app;
}
