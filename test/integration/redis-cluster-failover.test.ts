import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import { defaultPurgeLogKey } from '../../origin/purge/redis-stream-bus.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { redisClusterStore } from '../../origin/store/redis-cluster.ts';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/** Margin over `cluster-node-timeout` for election, slot-map refresh and in-flight timeouts, ms. */
const errorWindowMarginMs = 3_000;

describe('edge → origin → Redis Cluster while a master is killed', () => {
  let cluster: RunningRedisCluster;
  let origin: RunningOrigin;
  let edge: RunningEdge;

  beforeAll(async () => {
    cluster = await startRedisCluster({
      dir: join(inject('serversDir'), `cluster-${process.pid}-failover`),
      nodeTimeoutMs: 2_000,
    });
    origin = await originFor({
      REDIS_CLUSTER_NODES: cluster.env.REDIS_CLUSTER_NODES!,
      BREAKER_RECOVERY_INTERVAL_MS: '200',
      LOG_LEVEL: 'silent',
    });
    // A short edge TTL sends more reads on to the origin, so some meet the dead master.
    edge = await edgeFor(origin.url, { LOG_LEVEL: 'silent', EDGE_MAX_TTL_SECONDS: '1' });
    await eventually('origin ready', async () => (await fetch(`${origin.url}/ready`)).status === 200, 15_000, 50);
  });

  afterAll(async () => {
    await edge?.close();
    await origin?.close();
    await cluster?.stop();
  });

  it('promotes the replica, confines errors to the failover window, and keeps every acknowledged write', async () => {
    const ns = 'failover';
    const lastAcked = new Map<string, string>();
    const errors: { atMs: number; what: string }[] = [];
    const degradedAtMs: number[] = [];
    let operations = 0;
    let running = true;

    // Each worker owns its keys and writes them in sequence, so "the last acknowledged value" is well defined.
    const worker = async (w: number) => {
      for (let seq = 0; running; seq++) {
        const key = `w${w}-k${seq % 25}`;
        const target = `${edge.url}/api/v1/cache/${ns}/${key}`;
        const write = seq % 2 === 0;
        const value = `${w}-${seq}`;
        try {
          const res = write
            ? await fetch(target, { method: 'PUT', body: value, signal: AbortSignal.timeout(5_000) })
            : await fetch(target, { signal: AbortSignal.timeout(5_000) });
          await res.arrayBuffer();
          operations += 1;
          if (res.headers.get('X-Cache-Degraded') === '1') degradedAtMs.push(Date.now());
          if (write && res.status === 200) lastAcked.set(key, value);
          else if (res.status >= 500) errors.push({ atMs: Date.now(), what: `${write ? 'PUT' : 'GET'} ${res.status}` });
        } catch (error) {
          errors.push({ atMs: Date.now(), what: String(error) });
        }
      }
    };
    const load = Array.from({ length: 4 }, (_, w) => worker(w));

    await eventually('steady load', () => operations >= 200, 15_000, 20);
    const before = await cluster.nodes();
    // The master holding the region's purge log: the hardest case, since every write's purge is appended there.
    const logSlot = calculateSlot(defaultPurgeLogKey);
    const victim = before.find(
      (n) => n.role === 'master' && (n.slots ?? []).some(([first, last]) => logSlot >= first && logSlot <= last),
    )!;
    const heir = before.find((n) => n.role === 'replica' && n.masterId === victim.id)!;
    expect(errors).toEqual([]);

    const killedAtMs = Date.now();
    await cluster.killNode(victim.port);
    await eventually(
      'the replica to be promoted',
      async () => {
        const now = await cluster.nodes();
        const promoted = now.find((n) => n.id === heir.id);
        return promoted?.role === 'master' && (promoted.slots?.length ?? 0) > 0;
      },
      20_000,
      100,
    );
    const promotedAfterMs = Date.now() - killedAtMs;
    // Keep the load on after the promotion, then stop it.
    const opsAtPromotion = operations;
    await eventually('load after the promotion', () => operations >= opsAtPromotion + 200, 15_000, 20);
    running = false;
    await Promise.all(load);

    const lastErrorAfterMs = errors.length > 0 ? Math.max(...errors.map((e) => e.atMs)) - killedAtMs : 0;
    console.info(
      `failover: promoted after ${promotedAfterMs} ms; ${operations} operations, ${errors.length} errors ` +
        `(last ${lastErrorAfterMs} ms after the kill), ${degradedAtMs.length} degraded answers ` +
        `(last ${degradedAtMs.length > 0 ? Math.max(...degradedAtMs) - killedAtMs : 0} ms after the kill)`,
    );
    for (const e of errors) expect(e.atMs).toBeGreaterThanOrEqual(killedAtMs);
    expect(lastErrorAfterMs).toBeLessThanOrEqual(cluster.nodeTimeoutMs + errorWindowMarginMs);
    // Degraded (local-tier) answers, too, happen only between the kill and shortly after the promotion,
    // once the write-back rounds (every 200 ms here) have settled what the local tier accepted.
    for (const at of degradedAtMs) {
      expect(at).toBeGreaterThanOrEqual(killedAtMs);
      expect(at - killedAtMs).toBeLessThanOrEqual(promotedAfterMs + 2_000);
    }

    // Writes accepted by the local tier during the failover are written back...
    const store = origin.store;
    console.info(`failover: origin fallback stats ${JSON.stringify(store.resilience?.stats)}`);
    await eventually(
      'write-back to finish',
      () => store.health().dirty === 0 && store.health().breaker === 'closed',
      20_000,
      50,
    );

    // ...and every acknowledged write is in Redis, read by a client that shares nothing with the origin.
    const reader = redisClusterStore({ nodes: cluster.env.REDIS_CLUSTER_NODES!.split(',') });
    try {
      const found = await reader.getMany(ns, [...lastAcked.keys()]);
      const wrong = [...lastAcked].filter(([key, value]) => {
        const entry = found.get(key);
        return !entry || new TextDecoder().decode(entry.value) !== value;
      });
      expect(lastAcked.size).toBe(100);
      expect(wrong).toEqual([]);
    } finally {
      await reader.close();
    }
  });
});
