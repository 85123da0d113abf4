import { describe, expect, it } from 'vitest';
import { createOriginApp } from '../../origin/app.ts';
import { CacheService } from '../../origin/cache-service.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import type { RequestRecord } from '../../shared/http.ts';
import { noMetrics } from '../../shared/metrics.ts';
import { pinoRequestLog } from '../../shared/request-log.ts';

function appWithLog(records: RequestRecord[]) {
  const bus = new InProcessPurgeBus({ retainedEntries: 16 });
  const service = new CacheService({
    store: passThroughStore(memoryStore({ maxBytes: 1 << 20 })),
    bus,
    defaultTtlSeconds: 60,
    maxValueBytes: 1024,
  });
  return createOriginApp({
    service,
    bus,
    metrics: noMetrics,
    maxValueBytes: 1024,
    heartbeatMs: 60_000,
    log: (r) => records.push(r),
  });
}

describe('request log', () => {
  it('writes one record per request with request id, namespace, operation, tier, status and duration, and never the value', async () => {
    const records: RequestRecord[] = [];
    const app = appWithLog(records);
    await app.request('/api/v1/cache/users/u1', {
      method: 'PUT',
      body: 'secret-value',
      headers: { 'X-Request-Id': 'r-1' },
    });
    await app.request('/api/v1/cache/users/u1', { headers: { 'X-Request-Id': 'r-2' } });
    await app.request('/api/v1/cache/users/absent', { headers: { 'X-Request-Id': 'r-3' } });
    expect(records).toHaveLength(3);
    expect(records[0]).toMatchObject({
      request_id: 'r-1',
      operation: 'set',
      namespace: 'users',
      tier: 'memory',
      status: 200,
    });
    expect(records[1]).toMatchObject({
      request_id: 'r-2',
      operation: 'get',
      result: 'hit',
      tier: 'memory',
      status: 200,
    });
    expect(records[2]).toMatchObject({ request_id: 'r-3', result: 'miss', status: 404, error_code: 'CACHE_001' });
    for (const r of records) expect(r.duration_ms).toBeGreaterThanOrEqual(0);
    expect(JSON.stringify(records)).not.toContain('secret-value');
  });

  it('echoes X-Request-Id on every answer, success or error', async () => {
    const app = appWithLog([]);
    for (const path of ['/api/v1/cache/users/absent', '/health', '/api/v1/cache/BAD/x']) {
      const res = await app.request(path, { headers: { 'X-Request-Id': 'abc-123' } });
      expect(res.headers.get('X-Request-Id')).toBe('abc-123');
    }
    const generated = await app.request('/health', { headers: { 'X-Request-Id': 'bad id with spaces' } });
    expect(generated.headers.get('X-Request-Id')).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('is off when info logging is off, and routes 5xx to warn', () => {
    const lines: Array<[string, object]> = [];
    const logger = (enabled: boolean) => ({
      isLevelEnabled: () => enabled,
      info: (r: object) => lines.push(['info', r]),
      warn: (r: object) => lines.push(['warn', r]),
    });
    expect(pinoRequestLog(logger(false))).toBeUndefined();
    const log = pinoRequestLog(logger(true))!;
    const base = { request_id: 'x', operation: 'get', tier: 'none', result: 'error', duration_ms: 1 };
    log({ ...base, status: 503, error_code: 'CACHE_005' });
    log({ ...base, status: 404, error_code: 'CACHE_001' });
    expect(lines.map(([level]) => level)).toEqual(['warn', 'info']);
  });
});
