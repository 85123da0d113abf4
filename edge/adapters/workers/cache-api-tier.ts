/**
 * The Workers Cache API (`caches.default`, shared by the isolates of a
 * Cloudflare colo) as the Workers edge's second tier, behind the isolate's
 * memory tier. https://developers.cloudflare.com/workers/runtime-apis/cache/
 */

import { keepUntilMs } from '../../../shared/lifecycle.ts';
import { PurgeFloors, type PurgeFloorsOptions } from '../../core/purge-floors.ts';
import type { EdgeEntry, SharedEdgeTier } from '../../core/tier.ts';

/** Default synthetic origin of the tier's URLs; never fetched, only a cache key. */
export const defaultCacheApiBaseUrl = 'https://strata-edge-tier.invalid/';

/** Longest `max-age` given to the Cache API, seconds (entries carry their own expiry, checked on read). */
const maxAgeCapSeconds = 365 * 24 * 3600;

/** Response headers that carry an entry's metadata. */
const meta = {
  version: 'X-Strata-Version',
  createdAt: 'X-Strata-Created-At-Ms',
  expiresAt: 'X-Strata-Expires-At-Ms',
  filledAt: 'X-Strata-Filled-At-Ms',
  filledFrom: 'X-Strata-Filled-From',
  tags: 'X-Strata-Tags',
  staleWhileRevalidate: 'X-Strata-Swr-Ms',
  staleIfError: 'X-Strata-Sie-Ms',
  softPurgedAt: 'X-Strata-Soft-Purged-At-Ms',
  refresh: 'X-Strata-Refresh-Ms',
  strong: 'X-Strata-Strong',
} as const;

/** The optional lifecycle fields, as headers (absent when the entry lacks them). */
const optionalFields = [
  ['staleWhileRevalidateMs', meta.staleWhileRevalidate],
  ['staleIfErrorMs', meta.staleIfError],
  ['softPurgedAtMs', meta.softPurgedAt],
  ['refreshMs', meta.refresh],
] as const;

export interface CacheApiTierOptions extends PurgeFloorsOptions {
  /** The cache: `caches.default` in a Worker, or one from `caches.open(name)`. */
  readonly cache: Cache;
  /**
   * Synthetic origin of entry URLs (`<base><namespace>/<key>`, both
   * percent-encoded); default {@link defaultCacheApiBaseUrl}. Two tiers on one
   * cache with different bases never see each other's entries.
   */
  readonly baseUrl?: string;
  /** Unix-ms clock; tests pass a fake one. */
  readonly now?: () => number;
  /**
   * Unix ms: entries filled at or before it are refused until the first
   * {@link SharedEdgeTier.clear}. Default: now (the instance's start; the
   * edge also clears when its purge source first catches up).
   */
  readonly trustAfterMs?: number;
}

/** The URL under which a tier with base `baseUrl` stores `namespace`/`key`. */
export function cacheApiEntryUrl(baseUrl: string, namespace: string, key: string): string {
  const base = baseUrl.endsWith('/') ? baseUrl : `${baseUrl}/`;
  return `${base}${encodeURIComponent(namespace)}/${encodeURIComponent(key)}`;
}

interface Known {
  readonly namespace: string;
  readonly key: string;
  readonly version: number;
  readonly tags: readonly string[];
  readonly bytes: number;
}

/**
 * A `SharedEdgeTier` over the Cache API. Each entry is one `Response` under
 * `<base><namespace>/<key>`: the value as body, `Content-Type`, and the
 * entry's version, times, tags and origin tier as `X-Strata-*` headers;
 * `Cache-Control: max-age` follows the end of the entry's grace windows
 * (`keepUntilMs`: expiry plus the longer of stale-while-revalidate and
 * stale-if-error, RFC 5861), which reads check again on the tier's clock;
 * the edge cache tells fresh from stale.
 *
 * The Cache API deletes by URL only and is written by every isolate of the
 * colo, each following the purge log on its own, so a read accepts an
 * entry only when:
 * - it is within its fresh lifetime or grace windows;
 * - it was filled (its origin read was sent) after this isolate's last reset
 *   of trust: its start, the moment its purge source first caught up, and
 *   every `reset` of the purge log since. An isolate cannot know the purges
 *   it missed before it started following the log, so it trusts only
 *   entries whose origin read came after its view begins;
 * - its version is at least every purge this isolate applied to its key,
 *   its tags and the prefixes that cover it ({@link PurgeFloors}).
 * A purge also deletes the matching older entries this isolate stored
 * itself (by key, tag or prefix), unless another isolate has since stored a
 * copy at or above the purge's version under the same URL (read before the
 * delete; a copy stored between that read and the delete is lost, a miss and
 * never a stale read). Copies other isolates stored are refused
 * by the floors, deleted by the isolate that stored them when its own view
 * brings the purge, and otherwise age out with their `max-age`. (Deleting
 * every purged key's URL would also drop the fresh copy another isolate just
 * filled after the write that caused the purge.)
 *
 * A set reads the current entry first and keeps a higher version; two
 * isolates racing on one key can still overwrite a newer entry with an older
 * one, which the floors refuse once the newer write's purge arrives (the
 * same bound as the memory tier). Times compare clocks of the colo's
 * machines, which the platform keeps in sync.
 */
