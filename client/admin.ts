/**
 * Typed client of the management REST routes (flush, stats, versions,
 * reload) for operators and internal services. Runs anywhere `fetch` does.
 * Talks to the origin or an edge (edges relay these routes uncached).
 *
 * Responses are validated with the same zod schemas the server uses
 * (`shared/schemas.ts`). Errors are {@link AdminClientError}s carrying the
 * HTTP status and the error envelope's ICD code: `CACHE_004` bad namespace or
 * invalid configuration (reload), `CACHE_005` store or purge log unavailable,
 * `AUTH_001` missing or bad token, `AUTH_002` missing scope (`cache:flush`,
 * `metrics:read`, `cache:reload`).
 */

import type { z } from 'zod';
import {
  type FlushResponse,
  flushResponseSchema,
  type NamespaceStats,
  type NamespacesOverview,
  type NamespaceVersionInfo,
  namespaceStatsSchema,
  namespacesOverviewSchema,
  namespaceVersionInfoSchema,
  type ReloadResponse,
  reloadResponseSchema,
} from '../shared/schemas.ts';

export type { FlushResponse, NamespaceStats, NamespacesOverview, NamespaceVersionInfo, ReloadResponse };

/** A refused management call: HTTP `status` and the envelope's `code` (`CACHE_004`, `AUTH_002`, …). */
export class AdminClientError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = 'AdminClientError';
    this.status = status;
    this.code = code;
  }
}

/** Options of {@link createAdminClient}. */
export interface AdminClientOptions {
  /** Origin or edge, e.g. `http://127.0.0.1:8080`. */
  readonly baseUrl: string;
  /** Bearer JWT, or a provider called before every call (token rotation). */
  readonly token?: string | (() => string | Promise<string>);
  /** Per-call time limit, milliseconds (default 10,000). */
  readonly timeoutMs?: number;
  readonly fetch?: typeof fetch;
}

/** The management operations. */
export interface AdminClient {
  /** Flushes a namespace (scope `cache:flush`): its new version; older entries are gone for every reader. */
  flush(namespace: string): Promise<FlushResponse>;
  /** One namespace's stats (scope `metrics:read`). */
  stats(namespace: string): Promise<NamespaceStats>;
  /** Every namespace's stats and the store's footprint (scope `metrics:read`). */
  statsAll(): Promise<NamespacesOverview>;
  /** A namespace's current version and who set each one (scope `metrics:read`). */
  version(namespace: string): Promise<NamespaceVersionInfo>;
  /** Re-reads the run-time configuration (scope `cache:reload`, admin). */
  reload(): Promise<ReloadResponse>;
}

/** Creates a management client. */
export function createAdminClient(options: AdminClientOptions): AdminClient {
  const base = options.baseUrl.replace(/\/+$/, '');
  const doFetch = options.fetch ?? fetch;
  async function call<S extends z.ZodType>(method: string, path: string, schema: S): Promise<z.infer<S>> {
    const token = typeof options.token === 'function' ? await options.token() : options.token;
    const res = await doFetch(`${base}${path}`, {
      method,
      headers: token ? { Authorization: `Bearer ${token}` } : {},
      signal: AbortSignal.timeout(options.timeoutMs ?? 10_000),
    });
    const body: unknown = await res.json().catch(() => null);
    if (!res.ok) {
      const error = (body as { error?: { code?: string; message?: string } } | null)?.error;
      throw new AdminClientError(res.status, error?.code ?? 'CACHE_005', error?.message ?? `HTTP ${res.status}`);
    }
    return schema.parse(body);
  }
  const ns = (namespace: string) => `/api/v1/namespaces/${encodeURIComponent(namespace)}`;
  return {
    flush: (namespace) => call('POST', `${ns(namespace)}/flush`, flushResponseSchema),
    stats: (namespace) => call('GET', `${ns(namespace)}/stats`, namespaceStatsSchema),
    statsAll: () => call('GET', '/api/v1/namespaces', namespacesOverviewSchema),
    version: (namespace) => call('GET', ns(namespace), namespaceVersionInfoSchema),
    reload: () => call('POST', '/api/v1/reload', reloadResponseSchema),
  };
}
