/**
 * Typed client of the origin's gRPC-web API for internal services
 * (docs/grpc.md). Runs anywhere `fetch` does: Node ≥ 18, browsers, workers.
 *
 * Errors are `ConnectError`s from `@connectrpc/connect`; `code` is the gRPC
 * code of ARCHITECTURE.md §2 (INVALID_ARGUMENT bad key/namespace/TTL,
 * RESOURCE_EXHAUSTED value over the origin's `MAX_VALUE_BYTES`, UNAVAILABLE
 * store down, DEADLINE_EXCEEDED past `timeoutMs`), and
 * `metadata.get('x-cache-error-code')` is the ICD code (`CACHE_004`, …).
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

/** The generated service descriptor and the `CacheSource` enum (which tier answered a read). */
export { CacheService, CacheSource };

/** Options of {@link createCacheClient}. */
export interface CacheClientOptions {
  /** The origin, e.g. `http://127.0.0.1:8080` (same port as REST). */
  readonly baseUrl: string;
  /** Namespace every call uses, `[a-z0-9_-]{1,64}` (the seed's `service_id`). */
  readonly namespace: string;
  /** Default deadline per call, milliseconds; none when absent. */
  readonly timeoutMs?: number;
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
  /** A local copy answered that Redis may have moved past (REST `X-Cache: STALE`). */
  readonly stale: boolean;
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

function fromMetadata(value: Uint8Array, meta: EntryMetadata | undefined, source: CacheSource): CacheEntry {
  return {
    value,
    contentType: meta?.contentType ?? '',
    version: Number(meta?.version ?? 0n),
    expiresAtMs: Number(meta?.expiresAtMs ?? 0n),
    tags: meta?.tags ?? [],
    source,
    stale: false,
  };
}

/** The ergonomic wrapper: get, set (with TTL), delete, getMany, setMany, purge, health. */
export class CacheClient {
  /** The generated Connect client, for fields the wrapper does not surface. */
  readonly rpc: Client<typeof CacheService>;
  readonly namespace: string;
  readonly #timeoutMs: number | undefined;

  constructor(options: CacheClientOptions) {
    const transport = options.transport ?? createGrpcWebTransport({ baseUrl: options.baseUrl });
    this.rpc = createClient(CacheService, transport);
    this.namespace = options.namespace;
    this.#timeoutMs = options.timeoutMs;
  }

  /** The entry, or null on a miss; `degraded` when Redis did not confirm it. */
  async get(key: string, opts: CallOpts = {}): Promise<(CacheEntry & Degraded) | null> {
    const { call, degraded } = this.#call(opts);
    const res = await this.rpc.get({ namespace: this.namespace, key }, call);
    if (!res.found) return null;
    return {
      value: res.value,
      contentType: res.contentType,
      version: Number(res.version),
      expiresAtMs: Number(res.expiresAtMs),
      tags: res.tags,
      source: res.source,
      stale: res.stale,
      degraded: degraded(),
    };
  }

  /** Writes one value; every edge drops older copies. */
  async set(
    key: string,
    value: CacheValue,
    opts: WriteOpts = {},
  ): Promise<{ version: number; expiresAtMs: number } & Degraded> {
    const { call, degraded } = this.#call(opts);
    const req: MessageInitShape<typeof SetRequestSchema> = {
      namespace: this.namespace,
      key,
      value: bytesOf(value),
      ttlSeconds: BigInt(opts.ttlSeconds ?? 0),
      contentType: defaultType(value, opts.contentType),
      tags: [...(opts.tags ?? [])],
    };
    const res = await this.rpc.set(req, call);
    return { version: Number(res.version), expiresAtMs: Number(res.expiresAtMs), degraded: degraded() };
  }

  /** Deletes one key and purges it at every edge; `deleted` is false when it was absent. */
  async delete(key: string, opts: CallOpts = {}): Promise<{ deleted: boolean; version: number } & Degraded> {
    const { call, degraded } = this.#call(opts);
    const res = await this.rpc.delete({ namespace: this.namespace, key }, call);
    return { deleted: res.deleted, version: Number(res.version), degraded: degraded() };
  }

  /** Reads up to 1000 keys: found entries by key, and the keys that missed. */
  async getMany(
    keys: readonly string[],
    opts: CallOpts = {},
  ): Promise<{ values: Map<string, CacheEntry>; missingKeys: string[]; source: CacheSource } & Degraded> {
    const { call, degraded } = this.#call(opts);
    const res = await this.rpc.batchGet({ namespace: this.namespace, keys: [...keys] }, call);
    const values = new Map<string, CacheEntry>();
    for (const [key, value] of Object.entries(res.values)) {
      values.set(key, fromMetadata(value, res.entries[key], res.source));
    }
    return { values, missingKeys: res.missingKeys, source: res.source, degraded: degraded() };
  }

  /** Writes up to 1000 values with one TTL and content type. */
  async setMany(
    entries: Readonly<Record<string, CacheValue>> | ReadonlyMap<string, CacheValue>,
    opts: Omit<WriteOpts, 'tags'> = {},
  ): Promise<{ storedCount: number; versions: Map<string, number> } & Degraded> {
    const { call, degraded } = this.#call(opts);
    const pairs = entries instanceof Map ? [...entries] : Object.entries(entries);
    const first = pairs[0]?.[1] ?? '';
    const res = await this.rpc.batchSet(
      {
        namespace: this.namespace,
        entries: Object.fromEntries(pairs.map(([k, v]) => [k, bytesOf(v)])),
        ttlSeconds: BigInt(opts.ttlSeconds ?? 0),
        contentType: defaultType(first, opts.contentType),
      },
      call,
    );
    const versions = new Map(Object.entries(res.entries).map(([k, m]) => [k, Number(m.version)]));
    return { storedCount: res.storedCount, versions, degraded: degraded() };
  }

  /** Purges by keys, tags or key prefix in this namespace, at the origin and every edge. */
  async purge(
    selector: { keys?: readonly string[]; tags?: readonly string[]; prefix?: string },
    opts: CallOpts = {},
  ): Promise<{ purgedCount: number; seq: number }> {
    const { call } = this.#call(opts);
    const res = await this.rpc.purge(
      {
        namespace: this.namespace,
        keys: [...(selector.keys ?? [])],
        tags: [...(selector.tags ?? [])],
        ...(selector.prefix === undefined ? {} : { prefix: selector.prefix }),
      },
      call,
    );
    return { purgedCount: res.purgedCount, seq: Number(res.seq) };
  }

  /** Store reachability, breaker state and invalidation source. */
  async health(opts: CallOpts = {}): Promise<HealthResponse> {
    return await this.rpc.health({}, this.#call(opts).call);
  }

  #call(opts: CallOpts): { call: CallOptions; degraded: () => boolean } {
    let degraded = false;
    const timeoutMs = opts.timeoutMs ?? this.#timeoutMs;
    const call: CallOptions = {
      onHeader: (h) => {
        degraded = h.get('x-cache-degraded') === '1';
      },
    };
    if (timeoutMs !== undefined) call.timeoutMs = timeoutMs;
    if (opts.signal) call.signal = opts.signal;
    return { call, degraded: () => degraded };
  }
}

/** Creates a {@link CacheClient} (gRPC-web over `fetch` unless a transport is given). */
export function createCacheClient(options: CacheClientOptions): CacheClient {
  return new CacheClient(options);
}
export { createLockClient, type HeldLock, LockClient, type LockLease } from './locks.ts';
