import { type PurgePollResponse, purgePollResponseSchema } from '../../shared/schemas.ts';
import type { PurgeHandlers, PurgeSource, PurgeSubscribeOptions, PurgeSubscription } from '../core/purge-source.ts';
import { sourceState, subscriptionOf } from './source-state.ts';

/** Path of the origin's purge log poll (see `origin/routes/purges.ts`). */
export const purgePollPath = '/api/v1/purges';

export interface PollPurgeSourceOptions {
  /** Origin base URL. */
  readonly originUrl: string;
  /**
   * Milliseconds a view may age before the next poll (`EDGE_PURGE_POLL_MS`):
   * {@link PollSubscription.refresh} polls when the last confirmation is at
   * least this old, and the background loop (when on) polls this often.
   */
  readonly pollMs: number;
  /**
   * Poll on a timer as well as on demand. Default true; a Workers isolate
   * turns it off (timers do not outlive a request there) and calls
   * {@link PollSubscription.refresh} before serving from its tier.
   */
  readonly background?: boolean;
  /** Entries asked for per request (`limit`); a full page is followed at once by the next. Default 500. */
  readonly pageSize?: number;
  /** Milliseconds one poll may take before it counts as failed. Default 5 000. */
  readonly timeoutMs?: number;
  /** Extra request headers (credentials). */
  readonly headers?: Record<string, string> | undefined;
  readonly fetch?: typeof fetch;
  /** Clock for confirmation times, Unix ms. */
  readonly now?: () => number;
}

/** A poll subscription: the {@link PurgeSubscription} plus on-demand polling. */
export interface PollSubscription extends PurgeSubscription {
  /**
   * Makes sure the view is at most `pollMs` old: resolves at once when the
   * last confirmation is younger, else joins the one poll in flight (or
   * starts it; one at a time per subscription). Resolves true when the view
   * is that fresh afterwards, false when the poll failed; never rejects.
   */
  refresh(): Promise<boolean>;
  /** Forgets the last confirmation, so the next {@link refresh} polls (after this edge's own purge). */
  expire(): void;
}

/**
 * The `poll` purge source, for runtimes that cannot hold the purge stream
 * open (Workers isolates): reads the purge log page by page with
 * `GET /api/v1/purges?after=<position>&limit=<n>`, applies entries in
 * order, drops everything on a `reset`, and records a confirmation (with
 * the answer's `tail_live`) timed from when the poll that caught up was
 * *sent*, so a slow answer never stretches the lease. Runtime-free: `fetch`
 * and zod only.
 *
 * A malformed answer, an HTTP error (401 included) or a time-out counts as a
 * failed poll: reported to `onError`, the subscription goes down, no
 * confirmation is recorded, and the position stays where it was.
 */
export function pollPurgeSource(options: PollPurgeSourceOptions): PurgeSource<PollSubscription> {
  return { subscribe: (handlers, subscribeOptions) => subscribePoll(options, handlers, subscribeOptions) };
}

function subscribePoll(
  options: PollPurgeSourceOptions,
  handlers: PurgeHandlers,
  subscribeOptions: PurgeSubscribeOptions = {},
): PollSubscription {
  const doFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const now = options.now ?? Date.now;
  const pageSize = options.pageSize ?? 500;
  const timeoutMs = options.timeoutMs ?? 5_000;
  const base = options.originUrl.replace(/\/+$/, '');
  const state = sourceState(handlers, subscribeOptions.from);
  const { setConnected } = state;
  let inflight: Promise<boolean> | undefined;
  let timer: ReturnType<typeof setTimeout> | undefined;

  const readPage = async (): Promise<PurgePollResponse> => {
    const query = new URLSearchParams({ limit: String(pageSize) });
    if (state.position !== null) query.set('after', state.position);
    const res = await doFetch(`${base}${purgePollPath}?${query}`, {
      headers: { Accept: 'application/json', ...options.headers },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.status !== 200) {
      await res.body?.cancel();
      throw new Error(`purge poll answered HTTP ${res.status}`);
    }
    return purgePollResponseSchema.parse(await res.json());
  };

  /** Polls until caught up (a page shorter than `pageSize`); true on success. */
  const pollNow = async (): Promise<boolean> => {
    try {
      let previousWasReset = false;
      for (;;) {
        const sentAtMs = now();
        const page = await readPage();
        if (state.closed) return false;
        if (page.reset && previousWasReset) throw new Error('purge poll: a reset answered with another reset');
        previousWasReset = page.reset !== null;
        if (page.reset) {
          handlers.onReset(page.reset);
          state.position = page.reset.position;
        } else if (state.position === null) {
          // A fresh subscription starts at the log's head.
          state.position = page.head;
        }
        for (const entry of page.entries) {
          if (state.closed) return false;
          handlers.onPurge(entry);
          state.position = entry.position;
        }
        if (page.reset || page.entries.length >= pageSize) continue;
        state.confirmation = { atMs: sentAtMs, tailLive: page.tail_live };
        setConnected(true);
        return true;
      }
    } catch (error) {
      if (state.closed) return false;
      handlers.onError?.(error);
      setConnected(false);
      return false;
    }
  };

  const fresh = () => state.confirmation !== null && now() - state.confirmation.atMs < options.pollMs;

  const refresh = (): Promise<boolean> => {
    if (state.closed) return Promise.resolve(false);
    if (fresh()) return Promise.resolve(true);
    inflight ??= pollNow().finally(() => {
      inflight = undefined;
    });
    return inflight;
  };

  const schedule = () => {
    if (state.closed || options.background === false) return;
    timer = setTimeout(() => {
      void refresh().finally(schedule);
    }, options.pollMs);
  };

  if (options.background !== false) void refresh().finally(schedule);

  return subscriptionOf(state, {
    refresh,
    expire() {
      state.confirmation = null;
    },
    close() {
      if (state.closed) return;
      setConnected(false);
      state.closed = true;
      clearTimeout(timer);
    },
  });
}
