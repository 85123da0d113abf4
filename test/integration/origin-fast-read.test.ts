import { mkdtempSync, rmSync } from 'node:fs';
import { get as httpGet } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { type RunningOrigin, startOrigin } from '../../origin/server.ts';
import { startRedis } from '../../scripts/services/redis.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';
import { hs256Issuer, type TokenIssuer } from '../support/jwt.ts';
import { type CapturedLog, captureLog } from '../support/log-capture.ts';
import { ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * The origin answers a plain GET hit in front of its Hono app
 * (`origin/fast-read.ts`). Two origins on the same Redis, one with that fast
 * path and one without, must give the same answer to the same request —
 * status, headers (but the request id and Date) and body — and count and log
 * it the same way, for hits and for everything the fast path hands over.
 */

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

interface Side {
  readonly origin: RunningOrigin;
  readonly log: CapturedLog;
  /** GETs the fast path answered itself so far. */
  fastAnswers: number;
}

async function startSide(env: Record<string, string>, fastRead: boolean): Promise<Side> {
  const log = captureLog(fastRead ? 'fast' : 'full', 'info');
  const config = parseConfig(originConfigSchema, { ORIGIN_PORT: '0', PURGE_LOG_KEY: ownPurgeLogKey(), ...env });
  const side: { origin?: RunningOrigin; log: CapturedLog; fastAnswers: number } = { log, fastAnswers: 0 };
  side.origin = await startOrigin(config, {
    logger: log.logger,
    fastRead,
    onFastRead: () => {
      side.fastAnswers += 1;
    },
  });
  return side as Side;
}

/** An answer without its Date, and an error envelope without the time it was made (`details.timestamp`). */
function normalised(status: number, headers: Record<string, string>, body: string): Answer {
  delete headers.date;
  const json = headers['content-type']?.startsWith('application/json');
  return { status, headers, body: json ? body.replace(/"timestamp":"[^"]*"/, '"timestamp":"…"') : body };
}

async function answerOf(res: Response): Promise<Answer> {
  return normalised(res.status, Object.fromEntries(res.headers), await res.text());
}

/** A GET whose request target goes on the wire as given (fetch would normalise it first). */
function rawGet(base: string, target: string, headers: Record<string, string>): Promise<Answer> {
  return new Promise((resolve, reject) => {
    httpGet(`${base}/`, { path: target, headers }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () =>
        resolve(normalised(res.statusCode ?? 0, { ...(res.headers as Record<string, string>) }, body)),
      );
      res.on('error', reject);
    }).on('error', reject);
  });
}

/**
 * The same request to both origins, the fast one first. `Age` counts whole
 * seconds, so a pair that straddled a second boundary is asked again.
 */
async function askBoth(fast: Side, full: Side, path: string, init: RequestInit = {}): Promise<[Answer, Answer]> {
  for (let attempt = 1; ; attempt++) {
    const a = await answerOf(await fetch(`${fast.origin.url}${path}`, init));
    const b = await answerOf(await fetch(`${full.origin.url}${path}`, init));
    if (a.headers.age === b.headers.age || attempt === 3) return [a, b];
  }
}

/** Asks both, checks the answers match but for the request id, and returns the fast side's answer. */
async function same(fast: Side, full: Side, path: string, init: RequestInit = {}): Promise<Answer> {
  const [a, b] = await askBoth(fast, full, path, init);
  const givenId = new Headers(init.headers).get('X-Request-Id');
  if (givenId === null) {
    expect(a.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(b.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    delete a.headers['x-request-id'];
    delete b.headers['x-request-id'];
  }
  expect(a).toEqual(b);
  return a;
}

/** `strata_requests_total` of `get` by labels, as `/metrics` shows it. */
async function getCounts(side: Side, token: string): Promise<Map<string, number>> {
  const text = await (
    await fetch(`${side.origin.url}/metrics`, { headers: { Authorization: `Bearer ${token}` } })
  ).text();
  const counts = new Map<string, number>();
  for (const m of text.matchAll(/^strata_requests_total(\{[^}]*operation="get"[^}]*\}) (\d+)$/gm)) {
    counts.set(m[1]!, Number(m[2]));
  }
  return counts;
}

/** What `after` counted beyond `before`, label sets sorted. */
function countedSince(before: Map<string, number>, after: Map<string, number>): [string, number][] {
  return [...after]
    .map(([labels, n]): [string, number] => [labels, n - (before.get(labels) ?? 0)])
    .filter(([, n]) => n > 0)
    .sort();
}

