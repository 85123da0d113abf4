import { CacheError } from '../../shared/errors.ts';
import type { ReadEntry } from '../../shared/http.ts';
import { storageKey } from '../../shared/keys.ts';
import {
  formatPreferences,
  freshness,
  graceFields,
  type ReadPreferences,
  type StaleReason,
} from '../../shared/lifecycle.ts';

const noPreferences: ReadPreferences = { lease: false, waitSeconds: 0 };

import type { StreamMessage } from '../../shared/schemas.ts';
import { Coalescer } from './coalesce.ts';
import type { Lease } from './lease.ts';
import { NegativeCache } from './negative-cache.ts';
import { PurgeLedger } from './purge-ledger.ts';
import type { EdgeEntry, EdgeTier, SharedEdgeTier } from './tier.ts';

/** What an origin read returns to the edge. Times are Unix ms; grace windows from `X-Cache-Grace`. */
export interface OriginRead extends Pick<ReadEntry, 'staleWhileRevalidateMs' | 'staleIfErrorMs' | 'softPurgedAtMs'> {
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
  /** The origin's `X-Cache-Stale-Reason` on a STALE answer. */
  readonly staleReason?: StaleReason | undefined;
  /** The refresh lease the origin granted with this answer (`X-Cache-Lease`). */
  readonly lease?: string | undefined;
  /** The key's profile is `strong` (`X-Cache-Consistency`): the edge revalidates every read of it. */
  readonly strong?: boolean | undefined;
}

/** An origin miss that came with the key's refresh lease. */
export interface OriginMiss {
  readonly miss: true;
  readonly lease?: string | undefined;
}

/**
 * Loads one entry from the origin; null (or an {@link OriginMiss}) on a miss.
 * `waitSeconds` asks the origin to wait for another caller's refresh on a full
 * miss (`Prefer: wait`).
 */
export type OriginLoader = (
  namespace: string,
  key: string,
  requestId?: string,
  preferences?: ReadPreferences,
) => Promise<OriginRead | OriginMiss | null>;

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
  strong?: boolean,
) => Promise<OriginRead | 'not-modified' | null>;

/** How a per-key revalidation ended: `not_modified`, `modified`, `gone` or `error` (origin unreachable). */
export type RevalidationOutcome = 'not_modified' | 'modified' | 'gone' | 'error';

/** The outcome of an edge read. */
export type EdgeRead =
  | {
      readonly kind: 'hit';
      readonly entry: EdgeEntry;
      /** The shared tier's name when the hit came from it (absent: the memory tier). */
      readonly from?: string;
    }
  | {
      readonly kind: 'fill';
      readonly entry: EdgeEntry;
      readonly read: OriginRead;
      readonly stored: boolean;
      /** The refresh lease, handed to one of the readers a load served. */
      readonly lease?: string | undefined;
    }
  | { readonly kind: 'miss'; readonly lease?: string | undefined }
  /** The origin failed and the writer's `stale-if-error` window covers this copy (RFC 5861 §4). */
  | { readonly kind: 'stale-if-error'; readonly entry: EdgeEntry };

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
  /**
   * A second tier behind `tier` (the Workers Cache API): looked up after a
   * memory miss, only while the lease holds, before the origin; filled with
   * every fill the memory tier stores; told every purge, reset and delete.
   */
  readonly shared?: SharedEdgeTier;
  /** Told how each (coalesced) shared-tier lookup ended, and of each failed call to the shared tier. */
  readonly onSharedTier?: (outcome: SharedTierOutcome) => void;
  /** How long an origin miss is remembered, ms (`EDGE_NEGATIVE_TTL_MS`); 0 or absent = never. */
  readonly negativeTtlMs?: number;
}

