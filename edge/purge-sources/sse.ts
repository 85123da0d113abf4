import { createParser } from 'eventsource-parser';
import { type PurgePosition, purgeStreamEventSchema } from '../../shared/schemas.ts';
import type {
  PurgeConfirmation,
  PurgeHandlers,
  PurgeSource,
  PurgeSubscribeOptions,
  PurgeSubscription,
} from '../core/purge-source.ts';

/** Path of the origin's purge stream (see `origin/routes/purge-stream.ts`). */
export const purgeStreamPath = '/api/v1/purge/stream';

export interface SsePurgeSourceOptions {
  /** Origin base URL. */
  readonly originUrl: string;
  /** Reconnect back-off, milliseconds: doubles from `minMs` up to `maxMs`, with jitter. Default 100 to 5 000. */
  readonly retry?: { minMs: number; maxMs: number };
  /** Extra request headers (credentials). */
  readonly headers?: Record<string, string> | undefined;
  /**
   * Milliseconds without any bytes (the origin sends a heartbeat every
   * `PURGE_HEARTBEAT_SECONDS`) after which the connection is presumed dead
   * and replaced. Default 45 000.
   */
  readonly idleTimeoutMs?: number;
  readonly fetch?: typeof fetch;
  /** Clock for confirmation times, Unix ms. */
  readonly now?: () => number;
}

/**
 * The `stream` purge source: one persistent Server-Sent Events subscription
 * to the origin's purge stream, reconnecting with back-off and sending
 * `Last-Event-ID` (the last position applied) so the origin replays the gap
 * or answers `reset`. Heartbeats (`{position, tail_live, tail_age_ms}`)
 * record the last confirmation. Runtime-free: `fetch`, web streams and
 * `eventsource-parser` only.
 *
 * The position only advances on messages that were applied, so a connection
 * that drops halfway through a replay resumes where it stopped.
 */
export function ssePurgeSource(options: SsePurgeSourceOptions): PurgeSource {
  return { subscribe: (handlers, subscribeOptions) => subscribeSse(options, handlers, subscribeOptions) };
}

function subscribeSse(
  options: SsePurgeSourceOptions,
  handlers: PurgeHandlers,
  subscribeOptions: PurgeSubscribeOptions = {},
): PurgeSubscription {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const now = options.now ?? Date.now;
  const retry = options.retry ?? { minMs: 100, maxMs: 5_000 };
  const idleTimeoutMs = options.idleTimeoutMs ?? 45_000;
  const abort = new AbortController();
  let position: PurgePosition | null = subscribeOptions.from ?? null;
  let confirmation: PurgeConfirmation | null = null;
  let connected = false;
  let closed = false;

  const setConnected = (value: boolean) => {
    if (connected === value) return;
    connected = value;
    handlers.onStateChange?.(value);
  };

  const handle = (data: string) => {
    if (closed) return;
    const message = purgeStreamEventSchema.parse(JSON.parse(data));
    switch (message.type) {
      case 'hello':
        // A fresh edge starts at the log's head; one with a position waits for the replay.
        position ??= message.position;
        setConnected(true);
        return;
      case 'purge':
        handlers.onPurge(message);
        position = message.position;
        return;
      case 'reset':
        handlers.onReset(message);
        position = message.position;
        return;
      case 'heartbeat':
        confirmation = { atMs: now(), tailLive: message.tail_live };
        return;
    }
  };

  const connectOnce = async () => {
    // One controller per connection: closing the subscription or an idle connection aborts it.
    const connection = new AbortController();
    const onClose = () => connection.abort();
    abort.signal.addEventListener('abort', onClose);
    let idle: ReturnType<typeof setTimeout> | undefined;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => connection.abort(new Error(`no data for ${idleTimeoutMs} ms`)), idleTimeoutMs);
    };
    armIdle();
    try {
      await readStream(connection.signal, armIdle);
    } finally {
      clearTimeout(idle);
      abort.signal.removeEventListener('abort', onClose);
    }
  };

  const readStream = async (signal: AbortSignal, onData: () => void) => {
    const res = await doFetch(`${options.originUrl.replace(/\/+$/, '')}${purgeStreamPath}`, {
      headers: { Accept: 'text/event-stream', ...(position ? { 'Last-Event-ID': position } : {}), ...options.headers },
      signal,
    });
    if (res.status !== 200 || !res.body) {
      await res.body?.cancel();
      throw new Error(`purge stream answered HTTP ${res.status}`);
    }
    const parser = createParser({ onEvent: (event) => handle(event.data) });
    const decoder = new TextDecoder();
    const reader = res.body.getReader();
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        onData();
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } finally {
      reader.releaseLock();
    }
  };

  const loop = async () => {
    let delay = retry.minMs;
    while (!closed) {
      const startedAt = Date.now();
      try {
        await connectOnce();
        if (!closed) handlers.onError?.(new Error('purge stream ended'));
      } catch (error) {
        if (!closed) handlers.onError?.(error);
      }
      if (closed) break;
      setConnected(false);
      // A connection that stayed up a while earns a fast reconnect.
      if (Date.now() - startedAt > retry.maxMs) delay = retry.minMs;
      const wait = delay / 2 + Math.random() * (delay / 2);
      await new Promise((r) => setTimeout(r, wait));
      delay = Math.min(delay * 2, retry.maxMs);
    }
  };
  void loop();

  return {
    get connected() {
      return connected;
    },
    get position() {
      return position;
    },
    get confirmation() {
      return confirmation;
    },
    close() {
      if (closed) return;
      setConnected(false);
      closed = true;
      abort.abort();
    },
  };
}
