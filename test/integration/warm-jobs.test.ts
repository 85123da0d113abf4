import { writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningOrigin } from '../../origin/server.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { errorEnvelopeSchema } from '../../shared/errors.ts';
import type { WarmJob } from '../../shared/warm.ts';
import { hs256Issuer } from '../support/jwt.ts';
import { cleanEnv, spawnEntry } from '../support/spawn-entry.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';
import {
  dataSource,
  entryValue,
  finished,
  heldUrlJob,
  job,
  jsonlEntries,
  started,
  startupWarming,
  startWarm,
  watched,
} from '../support/warm.ts';

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'strata-warm-test-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const expectError = async (res: Response, status: number, code: string) => {
  expect(res.status).toBe(status);
  expect(errorEnvelopeSchema.parse(await res.json()).error.code).toBe(code);
};

const stores: [string, () => Record<string, string>][] = [
  ['memory', () => ({})],
  ['Redis', () => ({ REDIS_URL: inject('redisUrl') })],
];

describe.each(stores)('warm jobs on the %s store', (_name, storeEnv) => {
  it('a file of 100,000 entries loads completely, with progress that only grows and ends exact', async () => {
    const origin = await originFor(storeEnv());
    cleanups.push(() => origin.close());
    const ns = `warm${Date.now().toString(36)}`;
    const count = 100_000;
    const { lines, valueBytes } = jsonlEntries(count);
    const file = join(dir, `entries-${ns}.jsonl`);
    writeFileSync(file, `${lines.join('\n')}\n`);
    const id = await started(
      await startWarm(origin.url, { namespace: ns, format: 'jsonl' }, new Uint8Array(await readFile(file))),
    );
    const { seen, last } = await watched(origin.url, id, 'the 100,000 entries to load');
    for (let i = 1; i < seen.length; i++) {
      expect(seen[i]!.done).toBeGreaterThanOrEqual(seen[i - 1]!.done);
      expect(seen[i]!.input_bytes).toBeGreaterThanOrEqual(seen[i - 1]!.input_bytes);
    }
    expect(last).toMatchObject({ state: 'done', total: count, done: count, failed: 0, bytes: valueBytes });
    expect(last.input_bytes).toBe(last.input_total_bytes);
    expect(last.failed_items).toEqual([]);
    expect(last.eta_seconds).toBeNull();
    for (const i of [0, 1, 54_321, count - 1]) {
      const res = await fetch(`${origin.url}/api/v1/cache/${ns}/item:${i}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(entryValue(i));
    }
    const metrics = await (await fetch(`${origin.url}/metrics`)).text();
    expect(metrics).toMatch(new RegExp(`strata_warm_items_total\\{result="loaded"[^}]*\\} ${count}`));
    // The dashboard's numbers list the job.
    const stats = (await (await fetch(`${origin.url}/api/v1/stats`)).json()) as { warm_jobs: WarmJob[] };
    expect(stats.warm_jobs.find((j) => j.id === id)).toMatchObject({ namespace: ns, state: 'done', done: count });
  }, 180_000);

  it('a CSV file loads with tags and base64 values, and bad lines are listed as failed items, not skipped', async () => {
    const origin = await originFor(storeEnv());
    cleanups.push(() => origin.close());
    const ns = `warmcsv${Date.now().toString(36)}`;
    const csv = [
      'key,value,encoding,ttl,tags',
      'a,hello,text,600,"t1,t2"',
      `b,${Buffer.from([0, 1, 2, 255]).toString('base64')},base64,600,`,
      'c,not base64!,base64,600,',
      ',no key,text,600,',
      'd,bad ttl,text,-5,',
    ].join('\n');
    const id = await started(await startWarm(origin.url, { namespace: ns, format: 'csv' }, csv));
    const last = await finished(origin.url, id);
    expect(last).toMatchObject({ state: 'done', total: 5, done: 2, failed: 3 });
    expect(last.failed_items.map((f) => f.line)).toEqual([3, 4, 5]);
    expect(last.failed_items[0]).toMatchObject({ key: 'c', reason: expect.stringContaining('base64') });
    expect(await (await fetch(`${origin.url}/api/v1/cache/${ns}/a`)).text()).toBe('hello');
    const b = new Uint8Array(await (await fetch(`${origin.url}/api/v1/cache/${ns}/b`)).arrayBuffer());
    expect([...b]).toEqual([0, 1, 2, 255]);
    const purge = await fetch(`${origin.url}/api/v1/purge`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ namespace: ns, tags: ['t2'] }),
    });
    expect(purge.status).toBe(200);
    expect((await fetch(`${origin.url}/api/v1/cache/${ns}/a`)).status).toBe(404);
  });

  it('a URL source retries failing fetches with back-off, then reports the ones that never answered as failed items', async () => {
    const attempts = new Map<string, number>();
    const source = await dataSource((key, _req, res) => {
      const n = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, n);
      if (key.startsWith('ok')) res.writeHead(200, { 'Content-Type': 'application/json' }).end(`{"v":"${key}"}`);
      else if (key.startsWith('flaky') && n > 2) res.writeHead(200).end(`recovered ${key}`);
      else if (key === 'gone') res.writeHead(404).end();
      else res.writeHead(503).end();
    });
    cleanups.push(() => source.close());
    const origin = await originFor({ ...storeEnv(), WARM_ALLOWED_ORIGINS: source.origin });
    cleanups.push(() => origin.close());
    const ns = `warmurl${Date.now().toString(36)}`;
    const keys = ['ok:1', 'ok:2', 'flaky:1', 'broken:1', 'gone'].join('\n');
    const id = await started(
      await startWarm(
        origin.url,
        { namespace: ns, format: 'keys', url_template: `${source.origin}/items/{key}`, retries: '2', concurrency: '2' },
        keys,
      ),
    );
    const last = await finished(origin.url, id);
    expect(last).toMatchObject({ state: 'done', total: 5, done: 3, failed: 2 });
    expect(attempts.get('flaky:1')).toBe(3);
    // Three attempts (the first and two retries), then reported; a 404 is not retried.
    expect(attempts.get('broken:1')).toBe(3);
    expect(attempts.get('gone')).toBe(1);
    expect(last.failed_items).toEqual(
      expect.arrayContaining([
        { key: 'broken:1', line: null, reason: 'HTTP 503 after 3 attempts' },
        { key: 'gone', line: null, reason: 'HTTP 404' },
      ]),
    );
    const ok = await fetch(`${origin.url}/api/v1/cache/${ns}/ok:1`);
    expect(await ok.text()).toBe('{"v":"ok:1"}');
    expect(ok.headers.get('content-type')).toBe('application/json');
    expect(await (await fetch(`${origin.url}/api/v1/cache/${ns}/flaky:1`)).text()).toBe('recovered flaky:1');
  });

  it('a host outside WARM_ALLOWED_ORIGINS is refused before any request, also as a redirect target', async () => {
    const outside = await dataSource((_key, _req, res) => res.writeHead(200).end('internal secret'));
    cleanups.push(() => outside.close());
    const allowed = await dataSource((key, _req, res) => {
      if (key === 'hop') res.writeHead(302, { Location: `${outside.origin}/items/secret` }).end();
      else res.writeHead(200).end(`value of ${key}`);
    });
    cleanups.push(() => allowed.close());
    const origin = await originFor({ ...storeEnv(), WARM_ALLOWED_ORIGINS: allowed.origin });
    cleanups.push(() => origin.close());
    const ns = `warmdeny${Date.now().toString(36)}`;
    const refused = await startWarm(
      origin.url,
      { namespace: ns, format: 'keys', url_template: `${outside.origin}/items/{key}` },
      'a\nb',
    );
    await expectError(refused, 400, 'CACHE_004');
    // Same host, another port: a different origin.
    const port = new URL(outside.origin).port;
    await expectError(
      await startWarm(
        origin.url,
        { namespace: ns, format: 'keys', url_template: `http://localhost:${port}/items/{key}` },
        'a',
      ),
      400,
      'CACHE_004',
    );
    await expectError(
      await startWarm(origin.url, { namespace: ns, format: 'keys', url_template: 'http://{key}.example/x' }, 'a'),
      400,
      'CACHE_004',
    );
    const id = await started(
      await startWarm(
        origin.url,
        { namespace: ns, format: 'keys', url_template: `${allowed.origin}/items/{key}` },
        'fine\nhop',
      ),
    );
    const last = await finished(origin.url, id);
    expect(last).toMatchObject({ done: 1, failed: 1 });
    expect(last.failed_items[0]).toMatchObject({ key: 'hop', reason: expect.stringContaining('WARM_ALLOWED_ORIGINS') });
    expect(outside.requests).toEqual([]);
  });

  it('cancel stops a job: no fetch after it, and the job ends cancelled', async () => {
    const {
      id,
      namespace: ns,
      runner: origin,
      source,
      held,
    } = await heldUrlJob(storeEnv(), cleanups, {
      keys: 500,
      concurrency: 2,
      namespace: `warmcancel${Date.now().toString(36)}`,
    });
    // The hit ratio while warming: one miss and one hit in the namespace since the job started.
    expect((await fetch(`${origin.url}/api/v1/cache/${ns}/k0`)).status).toBe(404);
    expect((await fetch(`${origin.url}/api/v1/cache/${ns}/other`, { method: 'PUT', body: 'x' })).status).toBe(200);
    expect((await fetch(`${origin.url}/api/v1/cache/${ns}/other`)).status).toBe(200);
    await eventually('the hit ratio while warming', async () => (await job(origin.url, id)).hit_ratio === 0.5);
    expect(await (await fetch(`${origin.url}/metrics`)).text()).toMatch(
      new RegExp(`strata_warm_hit_ratio\\{namespace="${ns}"[^}]*\\} 0.5`),
    );
    const res = await fetch(`${origin.url}/api/v1/jobs/${id}`, { method: 'DELETE' });
    expect(res.status).toBe(200);
    const last = await finished(origin.url, id);
    expect(last.state).toBe('cancelled');
    expect(last.done).toBe(0);
    for (const r of held) r.destroy();
    expect(source.requests.length).toBe(2);
    await expectError(await fetch(`${origin.url}/api/v1/jobs/${crypto.randomUUID()}`), 404, 'CACHE_001');
    await expectError(await fetch(`${origin.url}/api/v1/jobs/not-a-uuid`), 400, 'CACHE_004');
  });
});

