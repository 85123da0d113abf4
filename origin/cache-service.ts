import { encryptedContentType, type Keyring, open, seal } from '../shared/crypto.ts';
import { CacheError } from '../shared/errors.ts';
import type { CacheTier } from '../shared/headers.ts';
import {
  freshness,
  type GraceWindows,
  graceMs,
  maxPreferWaitSeconds as maxWaitSeconds,
  type StaleReason,
  staleReasonOf,
} from '../shared/lifecycle.ts';
import { compressedContentType, compressValue, decompressValue } from './compression.ts';
import type { CacheProfiles } from './lifecycle/profiles.ts';
import { NamespaceRegistry } from './namespaces/registry.ts';
import { NamespaceCounters } from './namespaces/stats.ts';
import { memoryNamespaceVersions, type NamespaceVersion } from './namespaces/versions.ts';
import type { PublishedPurge, PurgeBus, PurgeInput, PurgeScope } from './purge/bus.ts';
import {
  type EntryInput,
  LeaseLostError,
  OnceConflictError,
  type OnceRecord,
  type PurgeSelector,
  type RemovalResult,
  type StoredEntry,
  type SwapChange,
  type SwapOutcome,
  type TieredStore,
} from './store/store.ts';

/** A value to write, as it arrives from REST or gRPC. */
export interface WriteRequest {
  readonly value: Uint8Array;
  readonly contentType: string;
  /** Seconds; the configured default when absent. */
  readonly ttlSeconds?: number | undefined;
  readonly tags?: readonly string[];
  /** Encrypt at rest (`?encrypt=true`, `X-Cache-Encrypt: true`, gRPC `encrypt`); see `shared/crypto.ts`. */
  readonly encrypt?: boolean;
  /**
   * Store compressed (`X-Cache-Compress`, batch `compress`, gRPC `compress`):
   * `true` whenever that saves space, `false` never, absent when larger than
   * `compressMinBytes`. Ignored for an encrypted write (stored uncompressed).
   */
  readonly compress?: boolean | undefined;
  /** Grace windows after the TTL (`Cache-Control` `stale-while-revalidate` / `stale-if-error`, RFC 5861). */
  readonly grace?: GraceWindows | undefined;
  /** The refresh lease this write completes (`X-Cache-Lease`); CACHE_006 (412) when it no longer holds. */
  readonly leaseId?: string | undefined;
  /** Idempotency record written atomically with the entry (the hub's `correlation_id`); CACHE_004 when its id was used by another request. */
  readonly once?: OnceRecord | undefined;
}

/** How a read may wait, and whether it takes part in refreshing (`Prefer: lease`). */
export interface ReadOptions {
  /** Offer this caller the key's refresh lease when the entry is missing, stale or due for early refresh. */
  readonly lease?: boolean;
  /** Read as `strong` whatever the key's profile (`Cache-Control: no-cache`). */
  readonly strong?: boolean;
  /** On a full miss whose lease another caller holds: wait up to this many seconds for its write (RFC 7240 `Prefer: wait`). */
  readonly waitSeconds?: number;
  /** Ends a wait early (the caller went away). */
  readonly signal?: AbortSignal;
}

/** A read's refresh lease, when this caller is the one to refresh the key (`X-Cache-Lease`). */
export interface Leased {
  readonly lease?: string | undefined;
}

/**
 * One key of {@link CacheService.swap}: the version read (0 = absent) and the
 * change, whose value goes through the same checks, encryption and
 * compression as any write. `ttlMs` is milliseconds (> 0).
 */
export interface SwapRequest {
  readonly key: string;
  readonly expectedVersion: number;
  readonly action:
    | { readonly kind: 'set'; readonly request: WriteRequest; readonly ttlMs: number }
    | { readonly kind: 'delete' }
    | { readonly kind: 'check' };
}

/** An entry and the tier that answered. */
export interface ReadResult {
  readonly entry: StoredEntry;
  readonly tier: CacheTier;
  /** `STALE` when a local copy answered that Redis may have moved past (`X-Cache`). */
  readonly status: 'HIT' | 'STALE';
  /** True when Redis did not confirm the answer (`X-Cache-Degraded: 1`, see `store/resilient.ts`). */
  readonly degraded: boolean;
  /** Set when the entry is past its TTL and served within `stale-while-revalidate` (`X-Cache-Stale-Reason`). */
  readonly staleReason?: StaleReason | undefined;
  /** True when the key's profile is `strong` (`X-Cache-Consistency: strong`). */
  readonly strong?: boolean;
}

/** A miss; `degraded` when it rests on a delete Redis has not confirmed yet (`X-Cache-Degraded: 1`). */
export interface ReadMiss {
  readonly entry: null;
  readonly degraded: boolean;
}

