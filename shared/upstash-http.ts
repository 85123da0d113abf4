import type { Context, Hono } from 'hono';
import { authorize, bearerToken, type Principal, type Verifier } from './auth.ts';
import { CacheError } from './errors.ts';
import { type AppEnv, instrument, type RequestLog, withRequestId } from './http.ts';
import { isValidNamespace } from './keys.ts';
import { noMetrics, type RequestMetrics } from './metrics.ts';
import { scopeOf } from './upstash-commands.ts';
import {
  asUpstashError,
  commandName,
  encodeOutcome,
  encodingHeader,
  type Outcome,
  parseRequest,
  parseSyncToken,
  syncTokenHeader,
  UpstashError,
  type UpstashRequest,
  wantsBase64,
} from './upstash-protocol.ts';

/** Where the Upstash protocol is served: `/upstash/{namespace}` is a client's base URL. */
export const upstashBasePath = '/upstash';

/** What the edge or origin makes of one authorized request. */
export interface UpstashCall {
  readonly namespace: string;
  readonly request: UpstashRequest;
  /** The path after the base URL (`""`, `pipeline`, `multi-exec` or a path command). */
  readonly rest: string;
  /** The raw body, to relay unchanged. */
  readonly body: Uint8Array;
  /** The client's read-your-writes token ({@link parseSyncToken}). */
  readonly syncToken: number;
  /** The verified caller; undefined when authentication is off. */
  readonly principal?: Principal | undefined;
  readonly c: Context<AppEnv>;
}

/** The answer: outcomes and the sync token to send back, or a response relayed as it is. */
export type UpstashAnswer =
  | {
      readonly outcomes: readonly Outcome[];
      readonly syncToken: number;
      /** The tier that answered (`edge`, `redis`, `memory`, …), for metrics and the request log. */
      readonly tier: string;
    }
  | Response;

export interface UpstashMountOptions {
  /** JWT verifier; null or absent = authentication off. */
  readonly auth?: Verifier | null | undefined;
  /** Largest request body, bytes. */
  readonly maxBodyBytes: number;
  readonly run: (call: UpstashCall) => Promise<UpstashAnswer>;
  /**
   * Per-caller rate limit (the edge's `EDGE_RATE_LIMIT_RPS`), asked once per
   * request with the caller's service id (`anonymous` without auth); a
   * refusal answers 429 with `Retry-After`.
   */
  readonly rateLimit?: (
    caller: string,
  ) => { readonly ok: true } | { readonly ok: false; readonly retryAfterMs: number };
  /** Counts each request as operation `upstash` (result `ok`, `error` or `refused`); absent = not counted. */
  readonly metrics?: RequestMetrics | undefined;
  /** One record per request, as REST requests are logged (never a value or token). */
  readonly log?: RequestLog | undefined;
}

/**
 * Mounts the Upstash protocol (`shared/upstash-protocol.ts`) on an edge or
 * origin app: authentication with Strata's JWT as the bearer token, each
 * command's grant checked as REST checks it (`cache:read` for reads,
 * `cache:write` for writes, `cache:delete` for DEL, in the path's
 * namespace), then `run`. Failures answer Upstash's `{"error": "…"}`, never
 * Strata's envelope, since that is what the client reads: 401
 * `Unauthorized`, 403 `NOPERM …`, 400 `ERR …` for a bad request or a failed
 * single command, 413, 503.
 */
export function mountUpstash(app: Hono<AppEnv>, options: UpstashMountOptions): void {
  // Counted and logged as operation `upstash`, like the REST routes (`instrument`).
  const timed = instrument(options.metrics ?? noMetrics, options.log);
  const handle = (c: Context<AppEnv>): Promise<Response> =>
    timed(c, 'upstash', async () => {
      const { res, tier } = await answer(c);
      const result = res.status === 200 ? 'ok' : res.status === 401 || res.status === 403 ? 'refused' : 'error';
      return { res, tier, result };
    });
  const answer = async (c: Context<AppEnv>): Promise<{ res: Response; tier: string }> => {
    let syncToken = parseSyncToken(c.req.header(syncTokenHeader));
    const base64 = wantsBase64(c.req.header(encodingHeader));
    try {
      const principal = options.auth ? await authenticate(options.auth, c.req.header('Authorization')) : undefined;
      const decision = options.rateLimit?.(principal?.serviceId ?? 'anonymous');
      if (decision && !decision.ok) {
        c.header('Retry-After', String(Math.max(1, Math.ceil(decision.retryAfterMs / 1000))));
        throw new UpstashError(429, 'ERR rate limit exceeded');
      }
      // Namespaces are [a-z0-9_-]: nothing to percent-decode.
      const namespace = c.req.param('namespace') ?? '';
      if (!isValidNamespace(namespace))
        throw new UpstashError(400, 'ERR invalid namespace: it must match [a-z0-9_-]{1,64}');
      const body = await readBody(c, options.maxBodyBytes);
      const pathname = new URL(c.req.url).pathname;
      const rest = pathname.slice(`${upstashBasePath}/${namespace}`.length).replace(/^\//, '');
      const request = parseRequest(c.req.method, rest, body);
      if (principal) for (const command of request.commands) checkGrant(principal, command, namespace);
      const ran = await options.run({ namespace, request, rest, body, syncToken, principal, c });
      if (ran instanceof Response) return { res: ran, tier: 'none' };
      syncToken = Math.max(syncToken, ran.syncToken);
      const h = withRequestId(c, { [syncTokenHeader]: String(syncToken) });
      if (request.kind === 'single') {
        const outcome = ran.outcomes[0]!;
        return { res: c.json(encodeOutcome(outcome, base64), 'error' in outcome ? 400 : 200, h), tier: ran.tier };
      }
      const encoded = ran.outcomes.map((o) => encodeOutcome(o, base64));
      return { res: c.json(encoded, 200, h), tier: ran.tier };
    } catch (error) {
      const failure = asUpstashError(error);
      const h = withRequestId(c, { [syncTokenHeader]: String(syncToken) });
      if (failure.status === 401) h['WWW-Authenticate'] = 'Bearer realm="strata"';
      return { res: c.json({ error: failure.message }, failure.status as 400, h), tier: 'none' };
    }
  };
  app.on(['GET', 'POST'], [`${upstashBasePath}/:namespace`, `${upstashBasePath}/:namespace/*`], handle);
}

async function authenticate(verifier: Verifier, header: string | undefined): Promise<Principal> {
  const token = bearerToken(header);
  if (!token) throw new UpstashError(401, 'Unauthorized');
  return await verifier(token);
}

function checkGrant(principal: Principal, command: readonly (string | Uint8Array)[], namespace: string): void {
  const scope = scopeOf(command);
  if (!scope) return;
  try {
    authorize(principal, scope, namespace);
  } catch (error) {
    if (!(error instanceof CacheError)) throw error;
    throw new UpstashError(
      403,
      `NOPERM this token has no permissions to run the '${commandName(command)}' command in namespace '${namespace}' (it needs ${scope})`,
    );
  }
}

async function readBody(c: Context, maxBytes: number): Promise<Uint8Array> {
  if (c.req.method !== 'POST') return new Uint8Array();
  const declared = Number(c.req.header('Content-Length') ?? '0');
  if (declared > maxBytes) throw new UpstashError(413, `ERR request body exceeds ${maxBytes} bytes`);
  const body = new Uint8Array(await c.req.arrayBuffer());
  if (body.byteLength > maxBytes) throw new UpstashError(413, `ERR request body exceeds ${maxBytes} bytes`);
  return body;
}
