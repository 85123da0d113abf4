import { storageKey } from '../../shared/keys.ts';
import type { StreamMessage } from '../../shared/schemas.ts';
import { Coalescer } from './coalesce.ts';
import type { Lease } from './lease.ts';
import { PurgeLedger } from './purge-ledger.ts';
import type { EdgeEntry, EdgeTier } from './tier.ts';

/** What an origin read returns to the edge. Times are Unix ms. */
export interface OriginRead {
  readonly value: Uint8Array;
  readonly contentType: string;
  readonly version: number;
  readonly createdAtMs: number;
  readonly expiresAtMs: number;
  readonly tags: string[];
  /** The origin's `X-Cache-Tier` (`redis`, `memory`, `origin-local`). */
  readonly tier: string;
  /** True when the origin answered from its fallback tier (`X-Cache-Degraded: 1`). */
  readonly degraded: boolean;
  readonly status: 'HIT' | 'STALE';
}

/** Loads one entry from the origin; null on a miss. */
export type OriginLoader = (namespace: string, key: string, requestId?: string) => Promise<OriginRead | null>;

/**
 * Asks the origin whether the copy at `version` is still current
 * (`If-None-Match`): `not-modified` (304, keep it), a newer read, or null
 * when the key is gone. Throws (CACHE_005) when the origin cannot be reached.
 */
export type OriginRevalidator = (
  namespace: string,
  key: string,
  version: number,
  requestId?: string,
) => Promise<OriginRead | 'not-modified' | null>;

/** How a per-key revalidation ended: `not_modified`, `modified`, `gone` or `error` (origin unreachable). */
export type RevalidationOutcome = 'not_modified' | 'modified' | 'gone' | 'error';

/** The outcome of an edge read. */
export type EdgeRead =
  | { readonly kind: 'hit'; readonly entry: EdgeEntry }
  | { readonly kind: 'fill'; readonly entry: EdgeEntry; readonly read: OriginRead; readonly stored: boolean }
  | { readonly kind: 'miss' };

export interface EdgeCacheOptions {
  readonly tier: EdgeTier;
  readonly load: OriginLoader;
  /** Cap on how long an entry is kept, milliseconds (`EDGE_MAX_TTL_SECONDS` × 1000). */
  readonly maxTtlMs: number;
  readonly now?: () => number;
  readonly ledger?: PurgeLedger;
  /** Told about each origin load (a coalesced miss), for metrics and benchmarks. */
  readonly onOriginLoad?: () => void;
  /**
   * The edge's lease on its tier; absent: hits are served as long as the
   * entry lives (a tier no purge source feeds). With a lease, a hit is
   * served only while it holds; otherwise the copy is revalidated.
   */
  readonly lease?: Lease;
  /** Per-key revalidation with the origin while the lease is lapsed; required with `lease`. */
  readonly revalidate?: OriginRevalidator;
  /** Told how each (coalesced) revalidation ended. */
  readonly onRevalidation?: (outcome: RevalidationOutcome) => void;
}

/**
 * The edge's tiering core, free of HTTP: serves hits from the tier,
 * coalesces concurrent misses per key into one origin load, stores fills
 * only when the purge ledger admits them (no stale set), and applies the
 * purge stream. Entries are kept at most `maxTtlMs`, which bounds staleness
 * even when purges are lost (ARCHITECTURE.md §4, consistency bound).
 */
export class EdgeCache {
  readonly tier: EdgeTier;
  readonly ledger: PurgeLedger;
  readonly #o: EdgeCacheOptions;
  readonly #now: () => number;
  readonly #coalescer = new Coalescer<EdgeRead>();
  readonly #revalidations = new Coalescer<EdgeRead>();

  constructor(options: EdgeCacheOptions) {
    this.#o = options;
    this.tier = options.tier;
    this.ledger = options.ledger ?? new PurgeLedger();
    this.#now = options.now ?? Date.now;
  }

  /** Loads in flight now. */
  get inflight(): number {
    return this.#coalescer.inflight;
  }