export function cacheApiTier(options: CacheApiTierOptions): SharedEdgeTier {
  const { cache } = options;
  const now = options.now ?? Date.now;
  const base = options.baseUrl ?? defaultCacheApiBaseUrl;
  const floors = new PurgeFloors(options);
  let trustAfterMs = options.trustAfterMs ?? now();
  /** Entries this isolate stored, by URL: for size, bytes and deletes of tag and prefix matches. */
  const known = new Map<string, Known>();
  let bytes = 0;

  const url = (namespace: string, key: string) => cacheApiEntryUrl(base, namespace, key);
  const forget = (u: string) => {
    const k = known.get(u);
    if (!k) return false;
    known.delete(u);
    bytes -= k.bytes;
    return true;
  };
  const remove = async (u: string): Promise<void> => {
    forget(u);
    await cache.delete(u);
  };

  /** The version stored under `u` now, whichever isolate stored it (headers only: the body is not read). */
  const storedVersion = async (u: string): Promise<number | undefined> => {
    const res = await cache.match(u);
    if (!res) return undefined;
    await res.body?.cancel();
    return Number(res.headers.get(meta.version));
  };
  /**
   * Deletes `u` if the copy stored there now, whichever isolate stored it, is below `version`; forgets it either
   * way (a copy stored between the check and the delete is lost: a miss, never a stale read).
   * @returns whether it was deleted.
   */
  const removeBelow = async (u: string, version: number): Promise<boolean> => {
    const held = await storedVersion(u);
    if (held === undefined || held >= version) {
      forget(u);
      return false;
    }
    await remove(u);
    return true;
  };
  const read = async (
    namespace: string,
    key: string,
  ): Promise<{ entry: EdgeEntry; filledAtMs: number } | undefined> => {
    const res = await cache.match(url(namespace, key));
    if (!res) return undefined;
    const number = (name: string) => Number(res.headers.get(name));
    const value = new Uint8Array(await res.arrayBuffer());
    const optional: Record<string, number> = {};
    for (const [field, header] of optionalFields) {
      const text = res.headers.get(header);
      if (text !== null) optional[field] = Number(text);
    }
    const entry: EdgeEntry = {
      ...optional,
      namespace,
      key,
      value,
      contentType: res.headers.get('Content-Type') ?? 'application/octet-stream',
      version: number(meta.version),
      createdAtMs: number(meta.createdAt),
      expiresAtMs: number(meta.expiresAt),
      tags: JSON.parse(decodeURIComponent(res.headers.get(meta.tags) ?? '%5B%5D')) as string[],
      filledFrom: res.headers.get(meta.filledFrom) ?? 'edge',
      ...(res.headers.get(meta.strong) === '1' ? { strong: true } : {}),
    };
    return { entry, filledAtMs: number(meta.filledAt) };
  };

  return {
    name: 'cache-api',
    get size() {
      return known.size;
    },
    get bytes() {
      return bytes;
    },
    async get(namespace, key) {
      const held = await read(namespace, key);
      if (!held) return undefined;
      const { entry, filledAtMs } = held;
      // Checked after the await: a purge or reset applied meanwhile counts.
      const trusted =
        keepUntilMs(entry) > now() &&
        filledAtMs > trustAfterMs &&
        floors.admits(namespace, key, entry.version, entry.tags);
      return trusted ? entry : undefined;
    },
    async set(entry, filledAtMs = now()) {
      const ttlMs = keepUntilMs(entry) - now();
      if (ttlMs <= 0) return false;
      const u = url(entry.namespace, entry.key);
      const existing = (await read(entry.namespace, entry.key))?.entry;
      if (existing && existing.version > entry.version && keepUntilMs(existing) > now()) return false;
      const maxAge = Math.min(maxAgeCapSeconds, Math.ceil(ttlMs / 1000));
      const headers: Record<string, string> = {};
      for (const [field, header] of optionalFields) {
        const v = entry[field];
        if (v !== undefined) headers[header] = String(v);
      }
      if (entry.strong) headers[meta.strong] = '1';
      await cache.put(
        u,
        new Response(entry.value as Uint8Array<ArrayBuffer>, {
          headers: {
            'Content-Type': entry.contentType,
            'Cache-Control': `max-age=${maxAge}`,
            [meta.version]: String(entry.version),
            [meta.createdAt]: String(entry.createdAtMs),
            [meta.expiresAt]: String(entry.expiresAtMs),
            [meta.filledAt]: String(filledAtMs),
            [meta.filledFrom]: entry.filledFrom,
            [meta.tags]: encodeURIComponent(JSON.stringify(entry.tags)),
            ...headers,
          },
        }),
      );
      forget(u);
      const size = entry.value.byteLength + (entry.namespace.length + entry.key.length) * 2;
      known.set(u, {
        namespace: entry.namespace,
        key: entry.key,
        version: entry.version,
        tags: entry.tags,
        bytes: size,
      });
      bytes += size;
      return true;
    },
    async delete(namespace, key) {
      await remove(url(namespace, key));
    },
    async purge(message) {
      // Floors first, synchronously: reads refuse older copies from now on, whatever the deletes do.
      floors.record(message);
      const keys = new Set(message.keys);
      const tags = new Set(message.tags);
      const doomed: string[] = [];
      for (const [u, k] of known) {
        if (k.namespace !== message.namespace || k.version >= message.version) continue;
        const matches =
          message.action === 'flush' ||
          keys.has(k.key) ||
          (message.prefix !== null && k.key.startsWith(message.prefix)) ||
          k.tags.some((t) => tags.has(t));
        if (matches) doomed.push(u);
      }
      // Another isolate may have stored a newer copy over ours since (its view brought the purge first and its
      // next read filled): the URL is deleted only while it still holds a version below the purge.
      const removed = await Promise.all(doomed.map((u) => removeBelow(u, message.version)));
      return removed.filter(Boolean).length;
    },
    async clear() {
      trustAfterMs = Math.max(trustAfterMs, now());
      // This isolate's copies (or older ones); a newer copy another isolate stored since is its own to distrust.
      await Promise.all([...known].map(([u, k]) => removeBelow(u, k.version + 1)));
    },
  };
}
