import type { Registry } from 'prom-client';
import {
  counterIncrease,
  type EdgeReport,
  type MetricJson,
  type StatsPoint,
  snapshotFromMetrics,
  statsPoint,
  sumCounters,
} from '../../shared/stats.ts';

/** One edge as the origin last heard from it. */
export interface EdgeSeen {
  readonly edgeId: string;
  /** Unix ms of its last report. */
  readonly lastReportMs: number;
}

export interface StatsCollectorOptions {
  /** The origin's own registry (`origin/metrics.ts`). */
  readonly registry: Registry;
  /** Milliseconds between points. */
  readonly sampleMs: number;
  /** Points kept (the dashboard's window is `keep × sampleMs`). */
  readonly keep: number;
  /** Milliseconds after which a silent edge is dropped from the edge list. */
  readonly edgeExpiryMs: number;
  readonly now?: () => number;
}

/**
 * The data behind `/dashboard` (design in docs/operating.md): every
 * `sampleMs` the origin reads its own registry, adds what the edges reported
 * since the last sample (each Node edge POSTs its registry's snapshot to
 * `/api/v1/edges/stats` every `EDGE_STATS_INTERVAL_SECONDS`), and keeps one
 * {@link StatsPoint} per interval in a ring of `keep` points. Edge counters are
 * diffed per edge as reports arrive, so an edge that restarts or goes away
 * never makes a rate negative.
 */
export class StatsCollector {
  readonly #o: StatsCollectorOptions;
  readonly #now: () => number;
  readonly #points: StatsPoint[] = [];
  readonly #edges = new Map<string, { counters: Record<string, number>; at: number }>();
  #edgeIncrease: Record<string, number> = {};
  #originPrev: Record<string, number> | undefined;
  #lastAt: number;
  #timer: NodeJS.Timeout | undefined;
  #sampling: Promise<unknown> | undefined;

  constructor(options: StatsCollectorOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.#lastAt = this.#now();
  }

  /** Starts sampling every `sampleMs` (an unref'd timer: it never keeps the process alive). */
  start(): void {
    void this.sample();
    this.#timer = setInterval(() => {
      this.#sampling ??= this.sample().finally(() => {
        this.#sampling = undefined;
      });
    }, this.#o.sampleMs);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#sampling;
  }

  /**
   * Takes in one edge report: its counter increase since its previous report
   * joins the next point (the first report of an edge is only a baseline).
   */
  report(report: EdgeReport): void {
    const prev = this.#edges.get(report.edge_id);
    // A first report is a baseline: a long-lived edge meeting a restarted origin is not one huge spike.
    if (prev) {
      this.#edgeIncrease = sumCounters(this.#edgeIncrease, counterIncrease(prev.counters, report.snapshot.counters));
    }
    this.#edges.set(report.edge_id, { counters: report.snapshot.counters, at: this.#now() });
  }

  /** Closes the current interval into a point (the timer calls this; tests may too). */
  async sample(): Promise<StatsPoint | undefined> {
    const snapshot = snapshotFromMetrics((await this.#o.registry.getMetricsAsJSON()) as MetricJson[]);
    const at = this.#now();
    const first = this.#originPrev === undefined;
    const increase = counterIncrease(this.#originPrev, snapshot.counters);
    this.#originPrev = snapshot.counters;
    const edges = this.#edgeIncrease;
    this.#edgeIncrease = {};
    const seconds = (at - this.#lastAt) / 1000;
    this.#lastAt = at;
    for (const [id, e] of this.#edges) if (at - e.at > this.#o.edgeExpiryMs) this.#edges.delete(id);
    // The first sample only sets the baseline: its "increase" is everything since start-up.
    if (first || seconds <= 0) return undefined;
    const point = statsPoint(at, seconds, increase, edges, snapshot.gauges);
    this.#points.push(point);
    if (this.#points.length > this.#o.keep) this.#points.shift();
    return point;
  }

  /** Points, oldest first. */
  get points(): readonly StatsPoint[] {
    return this.#points;
  }

  /** Edges that reported within `edgeExpiryMs`. */
  get edges(): EdgeSeen[] {
    return [...this.#edges].map(([edgeId, e]) => ({ edgeId, lastReportMs: e.at }));
  }
}
