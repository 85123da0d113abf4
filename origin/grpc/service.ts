import { create, type MessageInitShape } from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import { z } from 'zod';
import {
  type CacheService as CacheServiceDesc,
  CacheSource,
  EntryMetadataSchema,
  type GetResponseSchema,
} from '../../gen/strata/cache/v1/cache_pb.js';
import { CacheError, invalidInput } from '../../shared/errors.ts';
import type { CacheTier } from '../../shared/headers.ts';
import {
  isValidKey,
  isValidNamespace,
  keySchema,
  maxTagsPerEntry,
  namespaceSchema,
  tagSchema,
  ttlSecondsSchema,
} from '../../shared/keys.ts';
import {
  ageSeconds,
  freshness,
  type GraceWindows,
  isLeaseToken,
  maxPreferWaitSeconds,
  staleReasonOf,
} from '../../shared/lifecycle.ts';
import type { RequestMetrics } from '../../shared/metrics.ts';
import { graceSecondsSchema, maxBatchKeys, purgeRequestSchema } from '../../shared/schemas.ts';
import type { CacheService, WriteRequest } from '../cache-service.ts';
import { LockService, lockStoreFor } from '../locks/lock-service.ts';
import type { NamespaceReports } from '../namespaces/report.ts';
import type { Reloader } from '../reload.ts';
import { defaultContentType } from '../routes/cache.ts';
import type { RemovalResult, StoredEntry } from '../store/store.ts';
import { untilAborted } from './errors.ts';
import { grpcListingRpcs } from './listing-rpcs.ts';
import { grpcLockRpcs } from './lock-rpcs.ts';
import { grpcNamespaceRpcs } from './namespace-rpcs.ts';

/** Response header of a call Redis did not confirm; the gRPC twin of REST's `X-Cache-Degraded: 1`. */
export const degradedMetadata = 'x-cache-degraded';

/** What the gRPC service needs from the origin. */
export interface GrpcServiceDeps {
  /** The origin's one copy of the cache logic, shared with REST. */
  readonly service: CacheService;
  /** Where invalidations come from (`kafka` or `in-process`), for Health's `broker_status`. */
  readonly invalidationKind: string;
  /** Records each call with operation `grpc_<method>` (e.g. `grpc_get`). */
  readonly metrics?: RequestMetrics;
  /** Distributed locks, shared with REST; default: locks on the service's store, without metrics. */
  readonly locks?: LockService;
  /** Namespace versions and stats for the management RPCs, shared with REST; absent = those RPCs are UNIMPLEMENTED. */
  readonly reports?: NamespaceReports;
  /** Run-time configuration reload, shared with REST and SIGHUP; absent = `Reload` is UNIMPLEMENTED. */
  readonly reloader?: Reloader;
  /** The clock of `age_seconds`, Unix ms; default `Date.now` (the REST routes' clock). */
  readonly now?: () => number;
}

const tagsSchema = z.array(tagSchema).max(maxTagsPerEntry, `at most ${maxTagsPerEntry} tags`);
const contentTypeSchema = z.string().max(256, 'content_type must be at most 256 characters');
const batchKeysSchema = z
  .array(keySchema)
  .min(1, 'keys must not be empty')
  .max(maxBatchKeys, `at most ${maxBatchKeys} keys`);

const sources: Record<CacheTier, CacheSource> = {
  redis: CacheSource.REDIS,
  'origin-local': CacheSource.LOCAL,
  memory: CacheSource.MEMORY,
  edge: CacheSource.UNSPECIFIED,
};

/** Validates with a zod schema; a miss is CACHE_004 (INVALID_ARGUMENT), as in REST. */
function valid<T>(schema: z.ZodType<T>, value: unknown, details: Record<string, unknown>): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw invalidInput(parsed.error, details);
  return parsed.data;
}

/** Same rules and fast path as REST's `cachePath` (shared/http.ts). */
function validAddress(namespace: string, key: string, operation: string): void {
  if (isValidNamespace(namespace) && isValidKey(key)) return;
  valid(namespaceSchema, namespace, { namespace, operation });
  valid(keySchema, key, { key, operation });
}

/** Seconds from the wire; 0 (proto3 default) means the origin's default TTL. */
function ttlOf(ttlSeconds: bigint, operation: string): number | undefined {
  if (ttlSeconds === 0n) return undefined;
  return valid(ttlSecondsSchema, Number(ttlSeconds), { ttl: String(ttlSeconds), operation });
}

/**
 * Grace windows of a write from the wire, seconds → ms (RFC 5861); 0 = none.
 * @throws CacheError CACHE_004 (INVALID_ARGUMENT) for a window outside 0 … 31536000 s.
 */
function graceOf(req: { staleWhileRevalidateSeconds: bigint; staleIfErrorSeconds: bigint }, operation: string) {
  const seconds = (field: string, value: bigint) =>
    valid(graceSecondsSchema, Number(value), { [field]: String(value), operation });
  const grace: GraceWindows = {
    staleWhileRevalidateMs: seconds('stale_while_revalidate_seconds', req.staleWhileRevalidateSeconds) * 1000,
    staleIfErrorMs: seconds('stale_if_error_seconds', req.staleIfErrorSeconds) * 1000,
  };
  return grace.staleWhileRevalidateMs > 0 || grace.staleIfErrorMs > 0 ? grace : undefined;
}

