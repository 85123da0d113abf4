import { Hono } from 'hono';
import { streamSSE } from 'hono/streaming';
import type { AppEnv } from '../../shared/http.ts';
import type { HeartbeatMessage, PurgeStreamEvent } from '../../shared/schemas.ts';
import type { PurgeBus } from '../purge/bus.ts';

/** Path of the purge stream every edge subscribes to. */
export const purgeStreamPath = '/api/v1/purge/stream';

/**
 * Mounts the purge stream: Server-Sent Events, one persistent response per
 * edge, fed by the {@link PurgeBus}. SSE was chosen over WebSocket because
 * it is one-way (origin → edge, exactly our flow), is plain HTTP through any
 * proxy, and has resumption built in: the client sends `Last-Event-ID` (or
 * `?since=`), the opaque position of the last purge it applied, and the bus
 * replays the gap or answers `reset` (ARCHITECTURE.md §4). The edge reads it
 * with `fetch`, so the same source runs on Node and in workerd.
 *
 * Events (`event:` is the message `type`, `data:` its JSON, shapes in
 * `shared/schemas.ts`): `hello` first, then `purge` and `reset` with
 * `id: <position>`, and every `heartbeatMs` a `heartbeat` (no `id`) carrying
 * `{position, tail_live, tail_age_ms}`: the position this edge has been sent
 * up to and the bus's tail state. An edge that falls more than the bus's
 * `retainedEntries` behind gets a `reset` instead of an unbounded queue.
 */
export function purgeStreamRoutes(bus: PurgeBus, heartbeatMs: number): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  app.get(purgeStreamPath, (c) => {
    const from = c.req.header('Last-Event-ID') ?? c.req.query('since') ?? null;
    return streamSSE(c, async (stream) => {
      let queue: PurgeStreamEvent[] = [];
      let wake: (() => void) | undefined;
      let closed = false;
      // A heartbeat right after `hello`: a reconnecting edge renews its lease at once.
      let beat = true;
      const subscription = bus.subscribe(from || null, (event) => {
        queue.push(event);
        if (queue.length > bus.retainedEntries) {
          queue = [{ type: 'reset', position: event.position, reason: 'edge fell behind the purge stream' }];
        }
        wake?.();
      });
      queue = [{ type: 'hello', position: subscription.head }, ...queue];
      // What this edge has been sent up to: the position a heartbeat confirms.
      let sent = subscription.head;
      const heartbeat = setInterval(() => {
        beat = true;
        wake?.();
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
              await stream.writeSSE({ id: m.position, event: m.type, data: JSON.stringify(m) });
              sent = m.position;
            }
          }
          if (beat && !closed) {
            beat = false;
            const { tailLive, tailAgeMs } = bus.health();
            const message: HeartbeatMessage = {
              type: 'heartbeat',
              position: sent,
              tail_live: tailLive,
              tail_age_ms: Math.round(tailAgeMs),
            };
            await stream.writeSSE({ event: message.type, data: JSON.stringify(message) });
            continue;
          }
          if (!closed && queue.length === 0) await new Promise<void>((resolve) => (wake = resolve));
          wake = undefined;
        }
      } finally {
        clearInterval(heartbeat);
        subscription.close();
      }
    });
  });
  return app;
}