/** The request-log records of `get`, without what differs by nature (ids, durations, times, logger name). */
function getRecords(side: Side, from = 0): Record<string, unknown>[] {
  return side.log
    .records()
    .slice(from)
    .filter((r) => r.operation === 'get')
    .map(({ request_id: _, duration_ms: _d, time: _t, pid: _p, hostname: _h, name: _n, ...rest }) => rest);
}

describe('origin GET fast path answers exactly as the full path', () => {
  const ns = 'fastread';
  const path = (key: string) => `/api/v1/cache/${ns}/${key}`;
  let issuer: TokenIssuer;
  let fast: Side;
  let full: Side;
  let admin: string;
  let reader: string;
  let baseline: Record<'fast' | 'full', { counts: Map<string, number>; records: number }>;

  beforeAll(async () => {
    issuer = hs256Issuer();
    const env = { ...issuer.env, REDIS_URL: inject('redisUrl') };
    [fast, full] = await Promise.all([startSide(env, true), startSide(env, false)]);
    admin = await issuer.sign();
    reader = await issuer.sign({ scope: ['cache:read'], ns: [ns] });
    const put = async (key: string, query: string, headers: Record<string, string>) => {
      const res = await fetch(`${fast.origin.url}${path(key)}${query}`, {
        method: 'PUT',
        body: `value of ${key}`,
        headers: { Authorization: `Bearer ${admin}`, ...headers },
      });
      expect(res.status).toBe(200);
    };
    await put('hit', '?ttl=3600&tags=a,b', { 'Content-Type': 'text/plain' });
    // Fresh, with both grace windows stored beside it.
    await put('fresh-graced', '', {
      'Content-Type': 'text/plain',
      'Cache-Control': 'max-age=3600, stale-while-revalidate=60, stale-if-error=120',
    });
    // No grace: past its TTL by the time `graced` turns stale below, so a miss on both origins.
    await put('short', '?ttl=1', { 'Content-Type': 'text/plain' });
    await put('graced', '', {
      'Content-Type': 'application/json',
      'Cache-Control': 'max-age=1, stale-while-revalidate=300',
    });
    // Past its TTL, within stale-while-revalidate: both origins answer STALE.
    await eventually(
      'the graced entry to turn stale',
      async () =>
        (
          await fetch(`${full.origin.url}${path('graced')}`, { headers: { Authorization: `Bearer ${admin}` } })
        ).headers.get('X-Cache') === 'STALE',
      5_000,
      50,
    );
    // What the tests below ask is compared from here on.
    baseline = {
      fast: { counts: await getCounts(fast, admin), records: fast.log.lines.length },
      full: { counts: await getCounts(full, admin), records: full.log.lines.length },
    };
  });
  afterAll(async () => {
    await Promise.all([fast?.origin.close(), full?.origin.close()]);
    await issuer?.close();
  });

  it('a plain fresh hit is answered by the fast path, with the full path’s status, headers and body', async () => {
    const before = fast.fastAnswers;
    const a = await same(fast, full, path('hit'), { headers: { Authorization: `Bearer ${reader}` } });
    expect(fast.fastAnswers).toBe(before + 1);
    expect(full.fastAnswers).toBe(0);
    expect(a.status).toBe(200);
    expect(a.body).toBe('value of hit');
    expect(a.headers).toMatchObject({ 'x-cache': 'HIT', 'cache-tag': 'a,b', 'content-type': 'text/plain' });
    expect(a.headers['content-length']).toBe(String('value of hit'.length));
  });

  it('an If-None-Match revalidation (304), a given X-Request-Id and a strong read of a fresh hit are answered the same way', async () => {
    const etag = (await same(fast, full, path('hit'), { headers: { Authorization: `Bearer ${reader}` } })).headers
      .etag!;
    const before = fast.fastAnswers;
    const notModified = await same(fast, full, path('hit'), {
      headers: { Authorization: `Bearer ${reader}`, 'If-None-Match': etag },
    });
    expect(notModified.status).toBe(304);
    expect(notModified.body).toBe('');
    const echoed = await same(fast, full, path('hit'), {
      headers: { Authorization: `Bearer ${reader}`, 'X-Request-Id': 'given-id.1' },
    });
    expect(echoed.headers['x-request-id']).toBe('given-id.1');
    // A strong read (`Cache-Control: no-cache`; fetch adds it to the conditional request above too) of a fresh hit.
    const strong = await same(fast, full, path('hit'), {
      headers: { Authorization: `Bearer ${reader}`, 'Cache-Control': 'no-cache' },
    });
    expect(strong.status).toBe(200);
    expect(fast.fastAnswers).toBe(before + 3);
  });

  it('a fresh hit with grace windows is answered by the fast path with the same lifecycle headers', async () => {
    const before = fast.fastAnswers;
    const a = await same(fast, full, path('fresh-graced'), { headers: { Authorization: `Bearer ${reader}` } });
    expect(fast.fastAnswers).toBe(before + 1);
    expect(a.status).toBe(200);
    expect(a.headers['x-cache-grace']).toBeDefined();
    expect(a.headers['cache-control']).toMatch(/stale-while-revalidate=60/);
  });

  it('a token seen for the first time and the same token again (already verified) are answered alike', async () => {
    const token = await issuer.sign({ serviceId: 'first-seen', scope: ['cache:read'], ns: [ns] });
    const headers = { Authorization: `Bearer ${token}` };
    const before = fast.fastAnswers;
    const first = await same(fast, full, path('hit'), { headers });
    const again = await same(fast, full, path('hit'), { headers });
    expect(fast.fastAnswers).toBe(before + 2);
    expect([first.status, again.status]).toEqual([200, 200]);
    expect(again.body).toBe(first.body);
  });

  it('everything else is handed to the full path and answered the same way', async () => {
    const forged = await issuer.forge({ scope: ['cache:read'], ns: [ns] });
    const elsewhere = await issuer.sign({ scope: ['cache:read'], ns: ['elsewhere'] });
    const expired = await issuer.sign({ scope: ['cache:read'], ns: [ns], expiresIn: -120 });
    const auth = (token: string) => ({ Authorization: `Bearer ${token}` });
    const cases: [string, string, RequestInit, number][] = [
      ['miss', path('absent'), { headers: auth(reader) }, 404],
      ['stale entry', path('graced'), { headers: auth(reader) }, 200],
      ['no token', path('hit'), {}, 401],
      ['forged token', path('hit'), { headers: auth(forged) }, 401],
      ['no grant in the namespace', path('hit'), { headers: auth(elsewhere) }, 403],
      // The same token again: now from the verifier's cache, still refused.
      ['no grant in the namespace, token already verified', path('hit'), { headers: auth(elsewhere) }, 403],
      ['expired token', path('hit'), { headers: auth(expired) }, 401],
      ['entry past its TTL, no grace', path('short'), { headers: auth(reader) }, 404],
      ['unknown query parameter', `${path('hit')}?ttl=5`, { headers: auth(reader) }, 400],
      ['percent-encoded key', `/api/v1/cache/${ns}/%68it`, { headers: auth(reader) }, 200],
      ['encoded separator', `/api/v1/cache/${ns}/a%2Fb`, { headers: auth(reader) }, 400],
      ['invalid namespace', '/api/v1/cache/bad!ns/hit', { headers: auth(admin) }, 400],
      [
        'strong read of a stale entry',
        path('graced'),
        { headers: { ...auth(reader), 'Cache-Control': 'no-cache' } },
        404,
      ],
      ['lease preference on a fresh hit', path('hit'), { headers: { ...auth(reader), Prefer: 'lease' } }, 200],
      ['HEAD', path('hit'), { method: 'HEAD', headers: auth(reader) }, 200],
    ];
    for (const [name, target, init, status] of cases) {
      const before = fast.fastAnswers;
      const a = await same(fast, full, target, init);
      expect({ name, status: a.status, fast: fast.fastAnswers - before }).toEqual({ name, status, fast: 0 });
    }
  });

  it('request targets a URL parser rewrites (a backslash, braces, a fragment) are left to the full path', async () => {
    const headers = { Authorization: `Bearer ${reader}` };
    for (const target of [`/api/v1/cache/${ns}/a\\b`, `/api/v1/cache/${ns}/{hit}`, `${path('hit')}#frag`]) {
      const before = fast.fastAnswers;
      const a = await rawGet(fast.origin.url, target, headers);
      const b = await rawGet(full.origin.url, target, headers);
      delete a.headers['x-request-id'];
      delete b.headers['x-request-id'];
      expect({ target, ...a }).toEqual({ target, ...b });
      expect(fast.fastAnswers).toBe(before);
    }
  });

  it('counts and logs every request the same way on both paths', async () => {
    const counted = countedSince(baseline.fast.counts, await getCounts(fast, admin));
    expect(counted).toEqual(countedSince(baseline.full.counts, await getCounts(full, admin)));
    expect(counted).toContainEqual([expect.stringContaining('result="hit"'), expect.any(Number)]);
    const records = getRecords(fast, baseline.fast.records);
    expect(records.length).toBeGreaterThan(10);
    expect(records).toEqual(getRecords(full, baseline.full.records));
    expect(records).toContainEqual(expect.objectContaining({ operation: 'get', result: 'hit', status: 200 }));
    expect(records).toContainEqual(expect.objectContaining({ result: 'refused', status: 403 }));
  });
});

