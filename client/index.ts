/**
 * Typed client of the origin's gRPC-web API for internal services
 * (docs/grpc.md). Runs anywhere `fetch` does: Node ≥ 18, browsers, workers.
 *
 * Same behaviour as the Python and Go clients (clients/): a bearer token
 * (fixed or from a provider called before every attempt), the encrypt
 * option, a per-attempt timeout (default 5 s), retries of idempotent calls
 * after UNAVAILABLE with exponential back-off and jitter (default 3), and a
 * client-side circuit breaker (threshold 0.5, window 60 s, at least 20 calls).
 *
 * Errors are {@link CacheClientError}s, which are `ConnectError`s from
 * `@connectrpc/connect`: `code` is the gRPC code (INVALID_ARGUMENT bad
 * key/namespace/TTL, RESOURCE_EXHAUSTED value over the origin's
 * `MAX_VALUE_BYTES`, UNAVAILABLE store down, DEADLINE_EXCEEDED past
 * `timeoutMs`, UNAUTHENTICATED, PERMISSION_DENIED, FAILED_PRECONDITION a
 * write under a refresh lease that was lost) and `errorCode` the ICD
 * code (`CACHE_004`, `AUTH_001`, …), also in `metadata.get('x-cache-error-code')`.
 */

import type { MessageInitShape } from '@bufbuild/protobuf';
import { type CallOptions, type Client, createClient, type Transport } from '@connectrpc/connect';
import { createGrpcWebTransport } from '@connectrpc/connect-web';
import {
  CacheService,
  CacheSource,
  type EntryMetadata,
  type HealthResponse,
  type SetRequestSchema,
} from '../gen/strata/cache/v1/cache_pb.js';
import {
  CacheClientError,
  CircuitOpenError,
  type ClientBreakerOptions,
  type ClientBreakerState,
  ClientPolicies,
  type ClientRetryOptions,
  networkFailureAsUnavailable,
} from './resilience.ts';

/** `getOrSet` with refresh leases over REST (an edge or the origin). */
export {
  type GetOrSetOptions,
  type GetOrSetResult,
  type RestCache,
  type RestCacheOptions,
  restCache,
} from './get-or-set.ts';
/** The generated service descriptor and the `CacheSource` enum (which tier answered a read). */
export {
  CacheClientError,
  CacheService,
  CacheSource,
  CircuitOpenError,
  type ClientBreakerOptions,
  type ClientBreakerState,
  type ClientRetryOptions,
};

/** A bearer token, or a provider called before every attempt (token rotation). */
export type TokenSource = string | (() => string | Promise<string>);

/** Options of {@link createCacheClient}. */
export interface CacheClientOptions {
  /** The origin, e.g. `http://127.0.0.1:8080` (same port as REST). */
  readonly baseUrl: string;
  /** Namespace every call uses, `[a-z0-9_-]{1,64}` (the seed's `service_id`). */
  readonly namespace: string;
  /** Bearer JWT sent as `authorization: Bearer <token>`, or a provider of one called before every attempt. */
  readonly token?: TokenSource;
  /** Encrypt every `set` at rest at the origin (AES-256-GCM); CACHE_004 when the origin has no ENCRYPTION_KEYS. */
  readonly encrypt?: boolean;
  /** Deadline of each attempt, milliseconds; default 5 000 (the ICD's 5 s). */
  readonly timeoutMs?: number;
  /** Retries of idempotent calls (get, getMany, delete, purge, health) after UNAVAILABLE; default 3. */
  readonly retry?: ClientRetryOptions;
  /** Client-side circuit breaker (ICD defaults); `false` turns it off. */
  readonly breaker?: ClientBreakerOptions | false;
  /** Another transport (e.g. connect-node's gRPC over HTTP/2); default gRPC-web over `fetch`. */
  readonly transport?: Transport;
}

/** Per-call options: a deadline in milliseconds and/or an abort signal. */
export interface CallOpts {
  readonly timeoutMs?: number;
  readonly signal?: AbortSignal;
}

