import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import type { CacheService as CacheServiceDesc, ListKeysRequest } from '../../gen/strata/cache/v1/cache_pb.js';
import { invalidInput } from '../../shared/errors.ts';
import { namespaceSchema } from '../../shared/keys.ts';
import { listQuerySchema } from '../../shared/listing.ts';
import type { CacheService } from '../cache-service.ts';
import { listKeys } from '../listing/key-listing.ts';
import { untilAborted } from './errors.ts';

type ListingRpcs = Pick<ServiceImpl<typeof CacheServiceDesc>, 'listKeys'>;
type Timed = <T>(operation: string, run: () => Promise<{ out: T; tier: string; result: string }>) => Promise<T>;

/**
 * The request's listing query by REST's rules (`listQuerySchema`): an empty
 * `match` is `*`, an empty `cursor` starts the listing, `count` 0 is the
 * default and a larger one than 1,000 is capped.
 * @throws CacheError CACHE_004 (INVALID_ARGUMENT) for a bad namespace, cursor or count.
 */
function listingQuery(req: ListKeysRequest) {
  const namespace = namespaceSchema.safeParse(req.namespace);
  if (!namespace.success) throw invalidInput(namespace.error, { namespace: req.namespace, operation: 'list' });
  const query = listQuerySchema.safeParse({
    ...(req.match === '' ? {} : { match: req.match }),
    ...(req.cursor === '' ? {} : { cursor: req.cursor }),
    ...(req.count === 0 ? {} : { count: String(req.count) }),
  });
  if (!query.success) throw invalidInput(query.error, { namespace: namespace.data, operation: 'list' });
  return { namespace: namespace.data, query: query.data };
}

/**
 * `ListKeys` of `strata.cache.v1.CacheService`: the REST key listing
 * (`origin/listing/key-listing.ts`) over the service's store and namespace
 * versions, with the same cursor, so a listing begun on one surface can be
 * continued on the other. The grant (`cache:read` in the namespace) is
 * checked by the auth interceptor (`auth.ts`); errors map as on REST.
 */
export function grpcListingRpcs(service: CacheService, timed: Timed): ListingRpcs {
  return {
    listKeys: (req, ctx: HandlerContext) =>
      timed('list', async () => {
        const { namespace, query } = listingQuery(req);
        const page = await untilAborted(ctx.signal, () =>
          listKeys({ store: service.store, floor: (ns) => service.namespaces.floor(ns) }, namespace, query),
        );
        return {
          out: {
            namespace: page.namespace,
            match: page.match,
            keys: page.keys.map((k) => ({
              key: k.key,
              sizeBytes: BigInt(k.size_bytes),
              ttlMs: BigInt(k.ttl_ms),
              expiresAtMs: BigInt(k.expires_at_ms),
              version: BigInt(k.version),
              tags: k.tags,
            })),
            cursor: page.cursor ?? '',
          },
          tier: service.store.kind,
          result: 'ok',
        };
      }),
  };
}
