import { ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createCacheClient } from '../../client/index.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { captureLog } from '../support/log-capture.ts';
import { originFor } from '../support/stack.ts';

/** Internal services' calls are logged like REST requests: one line per RPC, never a value. */
describe('gRPC call log', () => {
  const log = captureLog('strata-origin', 'info');
  let origin: RunningOrigin;
  beforeAll(async () => {
    origin = await originFor({}, { logger: log.logger });
  });
  afterAll(async () => {
    await origin?.close();
  });

  it('writes one record per call with operation, namespace, status and error code, and no value', async () => {
    const cache = createCacheClient({ baseUrl: origin.url, namespace: 'grpclog' });
    await cache.set('k1', 'sentinel-value-7c1f', { ttlSeconds: 60 });
    expect(await cache.get('k1')).not.toBeNull();
    const failure = await cache.get('bad\u0000key').catch((error: unknown) => ConnectError.from(error));
    expect(failure).toBeInstanceOf(ConnectError);

    const calls = log.records().filter((r) => String(r.operation).startsWith('rpc_'));
    expect(calls.map((r) => r.operation)).toEqual(['rpc_set', 'rpc_get', 'rpc_get']);
    expect(calls[0]).toMatchObject({ namespace: 'grpclog', result: 'ok', status: 200 });
    expect(calls[2]).toMatchObject({ result: 'error', status: 400, error_code: 'CACHE_004' });
    for (const call of calls) {
      expect(call.request_id).toMatch(/^[0-9a-f-]{36}$/);
      expect(typeof call.duration_ms).toBe('number');
    }
    expect(log.lines.join('\n')).not.toContain('sentinel-value-7c1f');
  });
});
