import { execFile } from 'node:child_process';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createAdminClient } from '../../client/index.ts';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { restAccess, restOperation } from '../../shared/auth-http.ts';
import { errorEnvelopeSchema } from '../../shared/errors.ts';
import { keyPageSchema } from '../../shared/listing.ts';
import { edgeFor, originFor } from '../support/stack.ts';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');

describe('key listing over REST on real Redis', () => {
  let origin: RunningOrigin;
  const ns = `listing${Date.now().toString(36)}`;

  beforeAll(async () => {
    origin = await originFor({ REDIS_URL: inject('redisUrl') });
  });
  afterAll(async () => {
    await origin?.close();
  });

  const put = async (key: string, body: string, query = 'ttl=300') => {
    const res = await fetch(`${origin.url}/api/v1/cache/${ns}/${encodeURIComponent(key)}?${query}`, {
      method: 'PUT',
      body,
    });
    expect(res.status).toBe(200);
  };
  const list = async (query: string) => {
    const res = await fetch(`${origin.url}/api/v1/namespaces/${ns}/keys?${query}`);
    return { status: res.status, body: (await res.json()) as unknown };
  };
  const allPages = async (match: string, count: number) => {
    const keys: string[] = [];
    let cursor: string | null = null;
    for (let calls = 0; calls < 10_000; calls++) {
      const q = new URLSearchParams({ match, count: String(count), ...(cursor ? { cursor } : {}) });
      const { status, body } = await list(q.toString());
      expect(status).toBe(200);
      const page = keyPageSchema.parse(body);
      keys.push(...page.keys.map((k) => k.key));
      cursor = page.cursor;
      if (cursor === null) return keys;
    }
    throw new Error('listing never ended');
  };
  const expectError = async (res: Response, status: number, code: string) => {
    expect(res.status).toBe(status);
    expect(errorEnvelopeSchema.parse(await res.json()).error.code).toBe(code);
  };

  it('pages through the keys matching a glob with their size, TTL left, version and tags', async () => {
    for (let i = 0; i < 12; i++) await put(`user:${i}`, `value-${i}`, i === 0 ? 'ttl=300&tags=a,b' : 'ttl=300');
    await put('order:1', 'o');
    await put('a b:c', 'space and colon');
    const keys = await allPages('user:*', 4);
    expect(keys.sort()).toEqual(Array.from({ length: 12 }, (_, i) => `user:${i}`).sort());
    expect(new Set(keys).size).toBe(keys.length);
    expect((await allPages('a b*', 1000)).sort()).toEqual(['a b:c']);

    const alias = await fetch(`${origin.url}/api/v1/cache/${ns}/pattern/${encodeURIComponent('user:0')}`);
    expect(alias.status).toBe(200);
    const first = keyPageSchema.parse(await alias.json());
    const zero = first.keys.find((k) => k.key === 'user:0');
    // One SCAN call may miss a key that a later page holds; follow the listing when the first page did not have it.
    const listed = zero ?? (await allPagesWithMeta('user:0')).find((k) => k.key === 'user:0');
    expect(listed).toMatchObject({ size_bytes: 'value-0'.length, tags: ['a', 'b'] });
    expect(listed!.ttl_ms).toBeGreaterThan(290_000);
    expect(listed!.ttl_ms).toBeLessThanOrEqual(300_000);
  });

  const allPagesWithMeta = async (match: string) => {
    const found: ReturnType<typeof keyPageSchema.parse>['keys'] = [];
    let cursor: string | null = null;
    do {
      const q = new URLSearchParams({ match, count: '1000', ...(cursor ? { cursor } : {}) });
      const page = keyPageSchema.parse((await list(q.toString())).body);
      found.push(...page.keys);
      cursor = page.cursor;
    } while (cursor !== null);
    return found;
  };

  it('after a flush the namespace lists nothing until new writes arrive', async () => {
    await put('before', 'x');
    const res = await fetch(`${origin.url}/api/v1/namespaces/${ns}/flush`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await allPages('*', 1000)).toEqual([]);
    await put('after', 'y');
    expect(await allPages('*', 1000)).toEqual(['after']);
  });

  it('a malformed glob, cursor or count, or an unknown parameter, is a 400 CACHE_004', async () => {
    const base = `${origin.url}/api/v1/namespaces/${ns}/keys`;
    await expectError(await fetch(`${base}?match=${encodeURIComponent('user[')}`), 400, 'CACHE_004');
    await expectError(await fetch(`${base}?match=${encodeURIComponent('trailing\\')}`), 400, 'CACHE_004');
    await expectError(await fetch(`${base}?cursor=garbage!`), 400, 'CACHE_004');
    await expectError(await fetch(`${base}?count=0`), 400, 'CACHE_004');
    await expectError(await fetch(`${base}?count=ten`), 400, 'CACHE_004');
    await expectError(await fetch(`${base}?limit=5`), 400, 'CACHE_004');
    await expectError(await fetch(`${origin.url}/api/v1/namespaces/Bad!/keys`), 400, 'CACHE_004');
    await expectError(
      await fetch(`${origin.url}/api/v1/cache/${ns}/pattern/${encodeURIComponent('[')}`),
      400,
      'CACHE_004',
    );
  });

  it('a count above 1,000 is capped, not refused', async () => {
    const { status, body } = await list('count=50000');
    expect(status).toBe(200);
    expect(keyPageSchema.parse(body).keys.length).toBeLessThanOrEqual(1000);
  });
});

