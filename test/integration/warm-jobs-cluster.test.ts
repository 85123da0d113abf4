import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import type { Cluster } from 'ioredis';
import { afterAll, afterEach, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningOrigin } from '../../origin/server.ts';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';
import type { WarmJob } from '../../shared/warm.ts';
import { originFor } from '../support/stack.ts';
import {
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

// Warm jobs keep their state in the store so any replica answers: on Redis
// Cluster a job's hash and its failed-item list must share a slot (one
// script ends a job over both), and the start-up lease must hold across
// replicas that reach different masters.

let cluster: RunningRedisCluster;
let a: RunningOrigin;
let b: RunningOrigin;
const clusterEnv = () => ({ REDIS_CLUSTER_NODES: cluster.env.REDIS_CLUSTER_NODES! });

beforeAll(async () => {
  cluster = await startRedisCluster({ dir: join(inject('serversDir'), `cluster-${process.pid}-warm-jobs`) });
  a = await originFor(clusterEnv());
  b = await originFor(clusterEnv());
}, 60_000);
afterAll(async () => {
  await b?.close();
  await a?.close();
  await cluster?.stop();
});

const cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('warm jobs on Redis Cluster', () => {
  it('a file job of 5,000 entries loads on one replica, with progress and failed items read from the other', async () => {
    const ns = `cwarm${Date.now().toString(36)}`;
    const count = 5_000;
    const { lines, valueBytes } = jsonlEntries(count);
    // Two bad lines: listed as failed items, stored beside the job's hash.
    lines.splice(10, 0, '{"key":"bad","value":"x","ttl":-1}', 'not json');
    const id = await started(await startWarm(a.url, { namespace: ns, format: 'jsonl' }, `${lines.join('\n')}\n`));
    const { seen, last } = await watched(b.url, id, 'the job to finish, read from the other replica');
    for (let i = 1; i < seen.length; i++) expect(seen[i]!.done).toBeGreaterThanOrEqual(seen[i - 1]!.done);
    expect(last).toMatchObject({ state: 'done', total: count + 2, done: count, failed: 2, bytes: valueBytes });
    expect(last.failed_items.map((f) => f.line)).toEqual([11, 12]);
    // Entries spread over every master; read back through the other replica.
    for (const i of [0, 1, 2_345, count - 1]) {
      const res = await fetch(`${b.url}/api/v1/cache/${ns}/item:${i}`);
      expect(res.status).toBe(200);
      expect(await res.text()).toBe(entryValue(i));
    }
    // The job's keys share one slot, and the job is listed on both replicas' dashboards.
    const client = a.store.redisClient as Cluster;
    const jobKeys = [`strata:job:{${id}}`, `strata:job:{${id}}:failed`];
    expect(new Set(jobKeys.map((k) => calculateSlot(k))).size).toBe(1);
    expect(await client.exists(...jobKeys)).toBe(2);
    for (const o of [a, b]) {
      const stats = (await (await fetch(`${o.url}/api/v1/stats`)).json()) as { warm_jobs: WarmJob[] };
      expect(stats.warm_jobs.find((j) => j.id === id)).toMatchObject({ state: 'done', done: count });
    }
  }, 180_000);

  it('a URL job cancelled through the other replica stops where it runs, with no fetch after it', async () => {
    const { id, source, held } = await heldUrlJob(clusterEnv(), cleanups, {
      keys: 200,
      concurrency: 2,
      namespace: `cwarmcancel${Date.now().toString(36)}`,
    });
    expect((await job(b.url, id)).state).toBe('running');
    expect((await fetch(`${b.url}/api/v1/jobs/${id}`, { method: 'DELETE' })).status).toBe(200);
    const last = await finished(b.url, id);
    expect(last).toMatchObject({ state: 'cancelled', done: 0 });
    for (const r of held) r.destroy();
    expect(source.requests.length).toBe(2);
  });

  it('start-up warming runs once per region on Cluster: one replica takes the lease, the other waits for its mark', async () => {
    const { first, second, source, release } = await startupWarming(clusterEnv(), cleanups, {
      namespace: 'cwarmstart',
      keys: ['a', 'b', 'c'],
    });
    const states: string[] = [];
    for (const o of [first, second]) {
      const res = await fetch(`${o.url}/ready`);
      expect(res.status).toBe(503);
      const body = (await res.json()) as { error: { details: { warming: { state: string } } } };
      states.push(body.error.details.warming.state);
    }
    expect(states.sort()).toEqual(['running', 'waiting']);
    await release();
    expect(source.requests.sort()).toEqual(['/items/a', '/items/b', '/items/c']);
    expect(await (await fetch(`${second.url}/api/v1/cache/cwarmstart/c`)).text()).toBe('warm c');
  });
});
