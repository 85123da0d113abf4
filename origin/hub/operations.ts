import { authorize, type Principal } from '../../shared/auth.ts';
import { restAccess } from '../../shared/auth-http.ts';
import { decodeValue, encodeValue } from '../../shared/bytes.ts';
import { CacheError } from '../../shared/errors.ts';
import type { HubRequest, HubResponseData, ManagementRequestData, OperationRequestData } from '../../shared/hub.ts';
import type { FlushResponse, ReloadResponse } from '../../shared/schemas.ts';
import type { CacheService, WriteRequest } from '../cache-service.ts';
import type { NamespaceReports } from '../namespaces/report.ts';
import type { Reloader } from '../reload.ts';
import { batchGetAnswer, defaultContentType } from '../routes/cache.ts';
import type { OnceRecord } from '../store/store.ts';

/** What a hub request runs against: the same service, reports and reloader as REST and gRPC. */
export interface HubTarget {
  readonly service: CacheService;
  readonly reports: NamespaceReports;
  readonly reloader?: Reloader | undefined;
  /** The clock a batch get judges freshness by, Unix ms (as REST's); default `Date.now`. */
  readonly now?: () => number;
}

/** The fields of a success response an operation fills in (the envelope adds the rest). */
export type OperationResult = Omit<
  HubResponseData,
  'operation' | 'status' | 'correlation_id' | 'timestamp' | 'service'
>;

/** True for the operations that change something, which the hub makes idempotent by `correlation_id`. */
export function changes(request: HubRequest): boolean {
  const op = request.data.operation;
  return op === 'set' || op === 'set_many' || op === 'delete' || op === 'flush' || op === 'reload';
}

const path = (namespace: string, rest = '') => `/api/v1/cache/${encodeURIComponent(namespace)}/${rest}`;

/**
 * The REST request a hub request stands for, so its grant is exactly the
 * REST one (`shared/auth-http.ts` `restAccess`): get as `GET` of the key,
 * set as `PUT`, delete as `DELETE`, get_many and set_many as the batch
 * `POST`s, flush, stats and reload as their management routes.
 */
export function restEquivalent(request: HubRequest): { method: string; path: string } {
  const { data } = request;
  switch (data.operation) {
    case 'get':
      return { method: 'GET', path: path(data.namespace, encodeURIComponent(data.key ?? '')) };
    case 'set':
      return { method: 'PUT', path: path(data.namespace, encodeURIComponent(data.key ?? '')) };
    case 'delete':
      return { method: 'DELETE', path: path(data.namespace, encodeURIComponent(data.key ?? '')) };
    case 'get_many':
      return { method: 'POST', path: path(data.namespace, 'batch/get') };
    case 'set_many':
      return { method: 'POST', path: path(data.namespace, 'batch/set') };
    case 'flush':
      return { method: 'POST', path: `/api/v1/namespaces/${encodeURIComponent(data.namespace ?? '')}/flush` };
    case 'stats':
      return data.namespace === undefined
        ? { method: 'GET', path: '/api/v1/namespaces' }
        : { method: 'GET', path: `/api/v1/namespaces/${encodeURIComponent(data.namespace)}/stats` };
    case 'reload':
      return { method: 'POST', path: '/api/v1/reload' };
  }
}

/**
 * Checks the grant of {@link restEquivalent} for `principal` (no check when authentication is off).
 * @throws CacheError AUTH_002 when a scope or namespace is missing.
 */
export function authorizeHub(principal: Principal | undefined, request: HubRequest): void {
  if (!principal) return;
  const { method, path: p } = restEquivalent(request);
  const access = restAccess(method, p);
  if (access === 'open' || access === 'authenticated') return;
  authorize(principal, access.scope, access.namespace);
}

const missing = (field: string, operation: string) =>
  new CacheError('CACHE_004', `${field}: required for ${operation}`, { details: { operation } });

function need<T>(value: T | undefined, field: string, operation: string): T {
  if (value === undefined) throw missing(field, operation);
  return value;
}

/**
 * Runs one validated request.
 * @throws CacheError with the same code REST answers for the same call
 *   (CACHE_001 miss, CACHE_003 too large, CACHE_004 bad input, CACHE_005 store down).
 */