export interface CacheServiceOptions {
  /** Tiered reads, health and "accepted locally": `store/resilient.ts` over Redis, `store/pass-through.ts` over memory. */
  readonly store: TieredStore;
  /** Where every acknowledged change is published for the edges. */
  readonly bus: PurgeBus;
  /** Seconds, for writes that give no TTL. */
  readonly defaultTtlSeconds: number;
  /** Largest value, bytes. */
  readonly maxValueBytes: number;
  readonly now?: () => number;
  /** Called after every store failure, for logs and metrics. */
  readonly onStoreError?: (operation: string, error: unknown) => void;
  /** Crash tests only (`STRATA_FAULT`): where this process SIGKILLs itself on a change. */
  readonly fault?: 'crash-after-intent' | 'crash-after-store-write' | 'crash-after-log-append';
  /** Keys for encryption at rest (`ENCRYPTION_KEYS`); without them `encrypt` is CACHE_004. */
  readonly keyring?: Keyring | null;
  /** Namespaces whose every write is encrypted (`ENCRYPTED_NAMESPACES`). */
  readonly encryptedNamespaces?: ReadonlySet<string>;
  /** Bytes: values larger than this are stored compressed when that saves space (`COMPRESS_MIN_BYTES`); 0 or absent = only on request. */
  readonly compressMinBytes?: number;
  /** Told about each value stored compressed: bytes before and after (the envelope), for metrics. */
  readonly onCompressed?: (beforeBytes: number, afterBytes: number) => void;
  /** Lifetime of a refresh lease, ms (`LEASE_TTL_MS`); 0 grants none. Default 10000. */
  readonly leaseMs?: number;
  /** β of XFetch early refresh (`XFETCH_BETA`); 0 turns it off. Default 1. */
  readonly xfetchBeta?: number;
  /** Uniform random in (0, 1], for XFetch; tests pass a fixed one. */
  readonly random?: () => number;
  /** How often a waiting read looks for the lease holder's write, ms. Default 25. */
  readonly waitPollMs?: number;
  /** Per-namespace or per-prefix defaults and consistency (`CACHE_PROFILES`). */
  readonly profiles?: CacheProfiles;
  /**
   * Namespace versions (flush). Default: versions held in this process,
   * following `bus` for other replicas' flushes.
   */
  readonly namespaces?: NamespaceRegistry;
}

/** The settings `reconfigure` may change while the origin runs (`POST /api/v1/reload`, SIGHUP). */
export type RuntimeSettings = Pick<
  CacheServiceOptions,
  'defaultTtlSeconds' | 'maxValueBytes' | 'keyring' | 'encryptedNamespaces' | 'profiles'
>;

/** How a purge was asked for (`CacheService.purge`); every field optional. */
export interface PurgeOptions {
  /** `delete` (default) or `update`. */
  readonly action?: 'delete' | 'update';
  /** When the purge was acknowledged, Unix ms; default now. */
  readonly acknowledgedAtMs?: number;
  /** The region whose invalidation this applies (`origin_region`); unset for this region's own purges. */
  readonly originRegion?: string;
  /** The caller's source redelivers the purge unless the call returns (no intent is logged). Default false. */
  readonly redelivered?: boolean;
}

/** What a flush answers: the namespace's new version and the purge's number in the purge log. */
export interface FlushResult extends NamespaceVersion {
  readonly seq: number;
}

/**
 * The origin's cache operations, shared by REST and gRPC so there is one
 * copy of the logic: validate sizes, call the store, and after every
 * acknowledged change publish a purge to the purge bus, which relays it to every edge.
 *
 * Compression lives here, not in a store facade, for the same reason
 * encryption does: one place serves REST, gRPC and batch alike, the entry is
 * compressed before any tier sees it (Redis, the local fallback tier and the
 * memory store all hold and count the stored, compressed bytes), and the
 * choice "encrypted, so never compressed" is made where both are known.
 * Edges only ever see values in the clear (`compression.ts`).
 *
 * Errors: CACHE_003 (413) for an oversized value; CACHE_004 for a reserved
 * content type; CACHE_005 (503) when the store fails or a stored value
 * cannot be opened.
 */
export class CacheService {
  #o: CacheServiceOptions;
  readonly #now: () => number;
  readonly namespaces: NamespaceRegistry;
  /** Per-namespace operation counters (stats). */
  readonly counters: NamespaceCounters;
  // The highest entry version this origin has written or read (removal floors
  // are left out: they may come from this host's clock, not the store's). A
  // flush's version is above it, so no entry this origin saw survives the flush.
  #highWater = 0;