  /** Reads through the tier; concurrent misses for one key share one origin load. */
  async read(namespace: string, key: string, requestId?: string): Promise<EdgeRead> {
    const hit = this.tier.get(namespace, key);
    // A copy below the namespace's flush floor is invisible (a tier that could not apply the flush).
    if (hit && hit.version < this.ledger.floor(namespace)) {
      this.tier.delete(namespace, key);
    } else if (hit) {
      const lease = this.#o.lease;
      if (!lease) return { kind: 'hit', entry: hit };
      const ensured = lease.ensure();
      if (ensured === true) return { kind: 'hit', entry: hit };
      if (await ensured) {
        // The renewal may have applied purges: look again.
        const again = this.tier.get(namespace, key);
        if (again) return { kind: 'hit', entry: again };
      } else {
        const current = this.tier.get(namespace, key);
        if (current) return await this.#revalidate(namespace, key, current, requestId);
      }
    }
    const { promise } = this.#coalescer.run(storageKey(namespace, key), () => this.#fill(namespace, key, requestId));
    return await promise;
  }

  /**
   * Stores what this edge just wrote through to the origin (write-through),
   * under the same no-stale-set rule as a fill.
   * @param ticket taken with `ledger.begin()` before the write was sent.
   */
  storeWrite(ticket: ReturnType<PurgeLedger['begin']>, read: OriginRead, namespace: string, key: string): boolean {
    return this.#store(ticket, read, namespace, key).stored;
  }

  /**
   * Applies one purge-stream message: a purge drops older copies, a flush
   * drops the namespace's copies below its new version (and raises the
   * namespace floor in the ledger), a reset drops everything.
   */
  apply(message: StreamMessage): number {
    if (message.type === 'purge') {
      this.ledger.record(message);
      return this.tier.purge(message);
    }
    if (message.type === 'reset') {
      this.ledger.reset();
      const n = this.tier.size;
      this.tier.clear();
      return n;
    }
    return 0;
  }

  /** Drops one key locally after this edge deleted it at the origin (`version`: the delete's floor). */
  forget(namespace: string, key: string, version: number): void {
    this.ledger.record({ namespace, keys: [key], tags: [], prefix: null, version });
    this.tier.delete(namespace, key);
  }

  /** Asks the origin about one copy while the lease is lapsed; concurrent reads of the key share one request. */
  async #revalidate(namespace: string, key: string, copy: EdgeEntry, requestId?: string): Promise<EdgeRead> {
    const revalidate = this.#o.revalidate;
    if (!revalidate) throw new Error('EdgeCache: a lease needs a revalidator');
    const { promise } = this.#revalidations.run(storageKey(namespace, key), async () => {
      const ticket = this.ledger.begin();
      let answer: Awaited<ReturnType<OriginRevalidator>>;
      try {
        answer = await revalidate(namespace, key, copy.version, requestId);
      } catch (error) {
        this.#o.onRevalidation?.('error');
        throw error;
      }
      if (answer === 'not-modified') {
        this.#o.onRevalidation?.('not_modified');
        return { kind: 'hit', entry: copy };
      }
      if (answer === null) {
        this.#o.onRevalidation?.('gone');
        this.tier.delete(namespace, key);
        return { kind: 'miss' };
      }
      this.#o.onRevalidation?.('modified');
      const { entry, stored } = this.#store(ticket, answer, namespace, key);
      if (!stored) this.tier.delete(namespace, key);
      return { kind: 'fill', entry, read: answer, stored };
    });
    return await promise;
  }

  async #fill(namespace: string, key: string, requestId?: string): Promise<EdgeRead> {
    const ticket = this.ledger.begin();
    this.#o.onOriginLoad?.();
    const read = await this.#o.load(namespace, key, requestId);
    // An origin replica that has not learnt of a flush yet may still answer with an older version: never relay it.
    if (!read || read.version < this.ledger.floor(namespace)) return { kind: 'miss' };
    const { entry, stored } = this.#store(ticket, read, namespace, key);
    return { kind: 'fill', entry, read, stored };
  }

  #store(ticket: ReturnType<PurgeLedger['begin']>, read: OriginRead, namespace: string, key: string) {
    const entry: EdgeEntry = {
      namespace,
      key,
      value: read.value,
      contentType: read.contentType,
      version: read.version,
      createdAtMs: read.createdAtMs,
      expiresAtMs: Math.min(read.expiresAtMs, this.#now() + this.#o.maxTtlMs),
      tags: read.tags,
      filledFrom: read.tier,
    };
    // A degraded origin answer may be stale; it is relayed but not kept.
    const stored =
      !read.degraded && this.ledger.admit(ticket, namespace, key, read.version, read.tags) && this.tier.set(entry);
    return { entry, stored };
  }
}