/**
 * The refresh lease a Set gives back; empty = none.
 * @throws CacheError CACHE_004 (INVALID_ARGUMENT) for a malformed token.
 */
function leaseOf(lease: string): string | undefined {
  if (lease === '') return undefined;
  if (!isLeaseToken(lease))
    throw new CacheError('CACHE_004', 'lease is not a lease token', { details: { operation: 'set' } });
  return lease;
}

/**
 * How a Get reads (REST `Prefer: lease`, `Prefer: wait`, `Cache-Control: no-cache`).
 * @throws CacheError CACHE_004 (INVALID_ARGUMENT) for a negative `wait_seconds`.
 */
function readOptionsOf(req: { lease: boolean; waitSeconds: number; strong: boolean }) {
  if (req.waitSeconds < 0) {
    throw new CacheError('CACHE_004', 'wait_seconds must be 0 or more', { details: { operation: 'get' } });
  }
  const waitSeconds = Math.min(req.waitSeconds, maxPreferWaitSeconds);
  return { lease: req.lease || waitSeconds > 0, waitSeconds, strong: req.strong };
}

/**
 * The fields of an entry that Get and {@link metadataOf} both answer:
 * version, expiry and write time (Unix ms), content type, tags, `Age`
 * (seconds, RFC 9111 §5.1) at `nowMs`, and the writer's grace windows
 * (seconds, RFC 5861).
 */
function entryFieldsOf(entry: StoredEntry, nowMs: number) {
  return {
    version: BigInt(entry.version),
    expiresAtMs: BigInt(entry.expiresAtMs),
    contentType: entry.contentType,
    tags: [...entry.tags],
    ageSeconds: BigInt(ageSeconds(entry, nowMs)),
    staleWhileRevalidateSeconds: BigInt(Math.floor((entry.staleWhileRevalidateMs ?? 0) / 1000)),
    staleIfErrorSeconds: BigInt(Math.floor((entry.staleIfErrorMs ?? 0) / 1000)),
    createdAtMs: BigInt(entry.createdAtMs),
  };
}

/** `EntryMetadata` of a batch answer at `nowMs`: stale (with its reason) when past its TTL within `stale-while-revalidate`. */
function metadataOf(entry: StoredEntry, nowMs: number) {
  const stale = freshness(entry, nowMs) === 'stale';
  return create(EntryMetadataSchema, {
    ...entryFieldsOf(entry, nowMs),
    stale,
    staleReason: stale ? staleReasonOf(entry) : '',
  });
}

/**
 * The `strata.cache.v1.CacheService` implementation: validates input with the
 * REST rules of `shared/keys.ts` and `shared/schemas.ts`, then calls the
 * origin's {@link CacheService} (no second copy of cache logic). Every call
 * runs under the client's deadline ({@link untilAborted}); errors are thrown
 * as CacheError and mapped to gRPC codes by the handler's interceptor
 * (`errors.ts`). A degraded answer sets the {@link degradedMetadata} header.
 */
