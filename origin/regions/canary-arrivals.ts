import { canaryNamespace } from '../purge/canary.ts';

/** What this origin last saw of one source region's staleness canary. */
export interface CanaryArrival {
  /** Unix ms the source region acknowledged its newest canary write applied here (that region's clock). */
  readonly writtenAtMs: number;
  /** Unix ms that write's purge was applied here. */
  readonly appliedAtMs: number;
  /** `appliedAtMs - writtenAtMs`: the cross-region lag of that one write (ms, ≥ 0). */
  readonly lagMs: number;
}

/** The per-source-region part of the `region` detail of `/ready` (snake_case). */
export interface CanarySourceReadiness {
  /** ISO time the source acknowledged its newest canary write applied here. */
  readonly canary_at: string;
  /** Seconds since then: how far behind that region this one may be (0.1 s steps). */
  readonly behind_seconds: number;
  /** That write's cross-region lag (ms). */
  readonly lag_ms: number;
}

/**
 * The staleness canary seen from the receiving side: every origin with
 * `PURGE_CANARY_SECONDS` set writes its canary key every interval, that
 * write's purge crosses to other regions like any purge, and this records
 * each one applied here, per source region. It is fed from this region's
 * purge log as this replica tails it (entries carrying `origin_region`), so
 * every replica sees every arrival, whichever replica's consumer applied it,
 * and the time covers the source's forwarding, Kafka, this region's store
 * purge and its log, up to the hand-off to this replica's edges.
 *
 * Because the canary writes on a fixed interval whatever the traffic, the
 * time since the newest one arrived says how far behind a source region
 * this region may be even while nothing else changes, and it keeps growing
 * while the link is down, whichever side of it failed (the source cannot
 * reach Kafka, or this region cannot): the quantity to alert on. A source
 * that never sent a canary (canary off there) is not listed.
 */
export class CrossRegionCanary {
  readonly #now: () => number;
  readonly #onLag: ((sourceRegion: string, lagMs: number) => void) | undefined;
  readonly #last = new Map<string, CanaryArrival>();

  constructor(options: { now?: () => number; onLag?: (sourceRegion: string, lagMs: number) => void } = {}) {
    this.#now = options.now ?? Date.now;
    this.#onLag = options.onLag;
  }

  /**
   * Looks at one purge of `sourceRegion` relayed here (its `timestamp` is
   * the source's acknowledgement, Unix ms); records it when it is a canary purge.
   * Older arrivals (a redelivery) do not move the newest one back.
   * @returns whether it was a canary purge.
   */
  observe(sourceRegion: string, event: { readonly namespace: string; readonly timestamp: number }): boolean {
    if (event.namespace !== canaryNamespace) return false;
    const appliedAtMs = this.#now();
    const lagMs = Math.max(0, appliedAtMs - event.timestamp);
    this.#onLag?.(sourceRegion, lagMs);
    const last = this.#last.get(sourceRegion);
    if (!last || event.timestamp >= last.writtenAtMs)
      this.#last.set(sourceRegion, { writtenAtMs: event.timestamp, appliedAtMs, lagMs });
    return true;
  }

  /** Source regions heard from, sorted. */
  sources(): string[] {
    return [...this.#last.keys()].sort();
  }

  /** Seconds since `sourceRegion` acknowledged its newest canary write applied here; null when none arrived. */
  behindSeconds(sourceRegion: string): number | null {
    const last = this.#last.get(sourceRegion);
    return last ? Math.max(0, this.#now() - last.writtenAtMs) / 1000 : null;
  }

  /** The newest arrival from `sourceRegion`, or undefined. */
  last(sourceRegion: string): CanaryArrival | undefined {
    return this.#last.get(sourceRegion);
  }

  /** Every source region heard from, as `/ready` shows it. */
  readiness(): Record<string, CanarySourceReadiness> {
    const out: Record<string, CanarySourceReadiness> = {};
    for (const source of this.sources()) {
      const last = this.#last.get(source)!;
      out[source] = {
        canary_at: new Date(last.writtenAtMs).toISOString(),
        behind_seconds: Math.round(Math.max(0, this.#now() - last.writtenAtMs) / 100) / 10,
        lag_ms: last.lagMs,
      };
    }
    return out;
  }
}