describe('origin GET fast path while Redis is down', () => {
  const ns = 'fastdown';
  const path = (key: string) => `/api/v1/cache/${ns}/${key}`;
  let dir: string;
  let fast: Side;
  let full: Side;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'strata-fast-read-'));
    const redis = await startRedis({ dir });
    const env = { REDIS_URL: redis.url };
    [fast, full] = await Promise.all([startSide(env, true), startSide(env, false)]);
    const put = await fetch(`${fast.origin.url}${path('kept')}?ttl=3600`, { method: 'PUT', body: 'kept' });
    expect(put.status).toBe(200);
    // Each origin's fallback tier keeps a clean copy of what it read.
    const warm = await same(fast, full, path('kept'));
    expect(warm.headers['x-cache']).toBe('HIT');
    await redis.stop();
  });
  afterAll(async () => {
    await Promise.all([fast?.origin.close(), full?.origin.close()]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a degraded answer from the fallback tier and a store failure are handed over and answered the same way', async () => {
    const before = fast.fastAnswers;
    const degraded = await same(fast, full, path('kept'));
    expect(degraded.status).toBe(200);
    expect(degraded.headers).toMatchObject({ 'x-cache': 'STALE', 'x-cache-degraded': '1' });
    const failed = await same(fast, full, path('never-read'));
    expect(failed.status).toBe(503);
    expect(JSON.parse(failed.body)).toMatchObject({ error: { code: 'CACHE_005' } });
    expect(fast.fastAnswers).toBe(before);
  });
});

