/** Response and request header names of the REST contract (ARCHITECTURE.md §2). */
export const headers = {
  cache: 'X-Cache',
  cacheTier: 'X-Cache-Tier',
  degraded: 'X-Cache-Degraded',
  requestId: 'X-Request-Id',
  etag: 'ETag',
  age: 'Age',
  ifNoneMatch: 'If-None-Match',
  /** Unix ms at which the entry expires; lets an edge cap its own TTL. */
  expiresAt: 'X-Cache-Expires-At',
  /** Unix ms at which the origin stored the entry, so an edge's `Age` is exact (sent with `X-Cache-Expires-At`). */
  createdAt: 'X-Cache-Created-At',
  /** Entry version (also in the ETag), as a decimal string. */
  version: 'X-Cache-Version',
  /** Surrogate keys of an entry, comma separated. */
  cacheTag: 'Cache-Tag',
  /** On a PUT: `true` encrypts the value at rest (docs/security.md); same as `?encrypt=true`. */
  encrypt: 'X-Cache-Encrypt',
  /** On a PUT: `true` stores the value compressed when that saves space, `false` never; absent = the origin's threshold (docs/compression.md). */
  compress: 'X-Cache-Compress',
  /** On a STALE read: why (`revalidating`, `error`, `soft-purge`; RFC 5861). */
  staleReason: 'X-Cache-Stale-Reason',
  /** Origin to edge, on reads: the entry's grace windows in ms, `swr=<ms>;sie=<ms>` (`shared/lifecycle.ts`). */
  grace: 'X-Cache-Grace',
  /** On a write: `max-age`, `stale-while-revalidate`, `stale-if-error`; on a read: what remains (RFC 9111, RFC 5861). */
  cacheControl: 'Cache-Control',
  /** On a read: the refresh lease this caller holds; on a write: the lease it completes (CACHE_006 when lost). */
  lease: 'X-Cache-Lease',
  /** On a read: `wait=<seconds>` waits for another caller's refresh on a full miss (RFC 7240 §4.3). */
  prefer: 'Prefer',
  /** On a read of a key whose profile is `strong`: every read is revalidated at the origin (`CACHE_PROFILES`). */
  consistency: 'X-Cache-Consistency',
  /** On a lock renew or release: the fencing token of the grant (docs/locks.md). */
  lockToken: 'X-Lock-Token',
} as const;

/** `X-Cache` values. */
export type CacheStatus = 'HIT' | 'MISS' | 'STALE';

/** `X-Cache-Tier` values: which tier answered. */
export type CacheTier = 'edge' | 'origin-local' | 'redis' | 'memory';

/** The strong ETag of an entry version (RFC 9110 §8.8.3). */
export function etagFor(version: number): string {
  return `"v${version}"`;
}

/**
 * True when an `If-None-Match` value matches `etag` (RFC 9110 §13.1.2: weak
 * comparison, `*` matches any current entry, a comma list matches any member).
 */
export function ifNoneMatchHits(ifNoneMatch: string | undefined | null, etag: string): boolean {
  if (!ifNoneMatch) return false;
  const bare = etag.replace(/^W\//, '');
  return ifNoneMatch.split(',').some((candidate) => {
    const c = candidate.trim();
    return c === '*' || c.replace(/^W\//, '') === bare;
  });
}
