import { Hono } from 'hono';
import type { Verifier } from '../../shared/auth.ts';
import { headers } from '../../shared/headers.ts';
import type { AppEnv, RequestLog } from '../../shared/http.ts';
import { isValidKey } from '../../shared/keys.ts';
import type { RequestMetrics } from '../../shared/metrics.ts';
import { isWrite, type KeyValue, keysOf, runCommands, servedAtEdge } from '../../shared/upstash-commands.ts';
import { mountUpstash, upstashBasePath } from '../../shared/upstash-http.ts';
import { encodingHeader, syncTokenHeader, UpstashError } from '../../shared/upstash-protocol.ts';
import type { EdgeCache } from '../core/edge-cache.ts';
import type { OriginClient } from '../origin-client.ts';
import type { TokenBucketLimiter } from '../rate-limit.ts';

/** Milliseconds allowed, on top of the lease, between a write's version (the store's clock) and this edge's clock. */
export const syncClockSkewMs = 1_000;

export interface EdgeUpstashDeps {
  readonly cache: EdgeCache;
  readonly origin: OriginClient;
  readonly auth?: Verifier | null | undefined;
  /** Largest value, bytes. */
  readonly maxValueBytes: number;
  /** The edge's lease (`EDGE_LEASE_MS`): how old a purge may be and still be unapplied at a leased edge. */
  readonly leaseMs: number;
  readonly now?: () => number;
  /** Told after this edge relayed a write the origin acknowledged. */
  readonly onRelayedChange?: () => void;
  /** Per-caller rate limit (`EDGE_RATE_LIMIT_RPS`), as on the REST API; absent = none. */
  readonly rateLimiter?: TokenBucketLimiter | undefined;
  readonly metrics?: RequestMetrics | undefined;
  readonly log?: RequestLog | undefined;
}

/**
 * The edge's Upstash protocol at `/upstash/{namespace}`: a request of
 * `GET`, `MGET` and `PING` only (single or pipeline) is answered from the
 * near-user tier, misses filled from the origin and coalesced like REST
 * reads; everything else (writes, `multi-exec`, TTLs) is relayed to the
 * origin's `/upstash/{namespace}` unchanged, and the keys it wrote are
 * dropped here at once (the purge stream tells the other edges).
 *
 * Read-your-writes (`upstash-sync-token`, the highest version the client
 * saw written): a copy older than the token is served only when the token's
 * write is older than the lease plus {@link syncClockSkewMs}, since a
 * leased edge has applied every purge that old (ARCHITECTURE §6, leases);
 * otherwise the request goes to the origin.
 */
export function edgeUpstashRoutes(deps: EdgeUpstashDeps): Hono<AppEnv> {
  const app = new Hono<AppEnv>();
  const now = deps.now ?? Date.now;
  const { cache, origin } = deps;
  mountUpstash(app, {
    auth: deps.auth,
    metrics: deps.metrics,
    log: deps.log,
    maxBodyBytes: Math.max(deps.maxValueBytes * 2, 8 * 1024 * 1024),
    ...(deps.rateLimiter ? { rateLimit: (caller: string) => deps.rateLimiter!.take(caller, now()) } : {}),
    async run({ namespace, request, rest, body, syncToken, c }) {
      if (request.kind !== 'multi-exec' && request.commands.every(servedAtEdge)) {
        const keys = [...new Set(request.commands.flatMap(keysOf))].filter(isValidKey);
        const settled = syncToken === 0 || syncToken / 1000 < now() - deps.leaseMs - syncClockSkewMs;
        const reads = await Promise.all(keys.map((key) => cache.read(namespace, key, c.get('requestId'))));
        const fresh = reads.every((r) => r.kind !== 'hit' || settled || r.entry.version >= syncToken);
        if (fresh) {
          const snapshot = new Map<string, KeyValue>();
          reads.forEach((r, i) => {
            if (r.kind !== 'miss') snapshot.set(keys[i]!, r.entry);
          });
          const run = runCommands(request.commands, snapshot, {
            nowMs: now(),
            defaultTtlMs: 0,
            maxValueBytes: deps.maxValueBytes,
          });
          return { outcomes: run.outcomes, syncToken: 0, tier: 'edge' };
        }
      }
      const relayHeaders: Record<string, string> = {
        'Content-Type': 'application/json',
        [headers.requestId]: c.get('requestId'),
        [syncTokenHeader]: String(syncToken),
      };
      const encoding = c.req.header(encodingHeader);
      if (encoding !== undefined) relayHeaders[encodingHeader] = encoding;
      const path = `${upstashBasePath}/${namespace}${rest === '' ? '' : `/${rest}`}`;
      const res = await origin.request(path, {
        method: c.req.method,
        headers: relayHeaders,
        body: c.req.method === 'POST' ? (body as Uint8Array<ArrayBuffer>) : undefined,
      });
      const written = Number(res.headers.get(headers.version) ?? '0');
      if (written > 0) {
        for (const key of new Set(request.commands.filter(isWrite).flatMap(keysOf))) {
          if (isValidKey(key)) cache.forget(namespace, key, written);
        }
        deps.onRelayedChange?.();
      }
      if (res.status === 401 || res.status === 403) {
        // The edge's own token was refused: the caller's grants were fine, so this is the edge's fault.
        throw new UpstashError(503, 'ERR the edge could not reach the origin with its credentials');
      }
      const out = new Headers({ 'Content-Type': 'application/json' });
      for (const name of [syncTokenHeader, headers.requestId]) {
        const value = res.headers.get(name);
        if (value !== null) out.set(name, value);
      }
      return new Response(res.body, { status: res.status, headers: out });
    },
  });
  return app;
}