describe('key listing through the typed client, an edge and the CLI', () => {
  let origin: RunningOrigin;
  let edge: RunningEdge;
  const ns = `listcli${Date.now().toString(36)}`;
  const keys = Array.from({ length: 30 }, (_, i) => `item:${String(i).padStart(2, '0')}`);

  beforeAll(async () => {
    origin = await originFor({});
    edge = await edgeFor(origin.url);
    for (const key of keys) {
      const res = await fetch(`${origin.url}/api/v1/cache/${ns}/${key}?ttl=600&tags=t`, { method: 'PUT', body: key });
      expect(res.status).toBe(200);
    }
    await fetch(`${origin.url}/api/v1/cache/${ns}/other?ttl=600`, { method: 'PUT', body: 'o' });
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
  });

  it('the client walks every page through an edge, which relays the listing uncached', async () => {
    const client = createAdminClient({ baseUrl: edge.url });
    const listed: string[] = [];
    for await (const key of client.keys(ns, { match: 'item:*', count: 7 })) listed.push(key.key);
    expect(listed).toEqual(keys);
    const page = await client.listKeys(ns, { match: 'item:1?', count: 1000 });
    expect(page.keys.map((k) => k.key)).toEqual(keys.filter((k) => k.startsWith('item:1')));
    expect(page.cursor).toBeNull();
    await expect(client.listKeys(ns, { match: '[' })).rejects.toMatchObject({ status: 400, code: 'CACHE_004' });
  });

  it('npm run keys prints one line per key, and JSON lines with --json', async () => {
    const cli = (...args: string[]) =>
      run(process.execPath, [join(root, 'scripts/keys.ts'), ...args], {
        cwd: root,
        env: { PATH: process.env.PATH, ORIGIN_URL: origin.url },
      });
    const { stdout } = await cli('--namespace', ns, '--match', 'item:0*', '--count', '3');
    const lines = stdout.trim().split('\n');
    expect(lines.map((l) => l.split('\t')[0])).toEqual(keys.slice(0, 10));
    const [key, size, ttl, version, tags] = lines[0]!.split('\t');
    expect(key).toBe('item:00');
    expect(Number(size)).toBe('item:00'.length);
    expect(Number(ttl)).toBeGreaterThan(590);
    expect(Number(version)).toBeGreaterThan(0);
    expect(tags).toBe('t');
    const json = await cli('--namespace', ns, '--json', '--limit', '2');
    expect(
      json.stdout
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l).key),
    ).toEqual(['item:00', 'item:01']);
    await expect(cli('--namespace', ns, '--match', '[')).rejects.toMatchObject({ code: 1 });
    await expect(cli()).rejects.toMatchObject({ code: 2 });
  });
});

describe('key listing access', () => {
  it('needs cache:read on the namespace, and is counted as the list operation', () => {
    expect(restAccess('GET', '/api/v1/namespaces/character/keys')).toEqual({
      scope: 'cache:read',
      namespace: 'character',
    });
    expect(restAccess('GET', '/api/v1/cache/character/pattern/char%3A*')).toEqual({
      scope: 'cache:read',
      namespace: 'character',
    });
    expect(restOperation('GET', '/api/v1/namespaces/character/keys')).toBe('list');
    expect(restOperation('GET', '/api/v1/cache/character/pattern/x')).toBe('list');
  });
});