describe('warm job sources and grants', () => {
  it("a trace source loads the trace's most requested keys from the URL template, most requested first", async () => {
    const source = await dataSource((key, _req, res) => res.writeHead(200).end(`block ${key}`));
    cleanups.push(() => source.close());
    const origin = await originFor({ WARM_ALLOWED_ORIGINS: source.origin });
    cleanups.push(() => origin.close());
    // lbn 300 is asked for three times, 200 twice (a read and a write), 100 once.
    const trace = [
      'version,time,op,size,lbn',
      '1,0,28,4096,100',
      '1,0,28,4096,300',
      '1,1,2a,4096,200',
      '1,1,28,4096,300',
      '1,2,28,4096,200',
      '1,2,28,4096,300',
    ].join('\n');
    const id = await started(
      await startWarm(
        origin.url,
        {
          namespace: 'warmtrace',
          format: 'trace',
          top: '2',
          concurrency: '1',
          url_template: `${source.origin}/items/{key}`,
        },
        trace,
      ),
    );
    expect(await finished(origin.url, id)).toMatchObject({ state: 'done', total: 2, done: 2, failed: 0 });
    expect(source.requests).toEqual(['/items/300', '/items/200']);
    expect(await (await fetch(`${origin.url}/api/v1/cache/warmtrace/300`)).text()).toBe('block 300');
    expect((await fetch(`${origin.url}/api/v1/cache/warmtrace/100`)).status).toBe(404);
  });

  it('starting, reading and cancelling a job need cache:write in its namespace', async () => {
    const issuer = hs256Issuer();
    const origin = await originFor(issuer.env);
    cleanups.push(() => origin.close());
    const writer = { Authorization: `Bearer ${await issuer.sign({ scope: ['cache:write'], ns: ['warmauth'] })}` };
    const reader = { Authorization: `Bearer ${await issuer.sign({ scope: ['cache:read'], ns: ['warmauth'] })}` };
    const elsewhere = { Authorization: `Bearer ${await issuer.sign({ scope: ['cache:write'], ns: ['other'] })}` };
    const post = (headers: Record<string, string>) =>
      fetch(`${origin.url}/api/v1/jobs/warm?namespace=warmauth&format=jsonl`, {
        method: 'POST',
        headers,
        body: '{"key":"a","value":"A"}',
      });
    await expectError(await post({}), 401, 'AUTH_001');
    await expectError(await post(reader), 403, 'AUTH_002');
    await expectError(await post(elsewhere), 403, 'AUTH_002');
    const res = await post(writer);
    const id = await started(res);
    await expectError(await fetch(`${origin.url}/api/v1/jobs/${id}`, { headers: elsewhere }), 403, 'AUTH_002');
    await expectError(
      await fetch(`${origin.url}/api/v1/jobs/${id}`, { method: 'DELETE', headers: reader }),
      403,
      'AUTH_002',
    );
    expect((await fetch(`${origin.url}/api/v1/jobs/${id}`, { headers: writer })).status).toBe(200);
  });
});