/** A value as stored, with its metadata. */
export interface CacheEntry {
  readonly value: Uint8Array;
  readonly contentType: string;
  /** Entry version (the REST ETag without quotes and `v`). */
  readonly version: number;
  /** Unix milliseconds at which the entry expires. */
  readonly expiresAtMs: number;
  readonly tags: readonly string[];
  /** Which tier answered (Get only; UNSPECIFIED in getMany entries, see `source` there). */
  readonly source: CacheSource;
  /** A stale answer (REST `X-Cache: STALE`): within grace, soft-purged, or a local copy Redis may have moved past. */
  readonly stale: boolean;
}

/** `stale_reason` of a read (REST `X-Cache-Stale-Reason`); empty when fresh or only the tier was stale. */
export type StaleReason = '' | 'revalidating' | 'soft-purge';

/** What a single-key read adds: the entry's lifecycle (RFC 5861 grace, RFC 9111 `Age`) and this caller's refresh lease. */
export interface EntryLifecycle {
  readonly staleReason: StaleReason;
  /** Seconds since the entry was written (REST `Age`). */
  readonly ageSeconds: number;
  /** Grace windows the writer gave, seconds; 0 = none. */
  readonly staleWhileRevalidateSeconds: number;
  readonly staleIfErrorSeconds: number;
  /** The key's refresh lease when this caller was chosen to refresh it (asked with `lease`); pass it to `set`. */
  readonly lease: string | undefined;
}

/** An entry of a {@link CacheClient.getMany} answer: the value, its metadata and its lifecycle (no lease: batch reads offer none). */
export type BatchEntry = CacheEntry & Omit<EntryLifecycle, 'lease'>;

/** Options of a single-key read. */
export interface ReadOpts extends CallOpts {
  /** Strong read (REST `Cache-Control: no-cache`): never the fallback tier (CACHE_005 while the store is down), never stale (a miss). */
  readonly strong?: boolean;
  /** Ask to be offered the refresh lease of a missing, stale or nearly expired entry (REST `Prefer: lease`). */
  readonly lease?: boolean;
  /** On a miss another caller is refreshing, wait up to this many whole seconds (≤ 10) for its write (REST `Prefer: wait`). */
  readonly waitSeconds?: number;
}

/** Options of {@link CacheClient.getOrSet}: how a loaded value is written, and how long to wait for another caller's load. */
export interface GrpcGetOrSetOpts extends Omit<WriteOpts, 'lease'> {
  /** Seconds one read waits for another caller's load (at most 10). Default 5. */
  readonly waitSeconds?: number;
  /** Give up on the cache (and load without it) after this many ms. Default 30000. */
  readonly giveUpAfterMs?: number;
}

/** Whether Redis confirmed the call; `true` mirrors REST's `X-Cache-Degraded: 1`. */
export interface Degraded {
  readonly degraded: boolean;
}

/** Value accepted by writes: bytes, or a string stored as UTF-8 (`text/plain; charset=utf-8` by default). */
export type CacheValue = Uint8Array | string;

