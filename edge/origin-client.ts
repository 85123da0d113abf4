import { CacheError, errorEnvelopeSchema } from '../shared/errors.ts';
import { etagFor, headers } from '../shared/headers.ts';
import {
  formatPreferences,
  graceFields,
  parseGrace,
  type ReadPreferences,
  type StaleReason,
} from '../shared/lifecycle.ts';
import { isTracingEnabled, tracedFetch } from '../shared/tracing.ts';
import type { OriginMiss, OriginRead } from './core/edge-cache.ts';
import { fetchTransport, type OriginAnswer, type OriginExchange, type OriginTransport } from './origin-transport.ts';

export interface OriginClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  /** Per-call time limit, milliseconds. */
  timeoutMs: number;
  /** The runtime's fetch (keep-alive by default on Node's undici and in workerd). */
  fetch?: typeof fetch;
  /**
   * How reads, revalidations and writes of entries reach the origin; default:
   * over `fetch`. The Node adapter gives one on undici's `request`
   * (`edge/adapters/node/origin-transport.ts`). Relayed calls
   * ({@link OriginClient.request}) always use `fetch`: they stream bodies through.
   */
  transport?: OriginTransport;
  now?: () => number;
  /** Wrap each call in a CLIENT span and send `traceparent`; default: whether an OpenTelemetry SDK is recording. */
  tracing?: boolean;
  /** The edge's own JWT (`EDGE_ORIGIN_TOKEN`), sent as `Authorization: Bearer` on every call. */
  token?: string;
}

/**
 * HTTP client from an edge to the origin's REST API.
 *
 * Errors: an origin error envelope is rethrown as the same CacheError; a
 * network failure becomes CACHE_005 (503) and a time-out CACHE_005 (504).
 */
export class OriginClient {
  readonly #o: OriginClientOptions;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #tracing: boolean;
  readonly #transport: OriginTransport;

  constructor(options: OriginClientOptions) {
    this.#o = { ...options, baseUrl: options.baseUrl.replace(/\/+$/, '') };
    this.#fetch = options.fetch ?? ((input, init) => fetch(input, init));
    this.#transport = options.transport ?? fetchTransport(this.#fetch);
    this.#now = options.now ?? Date.now;
    this.#tracing = options.tracing ?? isTracingEnabled();
  }

  get baseUrl(): string {
    return this.#o.baseUrl;
  }

  /** Per-call time limit, milliseconds. */
  get timeoutMs(): number {
    return this.#o.timeoutMs;
  }

  /**
   * Reads one entry; null on a miss (404 CACHE_001/002), or the miss with the
   * refresh lease the origin granted. `waitSeconds` > 0 sends
   * `Prefer: wait=<s>` (and allows the call that long beyond its time limit).
   */
  async get(
    namespace: string,
    key: string,
    requestId?: string,
    preferences?: ReadPreferences,
  ): Promise<OriginRead | OriginMiss | null> {
    const prefer = preferences ? formatPreferences(preferences) : undefined;
    const waitSeconds = preferences?.waitSeconds ?? 0;
    const res = await this.send(
      'GET',
      `/api/v1/cache/${encodeURIComponent(namespace)}/${encodeURIComponent(key)}`,
      {
        ...(requestId ? { [headers.requestId]: requestId } : {}),
        ...(prefer ? { [headers.prefer]: prefer } : {}),
        ...(preferences?.strong ? { [headers.cacheControl]: 'no-cache' } : {}),
      },
      undefined,
      waitSeconds * 1000,
    );
    if (res.status === 404) {
      const lease = res.header(headers.lease);
      return lease ? { miss: true, lease } : null;
    }
    if (res.status !== 200) throw errorOf(res);
    return this.#readOf(res);
  }

  /**
   * Revalidates a copy at `version` (`If-None-Match: <ETag of version>`,
   * RFC 9110 §13.1.2): `not-modified` on 304, the current entry on 200,
   * null on a miss.
   * @throws CacheError CACHE_005 when the origin cannot be reached, or its error.
   */
  async revalidate(
    namespace: string,
    key: string,
    version: number,
    requestId?: string,
    strong = false,
  ): Promise<OriginRead | 'not-modified' | null> {
    const res = await this.send('GET', `/api/v1/cache/${encodeURIComponent(namespace)}/${encodeURIComponent(key)}`, {
      [headers.ifNoneMatch]: etagFor(version),
      ...(requestId ? { [headers.requestId]: requestId } : {}),
      ...(strong ? { [headers.cacheControl]: 'no-cache' } : {}),
    });
    if (res.status === 304) return 'not-modified';
    if (res.status === 404) return null;
    if (res.status !== 200) throw errorOf(res);
    return this.#readOf(res);
  }

