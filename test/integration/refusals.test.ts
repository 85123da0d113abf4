import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { hs256Issuer, type TokenIssuer } from '../support/jwt.ts';
import { type CapturedLog, captureLog } from '../support/log-capture.ts';
import { edgeFor, originFor } from '../support/stack.ts';

/** The value of one `strata_requests_total` series in a Prometheus text page, 0 when absent. */
function requestsTotal(text: string, labels: Record<string, string>): number {
  const line = text
    .split('\n')
    .find(
      (l) =>
        l.startsWith('strata_requests_total{') && Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)),
    );
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('refused requests are logged once and counted, on the edge and the origin', () => {
  let issuer: TokenIssuer;
  let origin: RunningOrigin;
  let edge: RunningEdge;
  let originLog: CapturedLog;
  let edgeLog: CapturedLog;
  let metricsToken: string;

  beforeAll(async () => {
    issuer = hs256Issuer();
    originLog = captureLog('strata-origin', 'info');
    edgeLog = captureLog('strata-edge', 'info');
    origin = await originFor(issuer.env, { logger: originLog.logger });
    const edgeToken = await issuer.sign({ serviceId: 'strata-edge' });
    edge = await edgeFor(
      origin.url,
      { ...issuer.env, EDGE_ORIGIN_TOKEN: edgeToken, EDGE_STATS_INTERVAL_SECONDS: '0' },
      { logger: edgeLog.logger },
    );
    metricsToken = await issuer.sign({ serviceId: 'scraper', scope: ['metrics:read'] });
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
    await issuer?.close();
  });

  it('gRPC: a call without a token and one outside its namespace are each logged once as refused and counted', async () => {
    const metrics = () =>
      fetch(`${origin.url}/metrics`, { headers: { Authorization: `Bearer ${metricsToken}` } }).then((r) => r.text());
    const labels = { operation: 'grpc_get', tier: 'none', result: 'refused' };
    const before = requestsTotal(await metrics(), labels);
    const outsider = await issuer.sign({ serviceId: 'outsider', scope: ['cache:read'], ns: ['other'] });
    for (const [id, token, status] of [
      ['rpc-anon', undefined, 401],
      ['rpc-outsider', outsider, 403],
    ] as const) {
      const res = await fetch(`${origin.url}/strata.cache.v1.CacheService/Get`, {
        method: 'POST',
        body: JSON.stringify({ namespace: 'demo', key: 'k' }),
        headers: {
          'Content-Type': 'application/json',
          'X-Request-Id': id,
          ...(token ? { Authorization: `Bearer ${token}` } : {}),
        },
      });
      await res.text();
      expect(res.ok).toBe(false);
      const lines = originLog.records().filter((r) => r.request_id === id);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ operation: 'rpc_get', result: 'refused', status });
    }
    expect(originLog.lines.join('\n')).not.toContain(outsider);
    expect(requestsTotal(await metrics(), labels)).toBe(before + 2);
  });

  for (const side of ['edge', 'origin'] as const) {
    it(`${side}: a request without a token is one log line with request id and AUTH_001, and a refused count`, async () => {
      const base = side === 'edge' ? edge.url : origin.url;
      const log = side === 'edge' ? edgeLog : originLog;
      const metrics = () =>
        fetch(`${base}/metrics`, { headers: { Authorization: `Bearer ${metricsToken}` } }).then((r) => r.text());
      const labels = { operation: 'get', tier: 'none', result: 'refused' };
      const before = requestsTotal(await metrics(), labels);
      const requestId = `refused-anon-${side}`;
      const res = await fetch(`${base}/api/v1/cache/demo/k`, { headers: { 'X-Request-Id': requestId } });
      expect(res.status).toBe(401);
      await res.text();
      const lines = log.records().filter((r) => r.request_id === requestId);
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatchObject({ status: 401, error_code: 'AUTH_001', result: 'refused', operation: 'get' });
      expect(requestsTotal(await metrics(), labels)).toBe(before + 1);
    });

    it(`${side}: a valid token lacking the grant is logged with its service id and AUTH_002, never the token`, async () => {
      const base = side === 'edge' ? edge.url : origin.url;
      const log = side === 'edge' ? edgeLog : originLog;
      const token = await issuer.sign({ serviceId: 'reader-only', scope: ['cache:read'], ns: ['other'] });
      const requestId = `refused-grant-${side}`;
      const res = await fetch(`${base}/api/v1/cache/demo/k`, {
        method: 'PUT',
        body: 'v',
        headers: { Authorization: `Bearer ${token}`, 'X-Request-Id': requestId },
      });
      expect(res.status).toBe(403);
      await res.text();
      const lines = log.lines.filter((l) => l.includes(requestId));
      expect(lines).toHaveLength(1);
      expect(JSON.parse(lines[0]!)).toMatchObject({
        status: 403,
        error_code: 'AUTH_002',
        service_id: 'reader-only',
        operation: 'set',
        namespace: 'demo',
      });
      expect(log.lines.join('\n')).not.toContain(token);
      expect(log.lines.join('\n')).not.toContain(token.split('.')[2]!);
    });
  }
});