/** Options of a write. */
export interface WriteOpts extends CallOpts {
  /** Seconds (1 … one year); the origin's `CACHE_DEFAULT_TTL` when absent. */
  readonly ttlSeconds?: number;
  readonly contentType?: string;
  /** Surrogate keys for purge by tag (single set only). */
  readonly tags?: readonly string[];
  /** Encrypt at rest (single set only); the client's `encrypt` when absent. */
  readonly encrypt?: boolean;
  /**
   * Store the value compressed with zstd when that saves space (`true`) or never
   * (`false`); absent = compress values above the origin's `COMPRESS_MIN_BYTES`
   * (default 1024 bytes). Ignored for an encrypted write, which is stored
   * uncompressed. Reads always return the original bytes.
   */
  readonly compress?: boolean;
  /** `stale-while-revalidate` after the TTL, seconds (RFC 5861 §3); 0 = none (or the key's profile default). */
  readonly staleWhileRevalidateSeconds?: number;
  /** `stale-if-error` after the TTL, seconds (RFC 5861 §4); 0 = none (or the key's profile default). */
  readonly staleIfErrorSeconds?: number;
  /**
   * The refresh lease this write completes (single set only; from a read with
   * `lease`). A lease that no longer holds is FAILED_PRECONDITION, `errorCode`
   * CACHE_006, and nothing is written.
   */
  readonly lease?: string;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 text of a value, for string values written with {@link CacheClient.set}. */
export function text(entry: { readonly value: Uint8Array }): string {
  return decoder.decode(entry.value);
}

function bytesOf(value: CacheValue): Uint8Array {
  return typeof value === 'string' ? encoder.encode(value) : value;
}

function defaultType(value: CacheValue, given: string | undefined): string {
  return given ?? (typeof value === 'string' ? 'text/plain; charset=utf-8' : '');
}

function graceOf(opts: Pick<WriteOpts, 'staleWhileRevalidateSeconds' | 'staleIfErrorSeconds'>) {
  return {
    staleWhileRevalidateSeconds: BigInt(opts.staleWhileRevalidateSeconds ?? 0),
    staleIfErrorSeconds: BigInt(opts.staleIfErrorSeconds ?? 0),
  };
}

/** The lifecycle fields GetResponse and EntryMetadata share, as numbers. */
function lifecycleOf(res: {
  staleReason: string;
  ageSeconds: bigint;
  staleWhileRevalidateSeconds: bigint;
  staleIfErrorSeconds: bigint;
}): Omit<EntryLifecycle, 'lease'> {
  return {
    staleReason: res.staleReason as StaleReason,
    ageSeconds: Number(res.ageSeconds),
    staleWhileRevalidateSeconds: Number(res.staleWhileRevalidateSeconds),
    staleIfErrorSeconds: Number(res.staleIfErrorSeconds),
  };
}

function fromMetadata(value: Uint8Array, meta: EntryMetadata | undefined, source: CacheSource): BatchEntry {
  return {
    value,
    contentType: meta?.contentType ?? '',
    version: Number(meta?.version ?? 0n),
    expiresAtMs: Number(meta?.expiresAtMs ?? 0n),
    tags: meta?.tags ?? [],
    source,
    stale: meta?.stale ?? false,
    ...(meta
      ? lifecycleOf(meta)
      : { staleReason: '' as const, ageSeconds: 0, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 0 }),
  };
}

/** The ergonomic wrapper: get, set (with TTL), delete, getMany, setMany, purge, health. */
export class CacheClient {
  /** The generated Connect client, for fields the wrapper does not surface. */
  readonly rpc: Client<typeof CacheService>;
  readonly namespace: string;
  readonly #timeoutMs: number;
  readonly #token: TokenSource | undefined;
  readonly #encrypt: boolean;
  readonly #policies: ClientPolicies;

  constructor(options: CacheClientOptions) {
    const transport = options.transport ?? createGrpcWebTransport({ baseUrl: options.baseUrl });
    this.rpc = createClient(CacheService, transport);
    this.namespace = options.namespace;
    this.#timeoutMs = options.timeoutMs ?? 5_000;
    this.#token = options.token;
    this.#encrypt = options.encrypt ?? false;
    this.#policies = new ClientPolicies(options.breaker ?? {}, options.retry ?? {});
  }

  /** The client-side breaker's state. */
  get breakerState(): ClientBreakerState {
    return this.#policies.state;
  }

  /** Subscribes to the client-side breaker's state changes; returns the unsubscribe function. */
  onBreakerStateChange(listener: (state: ClientBreakerState) => void): () => void {
    return this.#policies.onStateChange(listener);
  }

  /** The entry, or null on a miss; `degraded` when Redis did not confirm it. */
  async get(key: string, opts: ReadOpts = {}): Promise<(CacheEntry & EntryLifecycle & Degraded) | null> {
    return (await this.read(key, opts)).entry;
  }

  /**
   * A read that also answers the refresh lease of a miss: `entry` null on a
   * miss, `lease` set when this caller was chosen to refresh the key (only
   * when asked with `lease` or `waitSeconds`).
   */
  async read(
    key: string,
    opts: ReadOpts = {},
  ): Promise<{ entry: (CacheEntry & EntryLifecycle & Degraded) | null; lease: string | undefined }> {
    const request = {
      namespace: this.namespace,
      key,
      strong: opts.strong ?? false,
      lease: opts.lease ?? false,
      waitSeconds: opts.waitSeconds ?? 0,
    };
    const { res, degraded } = await this.#run(true, opts, (call) => this.rpc.get(request, call));
    const lease = res.lease || undefined;
    if (!res.found) return { entry: null, lease };
    const entry = {
      value: res.value,
      contentType: res.contentType,
      version: Number(res.version),
      expiresAtMs: Number(res.expiresAtMs),
      tags: res.tags,
      source: res.source,
      stale: res.stale,
      ...lifecycleOf(res),
      lease,
      degraded,
    };
    return { entry, lease };
  }

