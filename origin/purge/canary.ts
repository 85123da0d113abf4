import { purgeCanaryNamespace } from '../../shared/purge-report.ts';
import type { PurgeMessage, PurgePosition } from '../../shared/schemas.ts';
import type { PurgeBus, PurgeBusListener } from './bus.ts';

/** Namespace of the canary keys; a key per origin process (`canary-<random>`). */
export const canaryNamespace = purgeCanaryNamespace;

/** Where one edge that reports to this origin stands against the canary (times in ms). */
export interface CanaryEdge {
  /** The edge's id in its reports (`EDGE_ID` or its random id). */
  readonly edgeId: string;
  /** Milliseconds from the last probe's write to this edge reporting it applied that probe's purge; null while it has not. */
  readonly lagMs: number | null;
  /**
   * Milliseconds since the oldest acknowledged probe this edge has not
   * applied started; 0 when it has applied every probe since it was first seen.
   */
  readonly behindMs: number;
  /** Whether `behindMs` exceeds the probe interval: a whole interval went by without the edge applying an acknowledged probe. */
  readonly lagging: boolean;
}

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
  /** Every edge that reported its applied position here within the last {@link StalenessCanary.forgetMs}, by id. */
  readonly applied: readonly CanaryEdge[];
}

export interface StalenessCanaryOptions {
  /** Writes the canary value (the cache service's `set`: intent, store write, purge in the log). */
  readonly write: (namespace: string, key: string, value: Uint8Array) => Promise<unknown>;
  /** Seconds between probes (`PURGE_CANARY_SECONDS`, > 0). */
  readonly intervalSeconds: number;
  /** Each delay from a probe's write to one edge being handed its purge, in ms (a histogram per edge delivery). */
  readonly onLag?: (ms: number) => void;
  /**
   * One edge applied a probe's purge: milliseconds from the probe's write to
   * the edge's report of it reaching this origin (write, log, tail, relay,
   * network to the edge, the edge's apply, its report back): a histogram per edge.
   */
  readonly onApplied?: (edgeId: string, ms: number) => void;
  /** An edge was forgotten (silent for {@link StalenessCanary.forgetMs}): drop what is kept per edge (its histogram series). */
  readonly onForget?: (edgeId: string) => void;
  /** A probe's write failed. */
  readonly onError?: (error: unknown) => void;
  readonly now?: () => number;
}

interface Probe {
  atMs: number;
  /** Position of the probe's purge in the log, once this origin's tail relayed it. */
  position: PurgePosition | null;
  writeMs: number;
  edges: number;
  delivered: number;
  maxLagMs: number | null;
  error: string | null;
}

interface EdgeState {
  lastReportMs: number;
  /** `atMs` of the latest probe this edge applied (or of the latest probe when it was first seen: earlier ones are not its concern). */
  appliedThroughMs: number;
  /** Lag of the latest probe it applied, in ms; null when it has not applied the current probe. */
  lagMs: number | null;
  lagProbeAtMs: number;
}

/** Probes remembered for matching late reports (an edge back after a disconnection replays its gap). */
const probesKept = 64;

/** Edges followed at once; reports from further new ids are dropped until some are forgotten. */
const maxEdges = 1_000;

/**
 * The staleness canary: every `intervalSeconds` this origin writes its own
 * canary key through the same path as any client write (intent, store
 * write, purge in the region's log, `WAIT`), and times how long the write's
 * purge takes to be handed to each edge following this origin, on the purge
 * stream or in a poll answer (`onLag`), and, end to end, until each edge
 * reports it has applied it (`onApplied`, {@link StalenessCanary.applied}).
 * Because the purge comes back through this replica's own tail of the log,
 * the hand-off delay covers the path an edge depends on up to its connection:
 * store, log, replication wait, tail, relay. The applied delay adds the
 * network to the edge, the edge's apply and its report back
 * (`POST /api/v1/purge/applied`, sent by streaming edges), so it is an upper
 * bound on the edge's staleness window. An edge that reported here once is
 * expected to apply every later probe; one that does not within an interval
 * (slowed, cut off, gone) shows as `lagging` until it catches up or is
 * forgotten ({@link StalenessCanary.forgetMs} after its last report).
 *
 * The last probe is shown in the origin's `/ready` detail (`reading`). A
 * probe's purge reaches edges like any purge: it drops only the canary key,
 * which edges never hold.
 */