describe('origin GET fast path: a handed-over read is timed from its store read', () => {
  const ns = 'fasttimed';
  const path = (key: string) => `/api/v1/cache/${ns}/${key}`;
  const storeReadMs = 150;
  let side: Side;

  beforeAll(async () => {
    side = await startSide({ REDIS_URL: inject('redisUrl') }, true);
    const res = await fetch(`${side.origin.url}${path('graced')}`, {
      method: 'PUT',
      body: 'g',
      headers: { 'Cache-Control': 'max-age=1, stale-while-revalidate=300' },
    });
    expect(res.status).toBe(200);
    await eventually(
      'the graced entry to turn stale',
      async () => (await fetch(`${side.origin.url}${path('graced')}`)).headers.get('X-Cache') === 'STALE',
      5_000,
      50,
    );
  });
  afterAll(async () => {
    await side?.origin.close();
  });

  it('the duration a handed-over miss or STALE read records includes the store read the fast path made', async () => {
    // Every store read from here on takes at least `storeReadMs`, so a duration below it left the read out.
    const { service } = side.origin;
    const read = service.get.bind(service);
    service.get = async (...args) => {
      await new Promise((resolve) => setTimeout(resolve, storeReadMs));
      return await read(...args);
    };
    const cases: [string, number][] = [
      ['absent', 404],
      ['graced', 200],
    ];
    for (const [key, status] of cases) {
      const before = side.fastAnswers;
      const requestId = `timed-${key}`;
      const res = await fetch(`${side.origin.url}${path(key)}`, { headers: { 'X-Request-Id': requestId } });
      await res.arrayBuffer();
      expect([key, res.status, side.fastAnswers - before]).toEqual([key, status, 0]);
      const record = await eventually('the request-log record', () =>
        side.log.records().find((r) => r.request_id === requestId),
      );
      expect([key, record.duration_ms]).toEqual([key, expect.any(Number)]);
      expect(record.duration_ms as number).toBeGreaterThanOrEqual(storeReadMs);
    }
  });
});
