/**
 * `getOrSet` over Strata's REST API (an edge or the origin): read the key,
 * and when it is missing let exactly one caller across all clients load it,
 * under the key's refresh lease (memcache leases, Nishtala et al., NSDI 2013;
 * BentoCache's and FusionCache's `getOrSet`). The others wait for that
 * caller's write with `Prefer: wait` (RFC 7240) instead of loading too.
 */

/** Options of {@link restCache}. */
export interface RestCacheOptions {
  /** Edge or origin base URL, e.g. `http://127.0.0.1:8787`. */
  readonly baseUrl: string;
  readonly namespace: string;
  /** Bearer token (JWT) when the service checks credentials. */
  readonly token?: string;
  /** The runtime's fetch; default the global one. */
  readonly fetch?: typeof fetch;
}

/** Options of one {@link RestCache.getOrSet} call. */
export interface GetOrSetOptions {
  /** TTL of a loaded value, seconds; the service default when absent. */
  readonly ttlSeconds?: number;
  /** `stale-while-revalidate` of a loaded value, seconds (RFC 5861). */
  readonly staleWhileRevalidateSeconds?: number;
  /** `stale-if-error` of a loaded value, seconds (RFC 5861). */
  readonly staleIfErrorSeconds?: number;
  /** Content-Type of a loaded value; default `application/octet-stream`. */
  readonly contentType?: string;
  /** Seconds one read waits for another caller's load (`Prefer: wait`, at most 10). Default 5. */
  readonly waitSeconds?: number;
  /** Give up (and load without the cache) after this many ms. Default 30000. */
  readonly timeoutMs?: number;
}

/** A value read or loaded, and whether this caller's loader produced it. */
export interface GetOrSetResult {
  readonly value: Uint8Array;
  readonly loaded: boolean;
}

/** The REST calls `getOrSet` makes, bound to one service and namespace. */
export interface RestCache {
  /**
   * The cached value of `key`, or the loader's: the loader runs only in the
   * caller that holds the key's refresh lease, whose write then serves every
   * other caller. A caller whose lease was lost (412 CACHE_006: it expired,
   * or a newer value was written) still gets its loaded value; the newer one
   * stays in the cache. A hit that comes with the lease (stale within
   * stale-while-revalidate, or near expiry) answers at once and refreshes
   * the key in the background; a failed background refresh is dropped and
   * its lease lapses (`LEASE_TTL_MS`).
   * @throws Error with the service's error envelope on any other failure.
   */
  getOrSet(key: string, loader: () => Promise<Uint8Array | string>, options?: GetOrSetOptions): Promise<GetOrSetResult>;
}

/** A {@link RestCache} for one service and namespace. */
export function restCache(options: RestCacheOptions): RestCache {
  const doFetch = options.fetch ?? fetch;
  const base = options.baseUrl.replace(/\/+$/, '');
  const auth: Record<string, string> = options.token ? { Authorization: `Bearer ${options.token}` } : {};
  const url = (key: string) =>
    `${base}/api/v1/cache/${encodeURIComponent(options.namespace)}/${encodeURIComponent(key)}`;

  return {
    async getOrSet(key, loader, opts = {}) {
      const wait = Math.min(opts.waitSeconds ?? 5, 10);
      const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
      /** Loads and writes under `lease`; a lost lease (412 CACHE_006) keeps the newer value in the cache. */
      const refresh = async (lease: string): Promise<Uint8Array> => {
        const loaded = await loader();
        const value = typeof loaded === 'string' ? new TextEncoder().encode(loaded) : loaded;
        const put = await doFetch(opts.ttlSeconds ? `${url(key)}?ttl=${opts.ttlSeconds}` : url(key), {
          method: 'PUT',
          body: value as Uint8Array<ArrayBuffer>,
          headers: {
            ...auth,
            'Content-Type': opts.contentType ?? 'application/octet-stream',
            'X-Cache-Lease': lease,
            ...cacheControl(opts),
          },
        });
        if (put.status !== 200 && put.status !== 201 && put.status !== 412) throw await failure(put);
        await put.body?.cancel();
        return value;
      };
      while (Date.now() < deadline) {
        const res = await doFetch(url(key), { headers: { ...auth, Prefer: `lease, wait=${wait}` } });
        const lease = res.headers.get('X-Cache-Lease');
        if (res.status === 200) {
          // A stale hit (or a fresh one near expiry, XFetch) handed this caller the key's lease: refresh in the
          // background and answer the value at once (stale-while-revalidate). Holding the lease unused would stop
          // every other caller from refreshing the key until it lapsed. A failed refresh only lets the lease lapse.
          if (lease) void refresh(lease).catch(() => {});
          return { value: new Uint8Array(await res.arrayBuffer()), loaded: false };
        }
        if (res.status !== 404) throw await failure(res);
        await res.body?.cancel();
        // No lease: another caller is loading and the wait ran out; ask again.
        if (!lease) continue;
        return { value: await refresh(lease), loaded: true };
      }
      const loaded = await loader();
      return { value: typeof loaded === 'string' ? new TextEncoder().encode(loaded) : loaded, loaded: true };
    },
  };
}

function cacheControl(opts: GetOrSetOptions): Record<string, string> {
  const parts = [
    opts.staleWhileRevalidateSeconds ? `stale-while-revalidate=${opts.staleWhileRevalidateSeconds}` : '',
    opts.staleIfErrorSeconds ? `stale-if-error=${opts.staleIfErrorSeconds}` : '',
  ].filter(Boolean);
  return parts.length > 0 ? { 'Cache-Control': parts.join(', ') } : {};
}

async function failure(res: Response): Promise<Error> {
  return new Error(`Strata answered HTTP ${res.status}: ${await res.text()}`);
}