export class StalenessCanary {
  readonly #o: StalenessCanaryOptions;
  readonly #now: () => number;
  readonly #key = `canary-${crypto.randomUUID().slice(0, 8)}`;
  #timer: ReturnType<typeof setInterval> | undefined;
  #current: Probe | null = null;
  #bus: PurgeBus | null = null;
  #running = false;
  #probes: Probe[] = [];
  readonly #edges = new Map<string, EdgeState>();

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

  /** Milliseconds after its last report that an edge is no longer expected to apply probes: 30 intervals, at least a minute. */
  get forgetMs(): number {
    return Math.max(60_000, 30 * this.#o.intervalSeconds * 1000);
  }

  /** The last probe, or null before the first one. */
  get reading(): CanaryReading | null {
    const p = this.#current;
    if (!p) return null;
    const { position: _, ...rest } = p;
    return { ...rest, applied: this.applied };
  }

  /** Where every edge that reports here stands against the probes, ordered by id. */
  get applied(): CanaryEdge[] {
    const now = this.#now();
    const intervalMs = this.#o.intervalSeconds * 1000;
    const current = this.#current;
    const out: CanaryEdge[] = [];
    this.#forgetSilent(now);
    for (const [edgeId, e] of [...this.#edges].sort(([a], [b]) => a.localeCompare(b))) {
      // The oldest probe whose purge is in the log and that this edge has not applied.
      const missed = this.#probes.find((p) => p.position !== null && p.atMs > e.appliedThroughMs);
      const behindMs = missed ? Math.max(0, now - missed.atMs) : 0;
      const lagMs = current && e.lagProbeAtMs === current.atMs ? e.lagMs : null;
      out.push({ edgeId, lagMs, behindMs, lagging: behindMs > intervalMs });
    }
    return out;
  }

  #forgetSilent(now: number): void {
    for (const [edgeId, e] of this.#edges) {
      if (now - e.lastReportMs <= this.forgetMs) continue;
      this.#edges.delete(edgeId);
      this.#o.onForget?.(edgeId);
    }
  }

  /**
   * Takes an edge's report of the position it has applied. A position that
   * is one of the remembered probes' purges counts as that probe applied by
   * the edge (timed from the probe's write to now); any other position only
   * keeps the edge known.
   */
  report(edgeId: string, position: PurgePosition): void {
    const now = this.#now();
    let edge = this.#edges.get(edgeId);
    if (!edge) {
      // Edges without `EDGE_ID` get a new id per process: a bounded map, however many restarts came and went.
      if (this.#edges.size >= maxEdges) return;
      edge = { lastReportMs: now, appliedThroughMs: this.#current?.atMs ?? 0, lagMs: null, lagProbeAtMs: -1 };
      this.#edges.set(edgeId, edge);
    }
    edge.lastReportMs = now;
    const probe = this.#probes.find((p) => p.position === position);
    if (!probe || probe.atMs < edge.appliedThroughMs || edge.lagProbeAtMs === probe.atMs) return;
    const lag = Math.max(0, now - probe.atMs);
    edge.appliedThroughMs = probe.atMs;
    edge.lagMs = lag;
    edge.lagProbeAtMs = probe.atMs;
    this.#o.onApplied?.(edgeId, lag);
  }

  /**
   * Wraps the bus edges are served from, so that every hand-off of a canary
   * purge (a stream subscriber's event, a poll answer's entry) is timed.
   * Everything else passes through unchanged.
   */
  instrument(bus: PurgeBus): PurgeBus {
    this.#bus = bus;
    const probeOf = (message: PurgeMessage) => {
      const probe = this.#current;
      if (!probe || message.namespace !== canaryNamespace || !message.keys.includes(this.#key)) return null;
      return message.ts < probe.atMs ? null : probe;
    };
    // Where the probe's purge sits in the log, seen on this process's tail whether or not an edge is connected.
    bus.observe((message) => {
      const probe = probeOf(message);
      if (probe) probe.position ??= message.position;
    });
    const seen = (message: PurgeMessage) => {
      const probe = probeOf(message);
      if (!probe) return;
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
    const probe: Probe = { atMs, position: null, writeMs: 0, edges: 0, delivered: 0, maxLagMs: null, error: null };
    this.#current = probe;
    this.#probes.push(probe);
    if (this.#probes.length > probesKept) this.#probes.shift();
    this.#forgetSilent(atMs);
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
