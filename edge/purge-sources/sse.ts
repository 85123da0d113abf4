import { createParser } from 'eventsource-parser';
import { purgeStreamEventSchema } from '../../shared/schemas.ts';
import type { PurgeHandlers, PurgeSource, PurgeSubscribeOptions, PurgeSubscription } from '../core/purge-source.ts';
import { sourceState, subscriptionOf } from './source-state.ts';

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
   * `PURGE_HEARTBEAT_MS`) after which the connection is presumed dead
   * and replaced (`EDGE_PURGE_IDLE_TIMEOUT_MS`, at most the lease). Default 3 000.
   */
  readonly idleTimeoutMs?: number;
  readonly fetch?: typeof fetch;
  /** Clock for confirmation times, Unix ms. */
  readonly now?: () => number;
}

/** A stream subscription that can be asked to renew the edge's lease now. */
export interface RenewableSubscription extends PurgeSubscription {
  /**
   * One renewal attempt: reconnects now (skipping a back-off, or replacing a
   * connection that stopped confirming) and resolves true at the next
   * heartbeat, false when the connection fails or none comes within
   * `idleTimeoutMs`. Never rejects.
   */
  renew(): Promise<boolean>;
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
export function ssePurgeSource(options: SsePurgeSourceOptions): PurgeSource<RenewableSubscription> {
  return { subscribe: (handlers, subscribeOptions) => subscribeSse(options, handlers, subscribeOptions) };
}

function subscribeSse(
  options: SsePurgeSourceOptions,
  handlers: PurgeHandlers,
  subscribeOptions: PurgeSubscribeOptions = {},
): RenewableSubscription {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const now = options.now ?? Date.now;
  const retry = options.retry ?? { minMs: 100, maxMs: 5_000 };
  const idleTimeoutMs = options.idleTimeoutMs ?? 3_000;
  const abort = new AbortController();
  const state = sourceState(handlers, subscribeOptions.from);
  const { setConnected } = state;
  let connection: AbortController | undefined;
  let wakeRetry: (() => void) | undefined;
  // Renewals waiting for the next confirmation (true) or a failed connection (false).
  let waiters: ((confirmed: boolean) => void)[] = [];
  const settle = (confirmed: boolean) => {
    for (const w of waiters.splice(0)) w(confirmed);
  };

  const handle = (data: string) => {
    if (state.closed) return;
    const message = purgeStreamEventSchema.parse(JSON.parse(data));
    switch (message.type) {
      case 'hello':
        // A fresh edge starts at the log's head; one with a position waits for the replay.
        state.position ??= message.position;
        setConnected(true);
        return;
      case 'purge':
        handlers.onPurge(message);
        state.position = message.position;
        return;
      case 'reset':
        handlers.onReset(message);
        state.position = message.position;
        return;
      case 'heartbeat':
        state.confirmation = { atMs: now(), tailLive: message.tail_live };
        settle(true);
        return;
    }
  };

  const connectOnce = async () => {
    // One controller per connection: closing the subscription, an idle connection or a renewal aborts it.
    connection = new AbortController();
    const onClose = () => connection?.abort();
    abort.signal.addEventListener('abort', onClose);
    let idle: ReturnType<typeof setTimeout> | undefined;
    const armIdle = () => {
      clearTimeout(idle);
      idle = setTimeout(() => connection?.abort(new Error(`no data for ${idleTimeoutMs} ms`)), idleTimeoutMs);
    };
    armIdle();
    try {
      await readStream(connection.signal, armIdle);
    } finally {
      connection = undefined;
      clearTimeout(idle);
      abort.signal.removeEventListener('abort', onClose);
    }
  };

  const readStream = async (signal: AbortSignal, onData: () => void) => {
    const res = await doFetch(`${options.originUrl.replace(/\/+$/, '')}${purgeStreamPath}`, {
      headers: {
        Accept: 'text/event-stream',
        ...(state.position ? { 'Last-Event-ID': state.position } : {}),
        ...options.headers,
      },
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
    while (!state.closed) {
      const startedAt = Date.now();
      try {
        await connectOnce();
        if (!state.closed) handlers.onError?.(new Error('purge stream ended'));
      } catch (error) {
        if (!state.closed) handlers.onError?.(error);
      }
      if (state.closed) break;
      settle(false);
      setConnected(false);
      // A connection that stayed up a while earns a fast reconnect.
      if (Date.now() - startedAt > retry.maxMs) delay = retry.minMs;
      const wait = delay / 2 + Math.random() * (delay / 2);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        // A renewal skips the back-off.
        wakeRetry = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wakeRetry = undefined;
      delay = Math.min(delay * 2, retry.maxMs);
    }
  };
  void loop();

  return subscriptionOf(state, {
    renew() {
      if (state.closed) return Promise.resolve(false);
      const confirmed = new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== done);
          resolve(false);
        }, idleTimeoutMs);
        const done = (ok: boolean) => {
          clearTimeout(timer);
          resolve(ok);
        };
        waiters.push(done);
      });
      // Waiting out a back-off: reconnect now. Connected but unconfirmed for a whole lease: replace the connection.
      if (wakeRetry) wakeRetry();
      else if (state.connected) connection?.abort(new Error('lease lapsed: renewing the purge stream'));
      return confirmed;
    },
    close() {
      if (state.closed) return;
      setConnected(false);
      state.closed = true;
      settle(false);
      abort.abort();
    },
  });
}