describe('npm run warm', () => {
  it('follows the job to its end, lists the failed items and exits 1 when any failed, 0 when none did', async () => {
    const origin = await originFor({ REDIS_URL: inject('redisUrl') });
    cleanups.push(() => origin.close());
    const ns = `warmcli${Date.now().toString(36)}`;
    const good = join(dir, `${ns}.jsonl`);
    writeFileSync(good, `${JSON.stringify({ key: 'a', value: 'A' })}\n${JSON.stringify({ key: 'b', value: 'B' })}\n`);
    const bad = join(dir, `${ns}.csv`);
    writeFileSync(bad, 'key,value,ttl\nc,C,60\nd,D,0\n');
    const run = async (file: string) => {
      const proc = spawnEntry('scripts/warm.ts', cleanEnv({ ORIGIN_URL: origin.url }), [
        '--file',
        file,
        '--namespace',
        ns,
      ]);
      return { code: await proc.exited, out: proc.stdout(), err: proc.stderr() };
    };
    const ok = await run(good);
    expect(ok.code, ok.err).toBe(0);
    expect(ok.out).toMatch(/^done: 2 loaded, 0 failed/m);
    const failed = await run(bad);
    expect(failed.code, failed.err).toBe(1);
    expect(failed.out).toMatch(/^done: 1 loaded, 1 failed/m);
    expect(failed.out).toMatch(/^failed d \(line 2\): ttl: /m);
    expect(await (await fetch(`${origin.url}/api/v1/cache/${ns}/c`)).text()).toBe('C');
  });
});

