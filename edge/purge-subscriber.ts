import { createParser } from 'eventsource-parser';
import { type StreamMessage, streamMessageSchema } from '../shared/schemas.ts';

/** Path of the origin's purge stream (see `origin/routes/purge-stream.ts`). */
export const purgeStreamPath = '/api/v1/purge/stream';

export interface PurgeSubscriberOptions {
  /** Origin base URL. */
  originUrl: string;
  /** Applies one message; called in stream order. */
  onMessage(message: StreamMessage): void;
  /** Told when the subscription goes up (after `hello`) or down. */
  onStateChange?(connected: boolean): void;
  /** Reports a dropped connection or a bad message. */
  onError?(error: unknown): void;
  /** Reconnect back-off, milliseconds: doubles from `minMs` up to `maxMs`, with jitter. */
  retry?: { minMs: number; maxMs: number };
  /** Extra request headers (credentials). */
  headers?: Record<string, string>;
  /**
   * Milliseconds without any bytes (the origin sends a keep-alive comment
   * every `PURGE_HEARTBEAT_SECONDS`) after which the connection is presumed
   * dead and replaced. Default 45 000.
   */
  idleTimeoutMs?: number;
  fetch?: typeof fetch;
}

/** A live subscription. */
export interface PurgeSubscription {
  /** `epoch:seq` of the last message applied, or null before the first. */
  readonly position: string | null;
  readonly connected: boolean;
  /** Ends the subscription for good. */
  close(): void;
}

/**
 * Holds one persistent Server-Sent Events subscription to the origin's purge
 * stream and reconnects with back-off, sending `Last-Event-ID` (the last
 * `epoch:seq` applied) so the origin replays the gap or answers `reset`.
 * Runtime-free: `fetch` and web streams only.
 *
 * The position only advances on messages that were applied, so a connection
 * that drops halfway through a replay resumes where it stopped.
 */
export function subscribePurges(options: PurgeSubscriberOptions): PurgeSubscription {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const retry = options.retry ?? { minMs: 100, maxMs: 5_000 };
  const abort = new AbortController();
  let position: string | null = null;
  let connected = false;
  let closed = false;

  const setConnected = (value: boolean) => {
    if (connected === value) return;
    connected = value;
    options.onStateChange?.(value);
  };

  const handle = (data: string) => {
    const message = streamMessageSchema.parse(JSON.parse(data));
    if (message.type === 'hello') {
      // A fresh edge starts at the hub's present; one with a position waits for the replay.
      if (position === null) position = `${message.epoch}:${message.seq}`;
      setConnected(true);
      options.onMessage(message);
      return;
    }
    options.onMessage(message);
    position = `${message.epoch}:${message.seq}`;
  };

  const idleTimeoutMs = options.idleTimeoutMs ?? 45_000;

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
    const parser = createParser({
      onEvent: (event) => handle(event.data),
    });
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
        if (!closed) options.onError?.(new Error('purge stream ended'));
      } catch (error) {
        if (!closed) options.onError?.(error);
      }
      setConnected(false);
      if (closed) break;
      // A connection that stayed up a while earns a fast reconnect.
      if (Date.now() - startedAt > retry.maxMs) delay = retry.minMs;
      const wait = delay / 2 + Math.random() * (delay / 2);
      await new Promise((r) => setTimeout(r, wait));
      delay = Math.min(delay * 2, retry.maxMs);
    }
  };
  void loop();

  return {
    get position() {
      return position;
    },
    get connected() {
      return connected;
    },
    close() {
      closed = true;
      abort.abort();
      setConnected(false);
    },
  };
}
