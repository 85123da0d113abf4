import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { edgeFor, originFor } from '../support/stack.ts';

// biome-ignore lint/suspicious/noExplicitAny: a parsed JSON document, walked by path
type Doc = any;

/**
 * The limits `/openapi.json` states are the limits the server enforces: each
 * is read from the served document and probed at its boundary (the largest
 * allowed value passes, one more is refused), on the edge and the origin.
 */
describe('OpenAPI limits match what the servers enforce', () => {
  const maxValueBytes = 4096;
  let origin: RunningOrigin;
  let edge: RunningEdge;
  beforeAll(async () => {
    origin = await originFor({ MAX_VALUE_BYTES: String(maxValueBytes) });
    edge = await edgeFor(origin.url, { MAX_VALUE_BYTES: String(maxValueBytes), EDGE_STATS_INTERVAL_SECONDS: '0' });
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
  });

  const status = async (res: Promise<Response>) => {
    const r = await res;
    await r.arrayBuffer();
    return r.status;
  };

  for (const side of ['edge', 'origin'] as const) {
    describe(side, () => {
      let base: string;
      let doc: Doc;
      const put = (ns: string, key: string, body: BodyInit = 'v', query = '') =>
        status(fetch(`${base}/api/v1/cache/${ns}/${encodeURIComponent(key)}${query}`, { method: 'PUT', body }));
      const post = (path: string, body: unknown) =>
        status(
          fetch(`${base}${path}`, {
            method: 'POST',
            body: JSON.stringify(body),
            headers: { 'Content-Type': 'application/json' },
          }),
        );
      beforeAll(async () => {
        base = side === 'edge' ? edge.url : origin.url;
        doc = await (await fetch(`${base}/openapi.json`)).json();
      });

      it('the namespace pattern accepts and refuses exactly what the server does', async () => {
        const param = doc.paths['/api/v1/cache/{namespace}/{key}'].parameters.find((p: Doc) => p.name === 'namespace');
        const pattern = new RegExp(param.schema.pattern);
        for (const ns of ['a'.repeat(64), 'a'.repeat(65), 'demo_-9', 'Demo', 'dé']) {
          expect({ ns, status: await put(encodeURIComponent(ns), 'k') }).toEqual({
            ns,
            status: pattern.test(ns) ? 200 : 400,
          });
        }
      });

      it('the key length: maxLength ASCII characters pass, one more is refused; the byte rule for UTF-8', async () => {
        const key = doc.paths['/api/v1/cache/{namespace}/{key}'].parameters.find((p: Doc) => p.name === 'key').schema;
        expect(key['x-max-utf8-bytes']).toBe(key.maxLength);
        expect(await put('demo', 'k'.repeat(key.maxLength))).toBe(200);
        expect(await put('demo', 'k'.repeat(key.maxLength + 1))).toBe(400);
        const euros = Math.floor(key['x-max-utf8-bytes'] / 3); // '€' is 3 bytes of UTF-8
        expect(await put('demo', '€'.repeat(euros))).toBe(200);
        expect(await put('demo', '€'.repeat(euros + 1))).toBe(400);
      });

      it('the TTL range: minimum and maximum pass, one outside each is refused', async () => {
        const ttl = doc.paths['/api/v1/cache/{namespace}/{key}'].put.parameters.find(
          (p: Doc) => p.name === 'ttl',
        ).schema;
        expect(await put('demo', 't', 'v', `?ttl=${ttl.minimum}`)).toBe(200);
        expect(await put('demo', 't', 'v', `?ttl=${ttl.maximum}`)).toBe(200);
        expect(await put('demo', 't', 'v', `?ttl=${ttl.minimum - 1}`)).toBe(400);
        expect(await put('demo', 't', 'v', `?ttl=${ttl.maximum + 1}`)).toBe(400);
      });

      it('the value size is this server’s MAX_VALUE_BYTES: that many bytes pass, one more is 413', async () => {
        const body = doc.paths['/api/v1/cache/{namespace}/{key}'].put.requestBody.content['application/octet-stream'];
        expect(body.schema.maxLength).toBe(maxValueBytes);
        expect(await put('demo', 'big', new Uint8Array(body.schema.maxLength))).toBe(200);
        expect(await put('demo', 'big', new Uint8Array(body.schema.maxLength + 1))).toBe(413);
      });

      it('the batch size: maxItems keys and maxProperties entries pass, one more is refused', async () => {
        const getSchema = doc.components.schemas.BatchGetRequest.properties.keys;
        const keys = (n: number) => Array.from({ length: n }, (_, i) => `k${i}`);
        expect(await post('/api/v1/cache/demo/batch/get', { keys: keys(getSchema.maxItems) })).toBe(200);
        expect(await post('/api/v1/cache/demo/batch/get', { keys: keys(getSchema.maxItems + 1) })).toBe(400);
        const setSchema = doc.components.schemas.BatchSetRequest.properties.entries;
        const entries = (n: number) => Object.fromEntries(keys(n).map((k) => [k, 'v']));
        expect(await post('/api/v1/cache/demo/batch/set', { entries: entries(setSchema.maxProperties) })).toBe(200);
        expect(await post('/api/v1/cache/demo/batch/set', { entries: entries(setSchema.maxProperties + 1) })).toBe(400);
      });
    });
  }

  it('every public endpoint is described: health, readiness, metrics, docs, and the origin’s stream, invalidations and stats', async () => {
    const originDoc = await (await fetch(`${origin.url}/openapi.json`)).json();
    const edgeDoc = await (await fetch(`${edge.url}/openapi.json`)).json();
    const common = ['/health', '/ready', '/metrics', '/openapi.json', '/docs', '/api/v1/cache/{namespace}/{key}'];
    const originOnly = [
      '/api/v1/purge/stream',
      '/api/v1/purges',
      '/api/v1/invalidations',
      '/api/v1/stats',
      '/dashboard',
      '/api/v1/jobs/warm',
      '/api/v1/jobs/{id}',
    ];
    expect(Object.keys(originDoc.paths)).toEqual(expect.arrayContaining([...common, ...originOnly]));
    expect(Object.keys(edgeDoc.paths)).toEqual(expect.arrayContaining(common));
    for (const path of originOnly) expect(Object.keys(edgeDoc.paths)).not.toContain(path);
    // Each described path answers something other than "no route" on its server.
    for (const [doc, base] of [
      [originDoc, origin.url],
      [edgeDoc, edge.url],
    ] as const) {
      for (const path of Object.keys(doc.paths).filter((p) => !p.includes('{') && p !== '/api/v1/purge/stream')) {
        const method = doc.paths[path].get ? 'GET' : 'POST';
        const res = await fetch(`${base}${path}`, { method });
        await res.arrayBuffer();
        expect({ path, status: res.status }).not.toEqual({ path, status: 404 });
      }
    }
  });
});