export async function runHubRequest(
  target: HubTarget,
  request: HubRequest,
  principal: Principal | undefined,
  once?: Omit<OnceRecord, 'id'>,
): Promise<OperationResult> {
  const { data } = request;
  const record = once && { ...once, id: data.correlation_id };
  if (request.event === 'cache.management.request')
    return await manage(target, data as ManagementRequestData, principal, record);
  return await operate(target, data as OperationRequestData, record);
}

/**
 * One operation request. With `once`, set, delete and every key of set_many
 * write their idempotency record with the change (see `OnceRecord`): a
 * redelivery changes nothing already changed, and rebuilds the same result
 * from the recorded versions and times.
 */
async function operate(
  target: HubTarget,
  data: OperationRequestData,
  once: OnceRecord | undefined,
): Promise<OperationResult> {
  const { service, now = Date.now } = target;
  const { namespace, operation, encoding } = data;
  // As REST batches: utf8 text is stored as text unless a content type is given.
  const contentType = data.content_type ?? (encoding === 'utf8' ? 'text/plain; charset=utf-8' : defaultContentType);
  const write = (text: string): WriteRequest => ({
    value: decodeValue(text, encoding),
    contentType,
    ttlSeconds: data.ttl,
    ...(once ? { once } : {}),
  });
  switch (operation) {
    case 'get': {
      const key = need(data.key, 'key', operation);
      const read = await service.get(namespace, key);
      if (!read.entry) throw new CacheError('CACHE_001', undefined, { details: { key, operation } });
      const { entry } = read;
      return {
        namespace,
        key,
        value: encodeValue(entry.value, encoding, key),
        encoding,
        content_type: entry.contentType,
        version: entry.version,
        expires_at_ms: entry.expiresAtMs,
      };
    }
    case 'set': {
      const key = need(data.key, 'key', operation);
      if (data.value === undefined) throw missing('value', operation);
      const entry = await service.set(namespace, key, write(data.value));
      return { namespace, key, version: entry.version, expires_at_ms: entry.expiresAtMs };
    }
    case 'delete': {
      const key = need(data.key, 'key', operation);
      const result = await service.delete(namespace, key, once);
      return { namespace, key, deleted: result.removed > 0, version: result.version };
    }
    case 'get_many': {
      if (!data.keys) throw missing('keys', operation);
      const { found } = await service.getMany(namespace, data.keys);
      return { namespace, ...batchGetAnswer(found, data.keys, encoding, now()) };
    }
    case 'set_many': {
      if (!data.entries) throw missing('entries', operation);
      const entries = new Map<string, WriteRequest>();
      for (const [key, text] of Object.entries(data.entries)) entries.set(key, write(text));
      const stored = await service.setMany(namespace, entries);
      const versions: Record<string, number> = {};
      for (const [key, entry] of stored) versions[key] = entry.version;
      return { namespace, stored_count: stored.size, versions };
    }
  }
}

async function manage(
  target: HubTarget,
  data: ManagementRequestData,
  principal: Principal | undefined,
  once: OnceRecord | undefined,
): Promise<OperationResult> {
  const { namespace, operation } = data;
  switch (operation) {
    case 'flush': {
      if (namespace === undefined) throw missing('namespace', operation);
      // On Redis the version bump writes the idempotency record in its own script.
      const flushed = await target.service.flush(namespace, principal?.serviceId ?? data.service, undefined, once);
      const result: FlushResponse = {
        namespace,
        version: flushed.version,
        flushed_at_ms: flushed.flushedAtMs,
        service_id: flushed.by,
        seq: flushed.seq,
      };
      return { namespace, result };
    }
    case 'stats':
      return namespace === undefined
        ? { result: await target.reports.overview() }
        : { namespace, result: await target.reports.stats(namespace) };
    case 'reload': {
      if (!target.reloader) throw new CacheError('CACHE_004', 'reload is not available on this origin');
      const reloaded = await target.reloader.reload();
      const result: ReloadResponse = { applied: reloaded.applied, restart_required: reloaded.restartRequired };
      return { result };
    }
  }
}
