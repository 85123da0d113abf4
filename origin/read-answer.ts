import { etagFor, headers, ifNoneMatchHits } from '../shared/headers.ts';
import type { ReadEntry, ReadSource } from '../shared/http.ts';
import { ageSeconds as ageOf, formatGrace, graceMs, readCacheControl } from '../shared/lifecycle.ts';

/** Status, headers and body of the origin's answer to a read, before any runtime wraps it. */
export interface ReadAnswer {
  /** 200 with the value, or 304 (no body) when `If-None-Match` matched. */
  readonly status: 200 | 304;
  /** A plain object (see `AppEnv` in `shared/http.ts`); `Content-Length` is the runtime's to add. */
  readonly headers: Record<string, string>;
  /** The value (200), or null (304). */
  readonly body: Uint8Array | null;
}

/**
 * The origin's one answer to a read, built once for both ways a GET is
 * served: the Hono route (`routes/cache.ts`) and the `node:http` fast path
 * (`fast-read.ts`), so the two cannot drift. The same headers as the edge's
 * `readResponse` (`shared/http.ts`): `X-Cache`, `X-Cache-Tier`, `ETag`
 * (RFC 9110 §8.8.3), `Age` (RFC 9111 §5.1, whole seconds), `X-Cache-Version`,
 * `Cache-Control` (what remains of the lifetime), `X-Cache-Stale-Reason`,
 * `X-Cache-Lease`, `X-Cache-Consistency`, `X-Cache-Expires-At` /
 * `X-Cache-Created-At` (Unix ms) and `X-Cache-Grace` when `exposeExpiry`,
 * `Cache-Tag`, `X-Cache-Degraded`, `X-Request-Id`; then 304 without a body
 * when `ifNoneMatch` matches the ETag (RFC 9110 §13.1.2), else 200 with the
 * value and its `Content-Type`.
 */
export function readAnswer(
  entry: ReadEntry,
  source: ReadSource,
  requestId: string,
  ifNoneMatch: string | undefined,
): ReadAnswer {
  const ageSeconds = ageOf(entry, source.nowMs);
  const etag = etagFor(entry.version);
  const h: Record<string, string> = {
    [headers.cache]: source.status,
    [headers.cacheTier]: source.tier,
    [headers.etag]: etag,
    [headers.age]: String(ageSeconds),
    [headers.version]: String(entry.version),
    [headers.cacheControl]: readCacheControl(entry, ageSeconds, source.nowMs),
  };
  if (source.staleReason) h[headers.staleReason] = source.staleReason;
  if (source.lease) h[headers.lease] = source.lease;
  if (source.strong) h[headers.consistency] = 'strong';
  if (source.exposeExpiry) {
    h[headers.expiresAt] = String(entry.expiresAtMs);
    h[headers.createdAt] = String(entry.createdAtMs);
    if (graceMs(entry) > 0) h[headers.grace] = formatGrace(entry);
  }
  if (entry.tags.length > 0) h[headers.cacheTag] = entry.tags.join(',');
  if (source.degraded) h[headers.degraded] = '1';
  h[headers.requestId] = requestId;
  if (ifNoneMatchHits(ifNoneMatch, etag)) return { status: 304, headers: h, body: null };
  h['Content-Type'] = entry.contentType;
  return { status: 200, headers: h, body: entry.value };
}