export function grpcCacheService(deps: GrpcServiceDeps): ServiceImpl<typeof CacheServiceDesc> {
  const { service } = deps;
  const now = deps.now ?? Date.now;
  const degraded = (ctx: HandlerContext) => ctx.responseHeader.set(degradedMetadata, '1');
  const acceptedLocally = (result: StoredEntry | RemovalResult) => service.store.acceptedLocally(result);
  const timed = async <T>(operation: string, run: () => Promise<{ out: T; tier: string; result: string }>) => {
    const started = performance.now();
    try {
      const { out, tier, result } = await run();
      deps.metrics?.request(`grpc_${operation}`, tier, result, (performance.now() - started) / 1000);
      return out;
    } catch (error) {
      deps.metrics?.request(`grpc_${operation}`, 'none', 'error', (performance.now() - started) / 1000);
      throw error;
    }
  };

  const locks = deps.locks ?? new LockService({ store: lockStoreFor(service.store) });
  return {
    ...grpcLockRpcs(locks, timed, service.store.kind),
    ...grpcNamespaceRpcs(deps, timed, service.store.kind),
    ...grpcListingRpcs(service, timed),
    get: (req, ctx) =>
      timed<MessageInitShape<typeof GetResponseSchema>>('get', async () => {
        validAddress(req.namespace, req.key, 'get');
        const options = { ...readOptionsOf(req), signal: ctx.signal };
        const read = await untilAborted(ctx.signal, () => service.get(req.namespace, req.key, options));
        if (read.degraded) degraded(ctx);
        if (!read.entry) return { out: { found: false, lease: read.lease ?? '' }, tier: 'none', result: 'miss' };
        const { entry } = read;
        return {
          out: {
            found: true,
            value: entry.value,
            source: sources[read.tier],
            ...entryFieldsOf(entry, now()),
            stale: read.status === 'STALE',
            staleReason: read.staleReason ?? '',
            lease: read.lease ?? '',
          },
          tier: read.tier,
          result: read.status === 'STALE' ? 'stale' : 'hit',
        };
      }),

    set: (req, ctx) =>
      timed('set', async () => {
        validAddress(req.namespace, req.key, 'set');
        const write: WriteRequest = {
          value: req.value,
          contentType: valid(contentTypeSchema, req.contentType, { operation: 'set' }) || defaultContentType,
          ttlSeconds: ttlOf(req.ttlSeconds, 'set'),
          tags: valid(tagsSchema, req.tags, { operation: 'set' }),
          encrypt: req.encrypt,
          compress: req.compress,
          grace: graceOf(req, 'set'),
          leaseId: leaseOf(req.lease),
        };
        const entry = await untilAborted(ctx.signal, () => service.set(req.namespace, req.key, write));
        if (acceptedLocally(entry)) degraded(ctx);
        return {
          out: { success: true, version: BigInt(entry.version), expiresAtMs: BigInt(entry.expiresAtMs) },
          tier: service.store.kind,
          result: 'ok',
        };
      }),

    delete: (req, ctx) =>
      timed('delete', async () => {
        validAddress(req.namespace, req.key, 'delete');
        const result = await untilAborted(ctx.signal, () => service.delete(req.namespace, req.key));
        if (acceptedLocally(result)) degraded(ctx);
        return {
          out: { deleted: result.removed > 0, version: BigInt(result.version) },
          tier: service.store.kind,
          result: 'ok',
        };
      }),

    batchGet: (req, ctx) =>
      timed('batch_get', async () => {
        valid(namespaceSchema, req.namespace, { namespace: req.namespace, operation: 'batch_get' });
        const keys = valid(batchKeysSchema, req.keys, { operation: 'batch_get' });
        const read = await untilAborted(ctx.signal, () => service.getMany(req.namespace, keys));
        if (read.degraded) degraded(ctx);
        const values: Record<string, Uint8Array> = {};
        const entries: Record<string, ReturnType<typeof metadataOf>> = {};
        const missingKeys: string[] = [];
        const nowMs = now();
        for (const key of new Set(keys)) {
          const entry = read.found.get(key);
          if (!entry) {
            missingKeys.push(key);
            continue;
          }
          values[key] = entry.value;
          entries[key] = metadataOf(entry, nowMs);
        }
        return {
          out: { values, entries, missingKeys, source: sources[read.tier] },
          tier: read.tier,
          result: missingKeys.length === 0 ? 'hit' : 'miss',
        };
      }),

    batchSet: (req, ctx) =>
      timed('batch_set', async () => {
        valid(namespaceSchema, req.namespace, { namespace: req.namespace, operation: 'batch_set' });
        valid(batchKeysSchema, Object.keys(req.entries), { operation: 'batch_set' });
        const contentType = valid(contentTypeSchema, req.contentType, { operation: 'batch_set' }) || defaultContentType;
        const ttlSeconds = ttlOf(req.ttlSeconds, 'batch_set');
        const grace = graceOf(req, 'batch_set');
        const writes = new Map<string, WriteRequest>();
        for (const [key, value] of Object.entries(req.entries))
          writes.set(key, { value, contentType, ttlSeconds, compress: req.compress, grace });
        const stored = await untilAborted(ctx.signal, () => service.setMany(req.namespace, writes));
        if ([...stored.values()].some(acceptedLocally)) degraded(ctx);
        const entries: Record<string, ReturnType<typeof metadataOf>> = {};
        for (const [key, entry] of stored) entries[key] = metadataOf(entry, now());
        return {
          out: { success: true, storedCount: stored.size, entries },
          tier: service.store.kind,
          result: 'ok',
        };
      }),

    purge: (req, ctx) =>
      timed('purge', async () => {
        const selector = valid(
          purgeRequestSchema,
          { namespace: req.namespace, keys: req.keys, tags: req.tags, prefix: req.prefix ?? null, soft: req.soft },
          { operation: 'purge' },
        );
        const result = await untilAborted(ctx.signal, () => service.purge(selector.namespace, selector));
        return {
          out: { purgedCount: result.removed, seq: BigInt(result.seq) },
          tier: service.store.kind,
          result: 'ok',
        };
      }),

    health: (_req, ctx) =>
      timed('health', async () => {
        const store = service.store;
        let healthy = true;
        try {
          await untilAborted(ctx.signal, () => store.ping());
        } catch (error) {
          if (ctx.signal.aborted) throw error;
          healthy = false;
        }
        return {
          out: {
            healthy,
            redisStatus: store.kind === 'redis' ? (healthy ? 'up' : 'down') : 'not_configured',
            brokerStatus: deps.invalidationKind,
            breakerState: store.health().breaker ?? '',
          },
          tier: store.kind,
          result: healthy ? 'ok' : 'error',
        };
      }),
  };
}