/** How a shared-tier lookup ended (`hit`, `miss`: absent or refused), or `error`: a call to it failed. */
export type SharedTierOutcome = 'hit' | 'miss' | 'error';

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
  readonly #negative: NegativeCache;

  constructor(options: EdgeCacheOptions) {
    this.#o = options;
    this.tier = options.tier;
    this.ledger = options.ledger ?? new PurgeLedger();
    this.#now = options.now ?? Date.now;
    this.#negative = new NegativeCache({ ttlMs: options.negativeTtlMs ?? 0, now: this.#now });
  }

  /** Loads in flight now. */
  get inflight(): number {
    return this.#coalescer.inflight;
  }

  /**
   * Reads through the tier; concurrent misses for one key share one origin
   * load. A copy within its fresh lifetime or `stale-while-revalidate` is a
   * hit (the caller tells fresh from stale with `freshness`). When the
   * origin is unreachable or fails (CACHE_005) and the writer's
   * `stale-if-error` window still covers the copy, the copy is answered as
   * `stale-if-error`: the one answer an edge gives past its lease
   * (RFC 5861 §4; the README's consistency bound names it).
   */
  async read(namespace: string, key: string, requestId?: string, preferences = noPreferences): Promise<EdgeRead> {
    let copy = this.tier.get(namespace, key);
    // A copy below the namespace's flush floor is invisible (a tier that could not apply the flush).
    if (copy && copy.version < this.ledger.floor(namespace)) {
      this.tier.delete(namespace, key);
      copy = undefined;
    }
    // A remembered miss, while this edge's view of the purge log is confirmed; a refresher always asks the origin.
    if (!copy && !preferences.lease && this.#negative.has(namespace, key)) {
      if (!this.#o.lease || this.#o.lease.ensure() === true) return { kind: 'miss' };
    }
    try {
      return await this.#readThrough(namespace, key, copy, requestId, preferences);
    } catch (error) {
      // Look again: a purge that arrived meanwhile removed the copy, and a removed copy is never served.
      const current = this.tier.get(namespace, key);
      if (current && withinStaleIfError(current, this.#now()) && isOriginFailure(error)) {
        return { kind: 'stale-if-error', entry: current };
      }
      throw error;
    }
  }

  /**
   * The copy {@link read} would answer now as a fresh hit from the tier
   * without asking anyone (no origin, no shared tier, no waiting), or
   * undefined: absent, below the namespace's flush floor, not fresh, a
   * `strong` key, or the lease not confirmed at once (a renewal this starts
   * is the one `read` then joins). Synchronous: the runtime adapters' hit
   * fast path (`edge/fast-hit.ts`) answers with it and hands anything else
   * to `read`. Only peeks: the caller that answers with the copy counts the
   * access with {@link countHit}, so a request it declines is counted once, by `read`.
   */
  freshHit(namespace: string, key: string): EdgeEntry | undefined {
    const copy = this.tier.peek(namespace, key);
    if (!copy || copy.strong || copy.version < this.ledger.floor(namespace)) return undefined;
    if (freshness(copy, this.#now()) !== 'fresh') return undefined;
    const lease = this.#o.lease;
    return !lease || lease.ensure() === true ? copy : undefined;
  }

  /** Counts an answer from a {@link freshHit} copy as one access of the tier's eviction policy, as `read` counts its own. */
  countHit(namespace: string, key: string): void {
    this.tier.get(namespace, key);
  }

  /** Is this copy a hit now: fresh, or stale within `stale-while-revalidate`? */
  #servable(entry: EdgeEntry | undefined): entry is EdgeEntry {
    if (!entry) return false;
    const state = freshness(entry, this.#now());
    return state === 'fresh' || state === 'stale';
  }

  async #readThrough(
    namespace: string,
    key: string,
    copy: EdgeEntry | undefined,
    requestId: string | undefined,
    preferences: ReadPreferences,
  ): Promise<EdgeRead> {
    const hit = this.#servable(copy) ? copy : undefined;
    if (hit && (hit.strong || preferences.strong)) {
      // Strong: the origin confirms every read (If-None-Match; a 304 keeps the copy). No stale fallback either.
      const answer = await this.#revalidate(namespace, key, hit, requestId, true);
      return answer.kind === 'hit' && freshness(answer.entry, this.#now()) !== 'fresh' ? { kind: 'miss' } : answer;
    }
    if (hit && preferences.lease && freshness(hit, this.#now()) !== 'fresh') {
      // A stale copy and a reader that refreshes: only the origin can hand out the key's lease. The readers
      // share one request; if the origin cannot answer, the copy is still within stale-while-revalidate.
      try {
        return await this.#coalescedFill(namespace, key, requestId, preferences);
      } catch (error) {
        if (!isOriginFailure(error)) throw error;
        const current = this.tier.get(namespace, key);
        // Only while the lease holds: past it a newer write may have gone unheard, and only stale-if-error answers.
        if (this.#servable(current) && (this.#o.lease?.valid ?? true)) return { kind: 'hit', entry: current };
        throw error;
      }
    }
    if (hit) {
      const lease = this.#o.lease;
      if (!lease) return { kind: 'hit', entry: hit };
      const ensured = lease.ensure();
      if (ensured === true) return { kind: 'hit', entry: hit };
      if (await ensured) {
        // The renewal may have applied purges: look again.
        const again = this.tier.get(namespace, key);
        if (this.#servable(again)) return { kind: 'hit', entry: again };
      } else {
        const current = this.tier.get(namespace, key);
        if (this.#servable(current)) return await this.#revalidate(namespace, key, current, requestId);
      }
    }
    return await this.#coalescedFill(namespace, key, requestId, preferences);
  }

  /** One origin load per key and preferences, shared by concurrent readers; the lease goes to the one that started it. */
  async #coalescedFill(
    namespace: string,
    key: string,
    requestId: string | undefined,
    preferences: ReadPreferences,
  ): Promise<EdgeRead> {
    // Readers willing to wait share one waiting load; the others one plain load.
    const prefer = `${formatPreferences(preferences) ?? ''}${preferences.strong ? ';no-cache' : ''}`;
    const flight = `${storageKey(namespace, key)}${prefer ? `\u0000${prefer}` : ''}`;
    const { promise, leader } = this.#coalescer.run(flight, () => this.#fill(namespace, key, requestId, preferences));
    const result = await promise;
    // One holder per key: of the readers one load served, only the one that started it gets the lease.
    if (leader || result.kind === 'hit' || result.kind === 'stale-if-error' || result.lease === undefined)
      return result;
    return { ...result, lease: undefined };
  }

  /**
   * Stores what this edge just wrote through to the origin (write-through),
   * under the same no-stale-set rule as a fill.
   * @param ticket taken with `ledger.begin()` before the write was sent.
   */
  storeWrite(ticket: ReturnType<PurgeLedger['begin']>, read: OriginRead, namespace: string, key: string): boolean {
    this.#negative.forget(namespace, key);
    return this.#store(ticket, read, namespace, key).stored;
  }

  /**
   * Applies one purge-stream message: a purge drops older copies, a flush
   * drops the namespace's copies below its new version (and raises the
   * namespace floor in the ledger), a reset drops everything.
   */
  apply(message: StreamMessage): number {
    this.#negative.apply(message);
    if (message.type === 'purge') {
      this.ledger.record(message);
      this.#shared((shared) => shared.purge(message));
      return this.tier.purge(message);
    }
    if (message.type === 'reset') {
      this.ledger.reset();
      this.#shared((shared) => shared.clear());
      const n = this.tier.size;
      this.tier.clear();
      return n;
    }
    return 0;
  }

  /** Drops one key locally after this edge deleted it at the origin (`version`: the delete's floor). */
  forget(namespace: string, key: string, version: number): void {
    this.ledger.record({ namespace, keys: [key], tags: [], prefix: null, version });
    this.#shared((shared) => shared.purge({ namespace, keys: [key], tags: [], prefix: null, version }));
    this.tier.delete(namespace, key);
    this.#negative.forget(namespace, key);
  }

  /**
   * Stops trusting the shared tier's entries filled until now (an isolate
   * whose purge source just caught up for the first time cannot know the
   * purges before it). No-op without a shared tier.
   */
  distrustShared(): void {
    this.#shared((shared) => shared.clear());
  }

  /**
   * Hands one change to the shared tier. Its floors apply at the call; the
   * deletes that follow are best effort (a failure leaves a copy the floors refuse).
   */
  #shared(change: (shared: SharedEdgeTier) => Promise<unknown>): void {
    const shared = this.#o.shared;
    if (shared) change(shared).catch(() => this.#o.onSharedTier?.('error'));
  }

  /** A shared-tier hit admitted to the memory tier, or undefined (lease lapsed, miss). */
  async #fromShared(shared: SharedEdgeTier, namespace: string, key: string): Promise<EdgeRead | undefined> {
    const lease = this.#o.lease;
    if (lease) {
      const ensured = lease.ensure();
      if (ensured !== true && !(await ensured)) return undefined;
    }
    const ticket = this.ledger.begin();
    let held: EdgeEntry | undefined;
    try {
      held = await shared.get(namespace, key);
    } catch {
      this.#o.onSharedTier?.('error');
      return undefined;
    }
    // A purge applied to this isolate while the lookup ran refuses the copy here too.
    if (!held || !this.ledger.admit(ticket, namespace, key, held.version, held.tags)) {
      this.#o.onSharedTier?.('miss');
      return undefined;
    }
    this.#o.onSharedTier?.('hit');
    const entry = { ...held, expiresAtMs: Math.min(held.expiresAtMs, this.#now() + this.#o.maxTtlMs) };
    this.tier.set(entry);
    return { kind: 'hit', entry, from: shared.name };
  }

  /** Asks the origin about one copy while the lease is lapsed; concurrent reads of the key share one request. */
  async #revalidate(
    namespace: string,
    key: string,
    copy: EdgeEntry,
    requestId?: string,
    strong = false,
  ): Promise<EdgeRead> {
    const revalidate = this.#o.revalidate;
    if (!revalidate) throw new Error('EdgeCache: a lease needs a revalidator');
    const { promise } = this.#revalidations.run(storageKey(namespace, key), async () => {
      const ticket = this.ledger.begin();
      let answer: Awaited<ReturnType<OriginRevalidator>>;
      try {
        answer = await revalidate(namespace, key, copy.version, requestId, strong);
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

  async #fill(
    namespace: string,
    key: string,
    requestId: string | undefined,
    preferences: ReadPreferences,
  ): Promise<EdgeRead> {
    // A reader asking for a lease or a strong read needs the origin; others may take the shared tier's copy.
    if (this.#o.shared && !preferences.lease && !preferences.strong) {
      const fromShared = await this.#fromShared(this.#o.shared, namespace, key);
      if (fromShared) return fromShared;
    }
    const ticket = this.ledger.begin();
    const filledAtMs = this.#now();
    this.#o.onOriginLoad?.();
    const read = await this.#o.load(namespace, key, requestId, preferences);
    if (!read) {
      // Remembered only if no purge at all arrived while the load was out: a write of the key may be among them.
      if (this.ledger.begin().generation === ticket.generation) this.#negative.remember(namespace, key);
      return { kind: 'miss' };
    }
    if ('miss' in read) return { kind: 'miss', lease: read.lease };
    // An origin replica that has not learnt of a flush yet may still answer with an older version: never relay it.
    if (read.version < this.ledger.floor(namespace)) return { kind: 'miss' };
    const { entry, stored } = this.#store(ticket, read, namespace, key);
    if (stored && this.#o.shared) {
      // Awaited: an isolate's work may be cut off once its answer is sent.
      await this.#o.shared.set(entry, filledAtMs).catch(() => this.#o.onSharedTier?.('error'));
    }
    return { kind: 'fill', entry, read, stored, lease: read.lease };
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
      ...(read.strong ? { strong: true } : {}),
      // Grace follows the entry's own expiry; a copy cut short by the TTL cap gets none.
      ...(read.expiresAtMs <= this.#now() + this.#o.maxTtlMs
        ? {
            ...graceFields({
              staleWhileRevalidateMs: read.staleWhileRevalidateMs ?? 0,
              staleIfErrorMs: read.staleIfErrorMs ?? 0,
            }),
            ...(read.softPurgedAtMs !== undefined ? { softPurgedAtMs: read.softPurgedAtMs } : {}),
          }
        : {}),
    };
    // A degraded origin answer may be stale; it is relayed but not kept.
    const stored =
      !read.degraded && this.ledger.admit(ticket, namespace, key, read.version, read.tags) && this.tier.set(entry);
    return { entry, stored };
  }
}

/** True while `stale-if-error` covers the copy: the writer gave the window and it has not run out (RFC 5861 §4). */
export function withinStaleIfError(entry: EdgeEntry, nowMs: number): boolean {
  const windowMs = entry.staleIfErrorMs ?? 0;
  return windowMs > 0 && nowMs < entry.expiresAtMs + windowMs;
}

/** The origin could not answer: unreachable, timed out or failing (any 5xx); not a refusal, a rate limit or a bad request. */
export function isOriginFailure(error: unknown): boolean {
  return !(error instanceof CacheError) || error.status >= 500;
}