  #readOf(res: OriginAnswer): OriginRead {
    const h = (name: string) => res.header(name);
    const ageSeconds = Number(h(headers.age) ?? '0');
    const tagHeader = h(headers.cacheTag);
    const lease = h(headers.lease);
    return {
      value: res.body,
      contentType: h('Content-Type') ?? 'application/octet-stream',
      version: Number(h(headers.version) ?? '0'),
      createdAtMs: Number(h(headers.createdAt) ?? Number.NaN) || this.#now() - ageSeconds * 1000,
      expiresAtMs: Number(h(headers.expiresAt) ?? '0'),
      tags: tagHeader ? tagHeader.split(',') : [],
      tier: h(headers.cacheTier) ?? 'unknown',
      degraded: h(headers.degraded) === '1',
      status: h(headers.cache) === 'STALE' ? 'STALE' : 'HIT',
      ...graceFields(parseGrace(h(headers.grace))),
      ...staleOf(h(headers.staleReason), this.#now()),
      ...(lease ? { lease } : {}),
      ...(h(headers.consistency) === 'strong' ? { strong: true } : {}),
    };
  }

  /**
   * One call to the origin through the transport, body read whole, with the
   * edge's token, the time limit (plus `extraTimeMs`) and, when tracing, a
   * CLIENT span. Used for entry reads, revalidations and writes.
   * @param path absolute path with query, e.g. `/api/v1/cache/ns/k`.
   * @throws CacheError CACHE_005 (503 unreachable, 504 timed out).
   */
  async send(
    method: OriginExchange['method'],
    path: string,
    requestHeaders: Record<string, string>,
    body?: Uint8Array<ArrayBuffer>,
    extraTimeMs = 0,
  ): Promise<OriginAnswer> {
    const withToken = this.#o.token ? { ...requestHeaders, Authorization: `Bearer ${this.#o.token}` } : requestHeaders;
    const exchange = (traceHeaders?: Record<string, string>): Promise<OriginAnswer> =>
      this.#transport({
        method,
        base: this.#o.baseUrl,
        path,
        headers: traceHeaders ? { ...withToken, ...traceHeaders } : withToken,
        ...(body ? { body } : {}),
        signal: AbortSignal.timeout(this.#o.timeoutMs + extraTimeMs),
      });
    try {
      if (!this.#tracing) return await exchange();
      return await tracedFetch(method, new URL(`${this.#o.baseUrl}${path}`), exchange);
    } catch (error) {
      throw this.#unreachable(error);
    }
  }

  /**
   * Sends a request to the origin with the time limit applied.
   * @param path absolute path with query, e.g. `/api/v1/purge`.
   * @throws CacheError CACHE_005 (503 unreachable, 504 timed out).
   */
  async request(
    path: string,
    init: RequestInit & { headers?: Record<string, string> },
    extraTimeMs = 0,
  ): Promise<Response> {
    const timeoutMs = this.#o.timeoutMs + extraTimeMs;
    const url = `${this.#o.baseUrl}${path}`;
    if (this.#o.token) {
      const withToken: Record<string, string> = {
        ...(init.headers as Record<string, string> | undefined),
        Authorization: `Bearer ${this.#o.token}`,
      };
      init = { ...init, headers: withToken };
    }
    try {
      if (!this.#tracing) return await this.#fetch(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
      return await tracedFetch(init.method ?? 'GET', new URL(url), (traceHeaders) =>
        this.#fetch(url, {
          ...init,
          headers: { ...init.headers, ...traceHeaders },
          signal: AbortSignal.timeout(timeoutMs),
        }),
      );
    } catch (error) {
      throw this.#unreachable(error);
    }
  }

  /** CACHE_005: 504 when the call's time limit fired, 503 when the origin could not be reached. */
  #unreachable(error: unknown): CacheError {
    const timedOut = error instanceof Error && (error.name === 'TimeoutError' || error.name === 'AbortError');
    return new CacheError('CACHE_005', timedOut ? 'Origin timed out' : 'Origin unreachable', {
      status: timedOut ? 504 : 503,
      details: { origin: this.#o.baseUrl },
      cause: error,
    });
  }
}

/** Rebuilds the origin's CacheError from its envelope; anything else becomes CACHE_005. */
export async function errorFrom(res: Response): Promise<CacheError> {
  return errorOfText(res.status, await res.text());
}

/** {@link errorFrom} for an answer read whole by the transport. */
export function errorOf(res: OriginAnswer): CacheError {
  return errorOfText(res.status, utf8.decode(res.body));
}

const utf8 = new TextDecoder();

function errorOfText(status: number, text: string): CacheError {
  try {
    const envelope = errorEnvelopeSchema.parse(JSON.parse(text));
    const { code, message, details } = envelope.error;
    return new CacheError(code, message, { status, details: details ?? {} });
  } catch {
    return new CacheError('CACHE_005', `Origin answered HTTP ${status}`, { details: { status } });
  }
}

const staleReasons: readonly string[] = ['revalidating', 'error', 'soft-purge'] satisfies StaleReason[];

/** The stale fields of an origin answer from its `X-Cache-Stale-Reason`: a soft purge marks the copy too. */
function staleOf(reason: string | null, nowMs: number): Pick<OriginRead, 'staleReason' | 'softPurgedAtMs'> {
  if (reason === null || !staleReasons.includes(reason)) return {};
  const staleReason = reason as StaleReason;
  return staleReason === 'soft-purge' ? { staleReason, softPurgedAtMs: nowMs } : { staleReason };
}
