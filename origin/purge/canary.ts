import type { PurgeMessage } from '../../shared/schemas.ts';
import type { PurgeBus, PurgeBusListener } from './bus.ts';

/** Namespace of the canary keys; a key per origin process (`canary-<random>`). */
export const canaryNamespace = 'strata-canary';

/** What one probe observed (times in ms). */
export interface CanaryReading {
  /** Unix ms when the probe's write started. */
  readonly atMs: number;
  /** Milliseconds until the write was acknowledged (store write, purge log append, `WAIT`, own tail relay). */
  readonly writeMs: number;
  /** Edges subscribed to this origin (stream) when the write was acknowledged. */
  readonly edges: number;
  /** Of those, how many were handed the canary's purge so far. */
  readonly delivered: number;
  /** Longest delay so far from the write's start to one edge being handed its purge (ms); null before the first. */
  readonly maxLagMs: number | null;
  /** The write failed (store or purge log unavailable): its message; null when it succeeded. */
  readonly error: string | null;
}

export interface StalenessCanaryOptions {
  /** Writes the canary value (the cache service's `set`: intent, store write, purge in the log). */
  readonly write: (namespace: string, key: string, value: Uint8Array) => Promise<unknown>;
  /** Seconds between probes (`PURGE_CANARY_SECONDS`, > 0). */
  readonly intervalSeconds: number;
  /** Each delay from a probe's write to one edge being handed its purge, in ms (a histogram per edge delivery). */
  readonly onLag?: (ms: number) => void;
  /** A probe's write failed. */
  readonly onError?: (error: unknown) => void;
  readonly now?: () => number;
}

interface Probe {
  atMs: number;
  writeMs: number;
  edges: number;
  delivered: number;
  maxLagMs: number | null;
  error: string | null;
}

/**
 * The staleness canary: every `intervalSeconds` this origin writes its own
 * canary key through the same path as any client write (intent, store
 * write, purge in the region's log, `WAIT`), and times how long the write's
 * purge takes to be handed to each edge following this origin, on the purge
 * stream or in a poll answer. Because the purge comes back through this
 * replica's own tail of the log, the delay covers the whole path an edge
 * depends on: store, log, replication wait, tail, relay. It stops at the
 * hand-off to the edge's connection: the network to the edge and the edge's
 * apply (synchronous on receipt) are not included.
 *
 * The delays feed a histogram (`onLag`); the last probe is shown in the
 * origin's `/ready` detail (`reading`). A probe's purge reaches edges like
 * any purge: it drops only the canary key, which edges never hold.
 */
export class StalenessCanary {
  readonly #o: StalenessCanaryOptions;
  readonly #now: () => number;
  readonly #key = `canary-${crypto.randomUUID().slice(0, 8)}`;
  #timer: ReturnType<typeof setInterval> | undefined;
  #current: Probe | null = null;
  #bus: PurgeBus | null = null;
  #running = false;

  constructor(options: StalenessCanaryOptions) {
    if (!Number.isInteger(options.intervalSeconds) || options.intervalSeconds <= 0)
      throw new RangeError('canary interval must be a positive whole number of seconds');
    this.#o = options;
    this.#now = options.now ?? Date.now;
  }

  /** The canary key this origin writes (in {@link canaryNamespace}). */
  get key(): string {
    return this.#key;
  }

  /** The last probe, or null before the first one. */
  get reading(): CanaryReading | null {
    return this.#current ? { ...this.#current } : null;
  }

  /**
   * Wraps the bus edges are served from, so that every hand-off of a canary
   * purge (a stream subscriber's event, a poll answer's entry) is timed.
   * Everything else passes through unchanged.
   */
  instrument(bus: PurgeBus): PurgeBus {
    this.#bus = bus;
    const seen = (message: PurgeMessage) => {
      const probe = this.#current;
      if (!probe || message.namespace !== canaryNamespace || !message.keys.includes(this.#key)) return;
      if (message.ts < probe.atMs) return;
      const lag = Math.max(0, this.#now() - probe.atMs);
      probe.delivered += 1;
      probe.maxLagMs = Math.max(probe.maxLagMs ?? 0, lag);
      this.#o.onLag?.(lag);
    };
    // Delegation, not a prototype: the bus keeps private state its methods read from `this`.
    const wrapped: PurgeBus = {
      publish: (input, options) => bus.publish(input, options),
      subscribe: (from, listener: PurgeBusListener) =>
        bus.subscribe(from, (event) => {
          if (event.type === 'purge') seen(event);
          listener(event);
        }),
      read: async (after, limit) => {
        const result = await bus.read(after, limit);
        for (const entry of result.entries) seen(entry);
        return result;
      },
      observe: (observer) => bus.observe(observer),
      health: () => bus.health(),
      get subscribers() {
        return bus.subscribers;
      },
      retainedEntries: bus.retainedEntries,
      close: () => bus.close(),
    };
    if (bus.relayLocally) wrapped.relayLocally = (input) => bus.relayLocally?.(input);
    return wrapped;
  }

  /** Starts probing (the first probe at once). Idempotent. */
  start(): void {
    if (this.#timer) return;
    void this.probe();
    this.#timer = setInterval(() => void this.probe(), this.#o.intervalSeconds * 1000);
    this.#timer.unref();
  }

  /** Stops probing. Idempotent. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Runs one probe now (skipped while the previous write is still in flight); resolves when its write is acknowledged or failed. */
  async probe(): Promise<CanaryReading | null> {
    if (this.#running) return this.reading;
    this.#running = true;
    const atMs = this.#now();
    const probe: Probe = { atMs, writeMs: 0, edges: 0, delivered: 0, maxLagMs: null, error: null };
    this.#current = probe;
    try {
      await this.#o.write(canaryNamespace, this.#key, new TextEncoder().encode(String(atMs)));
      probe.writeMs = this.#now() - atMs;
    } catch (error) {
      probe.writeMs = this.#now() - atMs;
      probe.error = error instanceof Error ? error.message : String(error);
      this.#o.onError?.(error);
    } finally {
      probe.edges = this.#bus?.subscribers ?? 0;
      this.#running = false;
    }
    return this.reading;
  }
}