  /**
   * The cached value of `key`, or the loader's, with refresh leases
   * (memcache leases, NSDI 2013; BentoCache's and FusionCache's `getOrSet`):
   * on a miss only the caller handed the key's lease runs `loader` and writes
   * its value under the lease; the others wait for that write. A stale hit
   * answers the stale value at once, and the caller handed the lease
   * refreshes it in the background (a failed refresh leaves the stale value;
   * its lease lapses). A write whose lease was lost (CACHE_006: it expired,
   * or a newer value was written) still answers the loaded value; the newer
   * one stays cached. After `giveUpAfterMs` the loader runs without the cache.
   * @throws CacheClientError for any other failure of a read or write.
   */
  async getOrSet(
    key: string,
    loader: () => Promise<CacheValue>,
    opts: GrpcGetOrSetOpts = {},
  ): Promise<{ value: Uint8Array; loaded: boolean }> {
    const waitSeconds = Math.min(opts.waitSeconds ?? 5, 10);
    const deadline = Date.now() + (opts.giveUpAfterMs ?? 30_000);
    const { giveUpAfterMs: _, waitSeconds: __, ...write } = opts;
    // A read that waits needs a deadline beyond its wait.
    const timeoutMs = Math.max(opts.timeoutMs ?? this.#timeoutMs, (waitSeconds + 5) * 1000);
    const refresh = async (lease: string) => {
      const loaded = await loader();
      try {
        await this.set(key, loaded, { ...write, lease });
      } catch (error) {
        if (!(error instanceof CacheClientError && error.errorCode === 'CACHE_006')) throw error;
      }
      return bytesOf(loaded);
    };
    while (Date.now() < deadline) {
      const { entry, lease } = await this.read(key, { lease: true, waitSeconds, timeoutMs, signal: opts.signal });
      if (entry) {
        if (lease) refresh(lease).catch(() => {});
        return { value: entry.value, loaded: false };
      }
      // No lease: another caller is loading and the wait ran out; ask again.
      if (lease) return { value: await refresh(lease), loaded: true };
    }
    return { value: bytesOf(await loader()), loaded: true };
  }

  /** Writes one value; every edge drops older copies. */
  async set(
    key: string,
    value: CacheValue,
    opts: WriteOpts = {},
  ): Promise<{ version: number; expiresAtMs: number } & Degraded> {
    const req: MessageInitShape<typeof SetRequestSchema> = {
      namespace: this.namespace,
      key,
      value: bytesOf(value),
      ttlSeconds: BigInt(opts.ttlSeconds ?? 0),
      contentType: defaultType(value, opts.contentType),
      tags: [...(opts.tags ?? [])],
      encrypt: opts.encrypt ?? this.#encrypt,
      ...(opts.compress === undefined ? {} : { compress: opts.compress }),
      ...graceOf(opts),
      lease: opts.lease ?? '',
    };
    const { res, degraded } = await this.#run(false, opts, (call) => this.rpc.set(req, call));
    return { version: Number(res.version), expiresAtMs: Number(res.expiresAtMs), degraded };
  }

  /** Deletes one key and purges it at every edge; `deleted` is false when it was absent. */
  async delete(key: string, opts: CallOpts = {}): Promise<{ deleted: boolean; version: number } & Degraded> {
    const { res, degraded } = await this.#run(true, opts, (call) =>
      this.rpc.delete({ namespace: this.namespace, key }, call),
    );
    return { deleted: res.deleted, version: Number(res.version), degraded };
  }

  /** Reads up to 1000 keys: found entries by key (with their lifecycle: stale reason, age, grace windows), and the keys that missed. */
  async getMany(
    keys: readonly string[],
    opts: CallOpts = {},
  ): Promise<{ values: Map<string, BatchEntry>; missingKeys: string[]; source: CacheSource } & Degraded> {
    const { res, degraded } = await this.#run(true, opts, (call) =>
      this.rpc.batchGet({ namespace: this.namespace, keys: [...keys] }, call),
    );
    const values = new Map<string, BatchEntry>();
    for (const [key, value] of Object.entries(res.values)) {
      values.set(key, fromMetadata(value, res.entries[key], res.source));
    }
    return { values, missingKeys: res.missingKeys, source: res.source, degraded };
  }

