import type { MessageInitShape } from '@bufbuild/protobuf';
import { Code, ConnectError, type HandlerContext, type ServiceImpl } from '@connectrpc/connect';
import type {
  CacheService as CacheServiceDesc,
  NamespaceStatsSchema,
  StoreFootprintSchema,
} from '../../gen/strata/cache/v1/cache_pb.js';
import { invalidInput } from '../../shared/errors.ts';
import { namespaceSchema } from '../../shared/keys.ts';
import type { NamespaceStats, StoreFootprint } from '../../shared/schemas.ts';
import type { CacheService } from '../cache-service.ts';
import type { NamespaceReports } from '../namespaces/report.ts';
import type { Reloader } from '../reload.ts';
import { principalOfCall } from './auth.ts';
import { untilAborted } from './errors.ts';

type NamespaceRpcs = Pick<
  ServiceImpl<typeof CacheServiceDesc>,
  'flushNamespace' | 'getNamespaceVersion' | 'getNamespaceStats' | 'listNamespaceStats' | 'reload'
>;
type Timed = <T>(operation: string, run: () => Promise<{ out: T; tier: string; result: string }>) => Promise<T>;

/** What the management RPCs need from the origin; without `reports` or `reloader` those RPCs are UNIMPLEMENTED. */
export interface NamespaceRpcDeps {
  readonly service: CacheService;
  readonly reports?: NamespaceReports;
  readonly reloader?: Reloader;
}

/** A namespace from the wire, by the REST rule; else CACHE_004 (INVALID_ARGUMENT). */
function validNamespace(namespace: string, operation: string): string {
  const parsed = namespaceSchema.safeParse(namespace);
  if (!parsed.success) throw invalidInput(parsed.error, { namespace, operation });
  return parsed.data;
}

const footprintOf = (store: StoreFootprint): MessageInitShape<typeof StoreFootprintSchema> => ({
  kind: store.kind,
  memoryBytes: BigInt(store.memory_bytes),
  memoryLimitBytes: store.memory_limit_bytes === null ? undefined : BigInt(store.memory_limit_bytes),
  keys: BigInt(store.keys),
  evictions: BigInt(store.evictions),
});

const statsOf = (stats: NamespaceStats): MessageInitShape<typeof NamespaceStatsSchema> => ({
  namespace: stats.namespace,
  version: BigInt(stats.version),
  entries: stats.entries === null ? undefined : BigInt(stats.entries),
  bytes: stats.bytes === null ? undefined : BigInt(stats.bytes),
  hits: Object.fromEntries(Object.entries(stats.hits).map(([tier, n]) => [tier, BigInt(n)])),
  misses: BigInt(stats.misses),
  hitRatio: stats.hit_ratio,
  writes: BigInt(stats.writes),
  deletes: BigInt(stats.deletes),
  opsPerSecond: stats.ops_per_second,
});

function unimplemented(method: string): ConnectError {
  return new ConnectError(`${method} is not served by this origin`, Code.Unimplemented);
}

/**
 * The management RPCs of `strata.cache.v1.CacheService` (flush, version,
 * stats, reload) over the same objects as the REST routes of
 * `origin/routes/namespaces.ts`: same validation, same codes, same answers.
 * Grants are checked by the auth interceptor (`auth.ts`), as on REST.
 */
export function grpcNamespaceRpcs(deps: NamespaceRpcDeps, timed: Timed, tier: string): NamespaceRpcs {
  const { service } = deps;
  const reports = (method: string) => {
    if (!deps.reports) throw unimplemented(method);
    return deps.reports;
  };
  return {
    flushNamespace: (req, ctx: HandlerContext) =>
      timed('flush', async () => {
        const namespace = validNamespace(req.namespace, 'flush');
        const by = principalOfCall(ctx)?.serviceId ?? 'anonymous';
        const flushed = await untilAborted(ctx.signal, () => service.flush(namespace, by));
        return {
          out: {
            namespace,
            version: BigInt(flushed.version),
            flushedAtMs: BigInt(flushed.flushedAtMs),
            serviceId: flushed.by,
            seq: BigInt(flushed.seq),
          },
          tier,
          result: 'ok',
        };
      }),
    getNamespaceVersion: (req, ctx) =>
      timed('namespace_version', async () => {
        const namespace = validNamespace(req.namespace, 'version');
        const info = await untilAborted(ctx.signal, () => reports('GetNamespaceVersion').version(namespace));
        return {
          out: {
            namespace,
            version: BigInt(info.version),
            history: info.history.map((h) => ({
              version: BigInt(h.version),
              flushedAtMs: BigInt(h.flushed_at_ms),
              serviceId: h.service_id,
            })),
          },
          tier,
          result: 'ok',
        };
      }),
    getNamespaceStats: (req, ctx) =>
      timed('namespace_stats', async () => {
        const namespace = validNamespace(req.namespace, 'stats');
        const { store, ...stats } = await untilAborted(ctx.signal, () => reports('GetNamespaceStats').stats(namespace));
        return { out: { stats: statsOf({ ...stats, store }), store: footprintOf(store) }, tier, result: 'ok' };
      }),
    listNamespaceStats: (_req, ctx) =>
      timed('namespaces', async () => {
        const overview = await untilAborted(ctx.signal, () => reports('ListNamespaceStats').overview());
        return {
          out: { namespaces: overview.namespaces.map(statsOf), store: footprintOf(overview.store) },
          tier,
          result: 'ok',
        };
      }),
    reload: (_req, ctx) =>
      timed('reload', async () => {
        if (!deps.reloader) throw unimplemented('Reload');
        const { reloader } = deps;
        const result = await untilAborted(ctx.signal, () => reloader.reload());
        return { out: { applied: result.applied, restartRequired: result.restartRequired }, tier, result: 'ok' };
      }),
  };
}