describe('warm jobs across replicas on Redis', () => {
  let replica: RunningOrigin;
  beforeAll(async () => {
    replica = await originFor({ REDIS_URL: inject('redisUrl') });
  });
  afterAll(async () => {
    await replica?.close();
  });

  it('a job whose origin was SIGKILLed is reported failed by another replica, never left running', async () => {
    const source = await dataSource(() => {});
    cleanups.push(() => source.close());
    const port = await freePort();
    const proc = spawnEntry(
      'origin/main.ts',
      cleanEnv({
        REDIS_URL: inject('redisUrl'),
        ORIGIN_PORT: String(port),
        LOG_LEVEL: 'silent',
        WARM_ALLOWED_ORIGINS: source.origin,
      }),
    );
    cleanups.push(async () => {
      if (proc.child.exitCode === null && proc.child.signalCode === null) proc.child.kill('SIGKILL');
      await proc.exited;
    });
    const url = `http://127.0.0.1:${port}`;
    await eventually('the child origin to listen', async () => (await fetch(`${url}/health`)).ok, 20_000, 50);
    const id = await started(
      await startWarm(
        url,
        { namespace: 'warmkill', format: 'keys', url_template: `${source.origin}/items/{key}` },
        'a\nb\nc',
      ),
    );
    await eventually('the child to fetch', () => source.requests.length > 0);
    expect((await job(replica.url, id)).state).toBe('running');
    proc.child.kill('SIGKILL');
    await proc.exited;
    const last = await finished(replica.url, id, 20_000);
    expect(last.state).toBe('failed');
    expect(last.error).toMatch(/no heartbeat/);
    // Recorded, not only reported: it stays failed.
    expect((await job(replica.url, id)).state).toBe('failed');
  });

  it('a job running on an origin that shuts down ends failed, saying so, at once', async () => {
    const source = await dataSource(() => {});
    cleanups.push(() => source.close());
    const runner = await originFor({ REDIS_URL: inject('redisUrl'), WARM_ALLOWED_ORIGINS: source.origin });
    const id = await started(
      await startWarm(
        runner.url,
        { namespace: 'warmshutdown', format: 'keys', url_template: `${source.origin}/items/{key}` },
        'a\nb',
      ),
    );
    await eventually('a fetch in flight', () => source.requests.length > 0);
    await runner.close();
    const last = await job(replica.url, id);
    expect(last.state).toBe('failed');
    expect(last.error).toMatch(/shut down/);
  });

  it('a cancel sent to another replica stops the job where it runs', async () => {
    const { id, held } = await heldUrlJob({ REDIS_URL: inject('redisUrl') }, cleanups, {
      keys: 3,
      concurrency: 1,
      namespace: 'warmremote',
    });
    expect((await fetch(`${replica.url}/api/v1/jobs/${id}`, { method: 'DELETE' })).status).toBe(200);
    const last = await finished(replica.url, id);
    expect(last.state).toBe('cancelled');
    for (const r of held) r.destroy();
  });
});

