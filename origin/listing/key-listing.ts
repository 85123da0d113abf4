import { CacheError } from '../../shared/errors.ts';
import { defaultListCount, type KeyPageBody, maxListCount } from '../../shared/listing.ts';
import type { KeyListing, Store } from '../store/store.ts';
import { parseGlob } from './glob.ts';

/** What a listing needs from the origin: its store and the namespace versions. */
export interface KeyListingDeps {
  readonly store: Pick<Store, 'kind' | 'listKeys'>;
  /** The namespace's version as this replica knows it (`NamespaceRegistry.floor`): entries below it were flushed. */
  readonly floor: (namespace: string) => number;
  /** Told about a store failure before it is answered as CACHE_005. */
  readonly onStoreError?: (operation: string, error: unknown) => void;
  /** Clock, Unix ms. */
  readonly now?: () => number;
}

/** A listing call: a glob, the previous page's cursor (absent on the first) and a work bound. */
export interface KeyListingQuery {
  readonly match: string;
  readonly cursor?: string | undefined;
  /** 1 … {@link maxListCount} (larger is capped); default {@link defaultListCount}. */
  readonly count?: number | undefined;
}

interface CursorBody {
  /** namespace */
  readonly n: string;
  /** match */
  readonly m: string;
  /** the store's own cursor */
  readonly s: string;
}

function badCursor(cursor: string, reason: string): CacheError {
  return new CacheError('CACHE_004', `Invalid cursor: ${reason}`, { details: { cursor, operation: 'list' } });
}

/**
 * The opaque cursor of the REST and gRPC surfaces: base64url of a small JSON
 * object binding the store's cursor to the namespace and glob it belongs to,
 * so a cursor reused with another namespace or glob is refused, not misread.
 */
export function encodeListCursor(namespace: string, match: string, storeCursor: string): string {
  const body: CursorBody = { n: namespace, m: match, s: storeCursor };
  return Buffer.from(JSON.stringify(body)).toString('base64url');
}

/**
 * Decodes a cursor of {@link encodeListCursor}.
 * @throws CacheError CACHE_004 when malformed or issued for another namespace or glob.
 */
export function decodeListCursor(cursor: string, namespace: string, match: string): string {
  let body: unknown;
  try {
    if (!/^[A-Za-z0-9_-]+$/.test(cursor)) throw new Error('not base64url');
    body = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw badCursor(cursor, 'not a cursor this service issued');
  }
  const { n, m, s } = (body ?? {}) as Partial<CursorBody>;
  if (typeof n !== 'string' || typeof m !== 'string' || typeof s !== 'string' || s.length === 0) {
    throw badCursor(cursor, 'not a cursor this service issued');
  }
  if (n !== namespace || m !== match) throw badCursor(cursor, 'it belongs to a listing of another namespace or glob');
  return s;
}

/**
 * Lists a namespace's keys matching a glob, a page at a time, on whichever
 * store the origin runs (memory, Redis, Cluster). Entries of a flushed
 * namespace version (below the namespace's version) are never listed; they
 * still cost work, so a page may be short or empty while `cursor` is not
 * null. Guarantee: a key present for the whole listing is on some page.
 *
 * Errors: CACHE_004 (400) for a malformed glob or cursor; CACHE_005 (503)
 * when the store is unavailable or the Cluster's topology changed during
 * the listing (start again without a cursor).
 */
export async function listKeys(deps: KeyListingDeps, namespace: string, query: KeyListingQuery): Promise<KeyPageBody> {
  parseGlob(query.match);
  const count = Math.min(query.count ?? defaultListCount, maxListCount);
  const cursor = query.cursor === undefined ? null : decodeListCursor(query.cursor, namespace, query.match);
  const store: Partial<KeyListing> = deps.store;
  if (!store.listKeys) {
    throw new CacheError('CACHE_005', 'This store cannot list keys', { status: 503, details: { operation: 'list' } });
  }
  let page: Awaited<ReturnType<KeyListing['listKeys']>>;
  try {
    page = await store.listKeys(namespace, { match: query.match, cursor, count });
  } catch (error) {
    if (error instanceof CacheError) throw error;
    deps.onStoreError?.('list', error);
    throw new CacheError('CACHE_005', 'Store unavailable', {
      status: 503,
      details: { operation: 'list' },
      cause: error,
    });
  }
  const floor = deps.floor(namespace);
  const now = (deps.now ?? Date.now)();
  return {
    namespace,
    match: query.match,
    keys: page.keys
      .filter((k) => k.version >= floor && k.expiresAtMs > now)
      .map((k) => ({
        key: k.key,
        size_bytes: k.sizeBytes,
        ttl_ms: k.expiresAtMs - now,
        expires_at_ms: k.expiresAtMs,
        version: k.version,
        tags: [...k.tags],
      })),
    cursor: page.cursor === null ? null : encodeListCursor(namespace, query.match, page.cursor),
  };
}