  constructor(options: CacheServiceOptions) {
    this.#o = options;
    this.#now = options.now ?? Date.now;
    this.namespaces = options.namespaces ?? new NamespaceRegistry(memoryNamespaceVersions(this.#now), options.bus);
    this.counters = new NamespaceCounters(this.#now);
  }

  get store(): TieredStore {
    return this.#o.store;
  }

  /** The settings in force now (limits, default TTL, keys). */
  get settings(): RuntimeSettings {
    const { defaultTtlSeconds, maxValueBytes, keyring, encryptedNamespaces, profiles } = this.#o;
    return { defaultTtlSeconds, maxValueBytes, keyring, encryptedNamespaces, ...(profiles ? { profiles } : {}) };
  }

  /**
   * Replaces the settings that may change at run time; requests that start
   * afterwards use them, requests in flight finish with the old ones.
   */
  reconfigure(settings: RuntimeSettings): void {
    this.#o = { ...this.#o, ...settings };
  }

  /** True when the key's profile is `strong` (`CACHE_PROFILES`). */
  isStrong(namespace: string, key: string): boolean {
    return this.#o.profiles?.of(namespace, key)?.consistency === 'strong';
  }

  /**
   * The entry and where it came from, or a miss (`entry` null). An entry
   * past its TTL is answered STALE while within `stale-while-revalidate`
   * (reason `revalidating`, or `soft-purge`), and is a miss after that:
   * only an edge whose origin fails may serve `stale-if-error`.
   */
  get(namespace: string, key: string, options: ReadOptions = {}): Promise<(ReadResult | ReadMiss) & Leased> {
    // Not a second async layer around `#read` (which counts the answer): one promise fewer per read.
    return this.#read(namespace, key, options);
  }

  /** Counts a read's answer, once, as a hit or a miss of its namespace. */
  #counted<R extends (ReadResult | ReadMiss) & Leased>(namespace: string, read: R): R {
    if (read.entry) this.counters.hit(namespace, read.tier);
    else this.counters.miss(namespace);
    return read;
  }

  async #read(namespace: string, key: string, options: ReadOptions): Promise<(ReadResult | ReadMiss) & Leased> {
    const wantsLease = options.lease === true || (options.waitSeconds ?? 0) > 0;
    const profileStrong = this.#o.profiles?.of(namespace, key)?.consistency === 'strong';
    const strong = options.strong === true || profileStrong;
    const read = this.#strictly(await this.#getOnce(namespace, key, wantsLease), strong, profileStrong, key);
    if (read.entry || read.lease !== undefined || !options.waitSeconds) return this.#counted(namespace, read);
    // A full miss another caller is refreshing: wait for its write (or for its lease to lapse, then take it).
    const deadline = this.#now() + Math.min(options.waitSeconds, maxWaitSeconds) * 1000;
    const pollMs = this.#o.waitPollMs ?? 25;
    let last: (ReadResult | ReadMiss) & Leased = read;
    while (this.#now() < deadline && !options.signal?.aborted) {
      await new Promise((resolve) => setTimeout(resolve, Math.min(pollMs, Math.max(1, deadline - this.#now()))));
      last = this.#strictly(await this.#getOnce(namespace, key, wantsLease), strong, profileStrong, key);
      if (last.entry || last.lease !== undefined) return this.#counted(namespace, last);
    }
    return this.#counted(namespace, last);
  }

  /**
   * One read and its lease: a stale answer or a full miss is offered the
   * key's refresh lease (granted to one caller at a time), and a fresh one
   * near expiry with XFetch's probability (Vattani et al., VLDB 2015:
   * refresh when `now − Δ·β·ln(rand) ≥ expiry`, Δ the last refresh's time).
   */
  async #getOnce(namespace: string, key: string, wantsLease: boolean): Promise<(ReadResult | ReadMiss) & Leased> {
    const tiered = await this.#call('get', () => this.#o.store.getTiered(namespace, key));
    // The hot read awaits nothing more once versions are loaded and the value is plain (no promise, no copy).
    if (tiered.entry && !tiered.degraded && !this.namespaces.loaded) await this.#versionsKnown();
    // An entry below its namespace's flush version is invisible.
    const read =
      tiered.entry && !this.#visible(namespace, tiered.entry) ? { entry: null, degraded: tiered.degraded } : tiered;
    const now = this.#now();
    const state = read.entry ? freshness(read.entry, now) : 'gone';
    const seen = read.entry?.version ?? 0;
    if (!read.entry || state === 'error-only' || state === 'gone') {
      return {
        entry: null,
        degraded: read.degraded,
        ...(await this.#lease(namespace, key, seen, read.degraded || !wantsLease)),
      };
    }
    const entry = sealed(read.entry) ? await this.#reveal(namespace, key, read.entry) : read.entry;
    if (state === 'fresh') {
      if (!this.#xfetch(read.entry, now)) return entry === read.entry ? read : { ...read, entry };
      return { ...read, entry, ...(await this.#lease(namespace, key, seen, read.degraded || !wantsLease)) };
    }
    return {
      ...read,
      entry,
      status: 'STALE',
      staleReason: staleReasonOf(read.entry),
      ...(await this.#lease(namespace, key, seen, read.degraded || !wantsLease)),
    };
  }

  /**
   * A strong read (profile `strong`, or `Cache-Control: no-cache`) answers
   * only what the store confirms now: never the fallback tier (CACHE_005
   * while the store is down), never a stale entry (a miss instead).
   */
  #strictly<R extends (ReadResult | ReadMiss) & Leased>(
    read: R,
    strong: boolean,
    profileStrong: boolean,
    key: string,
  ): R {
    if (!strong) return read;
    if (read.degraded) {
      throw new CacheError('CACHE_005', 'Store unavailable: a strong read is never answered from the fallback tier', {
        status: 503,
        details: { key, operation: 'get' },
      });
    }
    if (read.entry && read.status === 'STALE') return { entry: null, degraded: false, lease: read.lease } as R;
    return read.entry && profileStrong ? { ...read, strong: true } : read;
  }

  /** XFetch's early-refresh test for a fresh entry with a known refresh time Δ. */
  #xfetch(entry: StoredEntry, now: number): boolean {
    const beta = this.#o.xfetchBeta ?? 1;
    if (beta <= 0 || !entry.refreshMs) return false;
    const random = (this.#o.random ?? Math.random)() || Number.MIN_VALUE;
    return now - entry.refreshMs * beta * Math.log(random) >= entry.expiresAtMs;
  }

  /**
   * Tries to take the key's refresh lease for this caller; none when `skip`
   * (the caller did not ask, or the answer is degraded: only Redis knows who holds it).
   */
  async #lease(namespace: string, key: string, seenVersion: number, skip: boolean): Promise<Leased> {
    const leaseMs = this.#o.leaseMs ?? 10_000;
    const grant = this.#o.store.grantLease;
    if (skip || leaseMs <= 0 || !grant) return {};
    const lease = await this.#call('lease', () =>
      grant.call(this.#o.store, namespace, key, crypto.randomUUID(), leaseMs, seenVersion),
    );
    return lease ? { lease: lease.id } : {};
  }

  /**
   * Flushes a namespace in O(1): bumps its version (`namespaces/versions.ts`),
   * raises this replica's floor at once, then publishes a `flush` purge so
   * other replicas and every edge raise theirs. Entries written before are
   * invisible from then on and reclaimed lazily.
   * @param by the caller's `service_id`, kept in the version history.
   * @param originRegion set when another region's reset or flush asks for it: the purge log entry carries it
   *   (`origin_region`), so this region's forwarder does not send it back.
   * @param once the hub's idempotency record: on Redis written by the bump's own script (see `OnceRecord`).
   * @throws CacheError CACHE_005 when the store or the purge log fails (the flush is then not acknowledged);
   *   CACHE_004 when `once`'s id was used by another request.
   */
  async flush(namespace: string, by: string, originRegion?: string, once?: OnceRecord): Promise<FlushResult> {
    const record = await this.#call('flush', () => this.namespaces.bump(namespace, by, this.#highWater + 1, once));
    this.#seen(record.version);
    // The version is bumped already; a flush whose purge the log cannot take answers 503 so the caller
    // retries (another bump), and this replica hides the old entries either way.
    const published = await this.#call('flush_purge_log', () =>
      this.#o.bus.publish({
        namespace,
        keys: [],
        tags: [],
        prefix: null,
        version: record.version,
        action: 'flush',
        ts: record.flushedAtMs,
        ...(originRegion === undefined ? {} : { origin_region: originRegion }),
      }),
    );
    this.counters.delete(namespace);
    return { ...record, seq: published.seq };
  }

  /** Entries found by key, and the tier that answered. */
  async getMany(
    namespace: string,
    keys: readonly string[],
  ): Promise<{ found: Map<string, StoredEntry>; tier: CacheTier; degraded: boolean }> {
    const unique = [...new Set(keys)];
    const read = await this.#call('batch_get', () => this.#o.store.getManyTiered(namespace, unique));
    if (read.found.size > 0 && !read.degraded) await this.#versionsKnown();
    // A batch answers fresh entries and stale ones within stale-while-revalidate, like single reads.
    const now = this.#now();
    for (const [key, entry] of read.found) {
      const state = freshness(entry, now);
      if (state !== 'fresh' && state !== 'stale') read.found.delete(key);
    }
    for (const [key, entry] of read.found) if (!this.#visible(namespace, entry)) read.found.delete(key);
    if (read.found.size > 0) this.counters.hit(namespace, read.tier, read.found.size);
    if (unique.length > read.found.size) this.counters.miss(namespace, unique.length - read.found.size);
    return { ...read, found: await this.#revealAll(namespace, read.found) };
  }

  /** Writes one value, then purges older copies at every edge. */
  async set(namespace: string, key: string, request: WriteRequest): Promise<StoredEntry> {
    const input = await this.#input(namespace, key, request);
    const intent = await this.#intend({ namespace, keys: [key], tags: [], prefix: null });
    const entry = await this.#call('set', () => this.#o.store.set(namespace, key, input));
    this.#seen(entry.version);
    this.counters.write(namespace);
    await this.#publish('set', entry, intent, {
      namespace,
      keys: [key],
      tags: [],
      prefix: null,
      version: entry.version,
      action: 'update',
      ts: this.#now(),
    });
    return entry;
  }

  /** Writes several values with one TTL, then purges older copies at every edge. */
  async setMany(namespace: string, entries: ReadonlyMap<string, WriteRequest>): Promise<Map<string, StoredEntry>> {
    const inputs = new Map<string, EntryInput>();
    for (const [key, request] of entries) inputs.set(key, await this.#input(namespace, key, request));
    const intent =
      inputs.size > 0 ? await this.#intend({ namespace, keys: [...inputs.keys()], tags: [], prefix: null }) : null;
    const stored = await this.#call('batch_set', () => this.#o.store.setMany(namespace, inputs));
    for (const entry of stored.values()) this.#seen(entry.version);
    this.counters.write(namespace, stored.size);
    if (stored.size > 0) {
      const versions = [...stored.values()].map((e) => e.version);
      await this.#publish('batch_set', [...stored.values()][0]!, intent, {
        namespace,
        keys: [...stored.keys()],
        tags: [],
        prefix: null,
        // Every edge copy predates the whole batch, so the lowest new version is a safe floor.
        version: Math.min(...versions),
        action: 'update',
        ts: this.#now(),
      });
    }
    return stored;
  }

  /** Deletes one key and purges it at every edge; with `once`, at most once per request id (see `OnceRecord`). */
  async delete(namespace: string, key: string, once?: OnceRecord): Promise<RemovalResult> {
    const intent = await this.#intend({ namespace, keys: [key], tags: [], prefix: null });
    const result = await this.#call('delete', () => this.#o.store.delete(namespace, key, once));
    this.counters.delete(namespace);
    await this.#publish('delete', result, intent, {
      namespace,
      keys: [key],
      tags: [],
      prefix: null,
      version: result.version,
      action: 'delete',
      ts: this.#now(),
    });
    return result;
  }

  /**
   * Purges by keys, tags and prefix at the origin store and at every edge.
   * @param options.action `delete` (default) or `update` (the edge may keep
   *   serving within its stale windows, a soft purge's answer at the edge).
   * @param options.acknowledgedAtMs when the purge was acknowledged, Unix ms
   *   (default now): another region's purge keeps its region's time, so the
   *   edges' purge lag spans regions.
   * @param options.originRegion set when applying another region's
   *   invalidation: the purge log entry carries it (`origin_region`), so this
   *   region's forwarder does not send it back to Kafka.
   * @param options.redelivered the caller's source delivers this purge again
   *   unless the call returns (a Kafka event, whose offset is committed only
   *   after it): no intent is logged first, since a crash between the store
   *   purge and the log append is repaired by that redelivery, not by a
   *   replica recovering an intent. One log append fewer per such purge.
   * @returns entries removed at the origin, and the purge's number in the purge log (`seq`).
   */
  async purge(
    namespace: string,
    selector: PurgeSelector,
    options: PurgeOptions = {},
  ): Promise<RemovalResult & { seq: number }> {
    const { action = 'delete', acknowledgedAtMs, originRegion, redelivered = false } = options;
    const intent = redelivered
      ? null
      : await this.#intend({
          namespace,
          keys: [...selector.keys],
          tags: [...selector.tags],
          prefix: selector.prefix,
          ...(originRegion === undefined ? {} : { origin_region: originRegion }),
        });
    const result = await this.#call('purge', () => this.#o.store.purge(namespace, selector));
    this.counters.delete(namespace);
    const input: PurgeInput = {
      namespace,
      keys: [...selector.keys],
      tags: [...selector.tags],
      prefix: selector.prefix,
      version: result.version,
      action,
      ts: acknowledgedAtMs ?? this.#now(),
    };
    // Tells item events a purge from a delete of the same keys; edges ignore the field.
    Object.assign(input, { purge: true });
    if (originRegion !== undefined) Object.assign(input, { origin_region: originRegion });
    const published = await this.#publish('purge', result, intent, input);
    // Keep the store's object (a tiered store recognises results it accepted only locally).
    return Object.assign(result, { seq: published.seq });
  }

  /**
   * Atomic compare-and-swap (`Store.swap`): applies every change only if
   * every key still holds the version read, then purges the changed keys at
   * every edge like any write. `conflict` tells the caller to read again.
   * Errors: as `set`; CACHE_005 when the store has no compare-and-swap or
   * Redis is unavailable (a conditional write is never accepted locally).
   */
  async swap(namespace: string, changes: readonly SwapRequest[]): Promise<SwapOutcome> {
    const store = this.#o.store;
    if (!store.swap) throw new CacheError('CACHE_005', 'This store has no atomic compare-and-swap');
    const swap = store.swap.bind(store);
    // A key the caller read as absent may still hold an entry hidden by a namespace flush: expect that one.
    const absent = changes.filter((c) => c.expectedVersion === 0).map((c) => c.key);
    const hidden = new Map<string, number>();
    if (absent.length > 0) {
      const raw = await this.#call('swap', () => store.getMany(namespace, absent));
      if (raw.size > 0) await this.#versionsKnown();
      for (const [key, entry] of raw) if (!this.#visible(namespace, entry)) hidden.set(key, entry.version);
    }
    const prepared: SwapChange[] = [];
    for (const change of changes) {
      const { key, action } = change;
      const expectedVersion = change.expectedVersion === 0 ? (hidden.get(key) ?? 0) : change.expectedVersion;
      if (action.kind !== 'set') prepared.push({ key, expectedVersion, action });
      else {
        const input = { ...(await this.#input(namespace, key, action.request)), ttlMs: action.ttlMs };
        prepared.push({ key, expectedVersion, action: { kind: 'set', input } });
      }
    }
    // Logged like any write's intent; a swap that conflicts leaves it for recovery, which purges nothing current.
    const intent = await this.#intend({ namespace, keys: prepared.map((c) => c.key), tags: [], prefix: null });
    const outcome = await this.#call('swap', () => swap(namespace, prepared));
    if (outcome.kind !== 'swapped' || outcome.results.size === 0) return outcome;
    const results = [...outcome.results.values()];
    for (const r of results) this.#seen(r.version);
    await this.#publish('swap', results[0]!, intent, {
      namespace,
      keys: [...outcome.results.keys()],
      tags: [],
      prefix: null,
      // Every edge copy predates the whole swap, so the lowest new version is a safe floor.
      version: Math.min(...results.map((r) => r.version)),
      action: results.some((r) => 'value' in r) ? 'update' : 'delete',
      ts: this.#now(),
    });
    return outcome;
  }

  /**
   * Recovers an intent whose writer never closed it (crashed between its
   * intent and its purge, or its store write failed). Whether the store
   * write happened no one can tell, so the store decides: each key still
   * held gets a purge at the version the store holds now (edges drop any
   * older copy and keep the current one, whichever write it came from); keys
   * the store does not hold are purged there (a no-op, for the store's version
   * floor) and at every edge. A purge intent (tags or prefix) is applied
   * again, as its client asked. The last purge logged closes the intent.
   * Nothing the store holds is evicted, so a change that was acknowledged,
   * or accepted degraded and written back, stays.
   * Called by the purge bus (`recoverIntentsWith`).
   * @throws Error when the store or the log cannot be reached (or the store
   *   answers only from its local tier); the bus retries.
   */
  async recoverIntent(scope: PurgeScope, intentId: string): Promise<void> {
    const { namespace, keys, tags, prefix } = scope;
    // Another region's invalidation stays marked as such: this region's forwarder must not send it back.
    const from = scope.origin_region === undefined ? {} : { origin_region: scope.origin_region };
    const { store, bus } = this.#o;
    if (store.resilience?.breaker.state === 'open') throw new Error('store unavailable: intent recovery waits');
    const floors = new Map<number, string[]>();
    const purgeAtStore = async (selector: PurgeSelector) => {
      const result = await store.purge(namespace, selector);
      if (store.acceptedLocally(result)) throw new Error('store unavailable: intent recovery retried later');
      return result.version;
    };
    if (tags.length > 0 || prefix !== null) {
      const version = await purgeAtStore({ keys, tags, prefix });
      const input: PurgeInput = { namespace, keys, tags, prefix, version, action: 'delete', ts: this.#now(), ...from };
      await bus.publish(input, { closes: intentId });
      return;
    }
    const read = await store.getManyTiered(namespace, keys);
    if (read.degraded) throw new Error('store answered from its local tier: intent recovery retried later');
    const missing = keys.filter((key) => !read.found.has(key));
    for (const [key, entry] of read.found) floors.set(entry.version, [...(floors.get(entry.version) ?? []), key]);
    if (missing.length > 0) {
      const version = await purgeAtStore({ keys: missing, tags: [], prefix: null });
      floors.set(version, [...(floors.get(version) ?? []), ...missing]);
    }
    const groups = [...floors];
    for (const [i, [version, group]] of groups.entries()) {
      const input: PurgeInput = {
        namespace,
        keys: group,
        tags: [],
        prefix: null,
        version,
        action: 'update',
        ts: this.#now(),
        ...from,
      };
      await bus.publish(input, { closes: i === groups.length - 1 ? intentId : null });
    }
    if (groups.length === 0)
      await bus.publish(
        { namespace, keys: [], tags: [], prefix: null, version: 0, action: 'update', ts: this.#now(), ...from },
        { closes: intentId },
      );
  }

  /**
   * Logs the intent of a change before its store write (buses that support
   * it, `PurgeBus.intend`); null when the bus has none, or the store's
   * breaker is open (the change goes to the local tier and its purge is
   * logged at write-back), or the log cannot take it (the change goes on and
   * its purge decides: logged, or 503 CACHE_005).
   */
  async #intend(scope: PurgeScope): Promise<string | null> {
    const { bus, store } = this.#o;
    if (!bus.intend || store.resilience?.breaker.state === 'open') return null;
    let intent: string;
    try {
      intent = await bus.intend(scope);
    } catch (error) {
      this.#o.onStoreError?.('purge_intent', error);
      return null;
    }
    if (this.#o.fault === 'crash-after-intent') process.kill(process.pid, 'SIGKILL');
    return intent;
  }

  /**
   * Waits until this replica knows the namespace versions: only reads right
   * after a start during a store outage wait (one shared load), so an entry
   * of a flushed version is never shown for want of its floor. CACHE_005
   * when the store cannot answer.
   */
  async #versionsKnown(): Promise<void> {
    if (!this.namespaces.loaded) await this.#call('namespace_versions', () => this.namespaces.ensureLoaded());
  }

  /** False for an entry written before the namespace's last flush (invisible, reclaimed lazily). */
  #visible(namespace: string, entry: StoredEntry): boolean {
    this.#seen(entry.version);
    return entry.version >= this.namespaces.floor(namespace);
  }

  #seen(version: number): void {
    if (version > this.#highWater) this.#highWater = version;
  }

  async #input(namespace: string, key: string, request: WriteRequest): Promise<EntryInput> {
    if (request.value.byteLength > this.#o.maxValueBytes) {
      throw new CacheError('CACHE_003', `Value exceeds ${this.#o.maxValueBytes} bytes`, {
        status: 413,
        details: { key, bytes: request.value.byteLength, maxBytes: this.#o.maxValueBytes },
      });
    }
    const profile = this.#o.profiles?.of(namespace, key);
    const ttlSeconds = request.ttlSeconds ?? profile?.ttl ?? this.#o.defaultTtlSeconds;
    const given = request.grace && graceMs(request.grace) > 0 ? request.grace : undefined;
    const profileGrace = profile && {
      staleWhileRevalidateMs: (profile.stale_while_revalidate ?? 0) * 1000,
      staleIfErrorMs: (profile.stale_if_error ?? 0) * 1000,
    };
    // A strong key is never served stale, so it keeps no grace.
    const grace = profile?.consistency === 'strong' ? undefined : (given ?? profileGrace);
    let { value, contentType } = request;
    if (contentType === encryptedContentType || contentType === compressedContentType) {
      throw new CacheError('CACHE_004', `Content-Type ${contentType} is reserved`, { details: { key } });
    }
    if (request.encrypt || this.#o.encryptedNamespaces?.has(namespace)) {
      const keyring = this.#o.keyring;
      if (!keyring) {
        throw new CacheError('CACHE_004', 'Encryption is not configured (ENCRYPTION_KEYS)', { details: { key } });
      }
      value = await seal(keyring, namespace, key, { value, contentType });
      contentType = encryptedContentType;
    } else if (this.#compresses(request)) {
      // Never after encryption: compressed length would leak information about the plaintext.
      const compressed = await compressValue({ value, contentType });
      if (compressed) {
        this.#o.onCompressed?.(value.byteLength, compressed.byteLength);
        value = compressed;
        contentType = compressedContentType;
      }
    }
    return {
      value,
      contentType,
      ttlMs: ttlSeconds * 1000,
      tags: request.tags ?? [],
      grace,
      leaseId: request.leaseId,
      ...(request.once ? { once: request.once } : {}),
    };
  }

  #compresses(request: WriteRequest): boolean {
    if (request.compress !== undefined) return request.compress;
    const min = this.#o.compressMinBytes ?? 0;
    return min > 0 && request.value.byteLength > min;
  }

  /** The entry in the clear; encrypted entries are opened, compressed ones inflated (CACHE_005 when that fails, never garbage). */
  async #reveal(namespace: string, key: string, entry: StoredEntry): Promise<StoredEntry> {
    if (entry.contentType === compressedContentType) {
      try {
        return { ...entry, ...(await decompressValue(entry.value, this.#o.maxValueBytes)) };
      } catch (error) {
        this.#o.onStoreError?.('decompress', error);
        throw new CacheError('CACHE_005', 'Stored value could not be decompressed', { details: { key }, cause: error });
      }
    }
    if (entry.contentType !== encryptedContentType) return entry;
    const keyring = this.#o.keyring;
    if (!keyring) throw new CacheError('CACHE_005', 'Stored value is encrypted and no keys are configured');
    try {
      return { ...entry, ...(await open(keyring, namespace, key, entry.value)) };
    } catch (error) {
      this.#o.onStoreError?.('decrypt', error);
      throw error;
    }
  }

  async #revealAll(namespace: string, found: Map<string, StoredEntry>): Promise<Map<string, StoredEntry>> {
    for (const [key, entry] of found) found.set(key, await this.#reveal(namespace, key, entry));
    return found;
  }

  /**
   * Puts a change's purge in the purge log; the change is acknowledged only
   * once that resolves. A log that cannot take it (Redis down, `WAIT` timed
   * out) fails the request with CACHE_005 (503) so the client retries; the
   * store already holds the change, and a retry logs its purge. A change the
   * store accepted only into its local tier (Redis unavailable, answered
   * with `X-Cache-Degraded: 1`) stays accepted: its purge is logged when
   * the write-back reaches Redis (`store/write-back.ts`).
   */
  async #publish(
    operation: string,
    result: StoredEntry | RemovalResult,
    intent: string | null,
    input: PurgeInput,
  ): Promise<PublishedPurge | { seq: number }> {
    if (this.#o.fault === 'crash-after-store-write') process.kill(process.pid, 'SIGKILL');
    try {
      const published = await this.#o.bus.publish(input, { closes: intent });
      if (this.#o.fault === 'crash-after-log-append') process.kill(process.pid, 'SIGKILL');
      return published;
    } catch (error) {
      if (this.#o.store.acceptedLocally(result)) {
        this.#o.bus.relayLocally?.(input);
        // The change stays accepted: close its intent once the log is back, so no replica needs to recover it.
        if (intent) this.#closeLater(input.namespace, intent);
        return { seq: 0 };
      }
      this.#o.onStoreError?.(`${operation}_purge_log`, error);
      throw new CacheError('CACHE_005', 'Purge log unavailable', { details: { operation }, cause: error });
    }
  }

  /**
   * Closes an intent with an empty purge (it drops nothing) once the log
   * takes it, retrying with capped back-off for up to ten minutes; for a
   * change accepted into the local tier, whose own purge is logged at
   * write-back. Replicas count an intent's age only while their tail is
   * live, so this normally lands before anyone recovers the intent.
   */
  #closeLater(namespace: string, intent: string): void {
    const empty: PurgeInput = { namespace, keys: [], tags: [], prefix: null, version: 0, action: 'update', ts: 0 };
    const giveUpAt = this.#now() + 600_000;
    const attempt = (delayMs: number) => {
      setTimeout(() => {
        this.#o.bus.publish({ ...empty, ts: this.#now() }, { closes: intent }).catch(() => {
          if (this.#now() < giveUpAt) attempt(Math.min(delayMs * 2, 5_000));
        });
      }, delayMs).unref();
    };
    attempt(100);
  }

  async #call<T>(operation: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      if (error instanceof CacheError) throw error;
      if (error instanceof OnceConflictError) {
        throw new CacheError('CACHE_004', 'correlation_id was already used by a different request', {
          details: { operation },
        });
      }
      if (error instanceof LeaseLostError) {
        throw new CacheError('CACHE_006', 'Refresh lease lost: it expired, or a newer value was written', {
          details: { operation },
        });
      }
      this.#o.onStoreError?.(operation, error);
      throw new CacheError('CACHE_005', 'Store unavailable', { details: { operation }, cause: error });
    }
  }
}

/** True when a stored value is compressed or encrypted, so a read must open it (`CacheService.#reveal`). */
function sealed(entry: StoredEntry): boolean {
  return entry.contentType === compressedContentType || entry.contentType === encryptedContentType;
}