describe('start-up warming (WARM_ON_START)', () => {
  it('/ready answers 503 until the warming is done, and it runs once per region: the other replica waits', async () => {
    const { first, second, source, release } = await startupWarming({ REDIS_URL: inject('redisUrl') }, cleanups, {
      namespace: 'warmstart',
      keys: ['a', 'b'],
    });
    for (const o of [first, second]) {
      const res = await fetch(`${o.url}/ready`);
      expect(res.status).toBe(503);
      expect(await res.json()).toMatchObject({ error: { code: 'CACHE_005', details: { warming: {} } } });
    }
    await release();
    // Fetched once in the region: one replica ran it, the other waited for its mark.
    expect(source.requests.sort()).toEqual(['/items/a', '/items/b']);
    expect(await (await fetch(`${second.url}/api/v1/cache/warmstart/a`)).text()).toBe('warm a');
  });

  it("a file source on the origin's disk is loaded at start-up, and /ready shows the warming done", async () => {
    const file = join(dir, 'start.jsonl');
    writeFileSync(file, `${JSON.stringify({ key: 'x', value: 'X', tags: ['boot'] })}\n`);
    const origin = await originFor({
      WARM_ON_START: JSON.stringify([{ namespace: 'warmboot', format: 'jsonl', file }]),
    });
    cleanups.push(() => origin.close());
    const ready = await eventually('ready', async () => {
      const res = await fetch(`${origin.url}/ready`);
      return res.status === 200 ? ((await res.json()) as { warming: { state: string; jobs: string[] } }) : null;
    });
    expect(ready.warming).toMatchObject({ state: 'done', jobs: [expect.any(String)] });
    expect(await job(origin.url, ready.warming.jobs[0]!)).toMatchObject({ state: 'done', done: 1, failed: 0 });
    expect(await (await fetch(`${origin.url}/api/v1/cache/warmboot/x`)).text()).toBe('X');
  });

  it('/ready stops waiting at WARM_ON_START_DEADLINE_SECONDS', async () => {
    const source = await dataSource(() => {});
    cleanups.push(() => source.close());
    const origin = await originFor({
      WARM_ALLOWED_ORIGINS: source.origin,
      WARM_ON_START: JSON.stringify([
        { namespace: 'warmslow', format: 'keys', keys: ['a'], url_template: `${source.origin}/items/{key}` },
      ]),
      WARM_ON_START_DEADLINE_SECONDS: '1',
    });
    cleanups.push(() => origin.close());
    expect((await fetch(`${origin.url}/ready`)).status).toBe(503);
    await eventually('ready at the deadline', async () => (await fetch(`${origin.url}/ready`)).status === 200, 5_000);
  });

  it('a malformed WARM_ON_START stops the origin with one line naming it', async () => {
    await expect(originFor({ WARM_ON_START: '[{"namespace":"x"}]' })).rejects.toThrow(/WARM_ON_START/);
    await expect(originFor({ WARM_ALLOWED_ORIGINS: 'https://a.example/path' })).rejects.toThrow(/WARM_ALLOWED_ORIGINS/);
  });
});