  /** Writes up to 1000 values with one TTL and content type. */
  async setMany(
    entries: Readonly<Record<string, CacheValue>> | ReadonlyMap<string, CacheValue>,
    opts: Omit<WriteOpts, 'tags'> = {},
  ): Promise<{ storedCount: number; versions: Map<string, number> } & Degraded> {
    const pairs = entries instanceof Map ? [...entries] : Object.entries(entries);
    const first = pairs[0]?.[1] ?? '';
    const { res, degraded } = await this.#run(false, opts, (call) =>
      this.rpc.batchSet(
        {
          namespace: this.namespace,
          entries: Object.fromEntries(pairs.map(([k, v]) => [k, bytesOf(v)])),
          ttlSeconds: BigInt(opts.ttlSeconds ?? 0),
          contentType: defaultType(first, opts.contentType),
          ...(opts.compress === undefined ? {} : { compress: opts.compress }),
          ...graceOf(opts),
        },
        call,
      ),
    );
    const versions = new Map(Object.entries(res.entries).map(([k, m]) => [k, Number(m.version)]));
    return { storedCount: res.storedCount, versions, degraded };
  }

  /**
   * Purges by keys, tags or key prefix in this namespace, at the origin and
   * every edge. `soft` marks the entries stale instead (served within their
   * grace as `soft-purge` while one refresh runs; entries without grace are removed).
   */
  async purge(
    selector: { keys?: readonly string[]; tags?: readonly string[]; prefix?: string; soft?: boolean },
    opts: CallOpts = {},
  ): Promise<{ purgedCount: number; seq: number }> {
    const { res } = await this.#run(true, opts, (call) =>
      this.rpc.purge(
        {
          namespace: this.namespace,
          keys: [...(selector.keys ?? [])],
          tags: [...(selector.tags ?? [])],
          ...(selector.prefix === undefined ? {} : { prefix: selector.prefix }),
          soft: selector.soft ?? false,
        },
        call,
      ),
    );
    return { purgedCount: res.purgedCount, seq: Number(res.seq) };
  }

  /** Store reachability, breaker state and invalidation source. */
  async health(opts: CallOpts = {}): Promise<HealthResponse> {
    return (await this.#run(true, opts, (call) => this.rpc.health({}, call))).res;
  }

  /**
   * One call through the policies: each attempt gets the token, the deadline
   * and a fresh `degraded` flag from the response header.
   */
  async #run<T>(
    idempotent: boolean,
    opts: CallOpts,
    send: (call: CallOptions) => Promise<T>,
  ): Promise<{ res: T; degraded: boolean }> {
    let degraded = false;
    const res = await this.#policies.run(idempotent, async () => {
      degraded = false;
      const token = typeof this.#token === 'function' ? await this.#token() : this.#token;
      const call: CallOptions = {
        timeoutMs: opts.timeoutMs ?? this.#timeoutMs,
        onHeader: (h) => {
          degraded = h.get('x-cache-degraded') === '1';
        },
      };
      if (token) call.headers = { authorization: `Bearer ${token}` };
      if (opts.signal) call.signal = opts.signal;
      try {
        return await send(call);
      } catch (error) {
        throw networkFailureAsUnavailable(error);
      }
    });
    return { res, degraded };
  }
}

/** Creates a {@link CacheClient} (gRPC-web over `fetch` unless a transport is given). */
export function createCacheClient(options: CacheClientOptions): CacheClient {
  return new CacheClient(options);
}

export {
  type AdminClient,
  AdminClientError,
  type AdminClientOptions,
  createAdminClient,
  type FlushResponse,
  type KeyPageBody,
  type ListedKeyBody,
  type ListKeysQuery,
  type NamespaceStats,
  type NamespacesOverview,
  type NamespaceVersionInfo,
  type ReloadResponse,
} from './admin.ts';
export { createLockClient, type HeldLock, LockClient, type LockLease } from './locks.ts';
