import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { lockKeys } from '../../origin/locks/redis.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * The resource a lock protects, checking fencing tokens (Kleppmann 2016):
 * it refuses any write whose token is not above the largest it has seen.
 */
class FencedResource {
  #largest = 0;
  readonly accepted: { token: number; value: string }[] = [];

  write(token: number, value: string): boolean {
    if (token <= this.#largest) return false;
    this.#largest = token;
    this.accepted.push({ token, value });
    return true;
  }
}

interface Grant {
  token: number;
  expires_at_ms: number;
}

describe('locks on a Redis Cluster whose master is killed while a lock is held', () => {
  let cluster: RunningRedisCluster;
  let origin: RunningOrigin;

  beforeAll(async () => {
    cluster = await startRedisCluster({
      dir: join(inject('serversDir'), `cluster-${process.pid}-lock-failover`),
      nodeTimeoutMs: 2_000,
    });
    origin = await originFor({
      REDIS_CLUSTER_NODES: cluster.env.REDIS_CLUSTER_NODES!,
      BREAKER_RECOVERY_INTERVAL_MS: '200',
      LOG_LEVEL: 'silent',
    });
    await eventually('origin ready', async () => (await fetch(`${origin.url}/ready`)).status === 200, 15_000, 50);
  });

  afterAll(async () => {
    await origin?.close();
    await cluster?.stop();
  });

  it('grants the lock twice across the failover, and the fencing token lets the resource refuse the stale holder', async () => {
    const ns = 'fence';
    const name = 'leader';
    const url = `${origin.url}/api/v1/locks/${ns}/${name}`;
    const slot = calculateSlot(lockKeys(ns, name)[0]);
    const before = await cluster.nodes();
    const victim = before.find((n) => n.role === 'master' && n.slots?.some(([a, b]) => slot >= a && slot <= b))!;
    const heir = before.find((n) => n.role === 'replica' && n.masterId === victim.id)!;
    expect(victim).toBeDefined();
    expect(heir).toBeDefined();

    // Make the grant miss the replica, the loss asynchronous replication allows: freeze the replica, cut
    // the master's replication link so nothing reaches it, grant, kill the master, then let the replica run.
    const master = new Redis(victim.port, '127.0.0.1', { retryStrategy: () => null });
    master.on('error', () => {});
    try {
      await cluster.killNode(heir.port, 'SIGSTOP');
      expect(await master.client('KILL', 'TYPE', 'replica')).toBeGreaterThan(0);
      const res = await fetch(`${url}?ttl=30`, { method: 'POST' });
      expect(res.status).toBe(200);
      const a = (await res.json()) as Grant;
      await cluster.killNode(victim.port);
      await cluster.killNode(heir.port, 'SIGCONT');

      const resource = new FencedResource();
      // Holder A wrote once before the crash.
      expect(resource.write(a.token, 'A before the failover')).toBe(true);

      await eventually(
        'the replica to be promoted',
        async () => {
          const promoted = (await cluster.nodes()).find((n) => n.id === heir.id);
          return promoted?.role === 'master' && (promoted.slots?.length ?? 0) > 0;
        },
        20_000,
        100,
      );
      // B asks for the lock; during the failover window the origin may answer CACHE_005, so it retries.
      const b = await eventually(
        'a grant after the failover',
        async () => {
          const r = await fetch(`${url}?ttl=30`, { method: 'POST' });
          // Thrown, so that a timeout names the last answer.
          if (r.status !== 200) throw new Error(`last answer ${r.status} ${await r.text()}`);
          return (await r.json()) as Grant;
        },
        30_000,
        100,
      );
      const grantedAtMs = Date.now();
      console.info(
        `lock failover: A token ${a.token} (lease to ${a.expires_at_ms}), B token ${b.token} granted ` +
          `${a.expires_at_ms - grantedAtMs} ms before A's lease would have ended`,
      );
      // The promoted replica never saw A's grant: the lock was granted again while A still believes it holds it.
      expect(grantedAtMs).toBeLessThan(a.expires_at_ms);
      // The fencing token still grows: from the replica's history, else from its clock.
      expect(b.token).toBeGreaterThan(a.token);

      expect(resource.write(b.token, 'B after the failover')).toBe(true);
      // A, paused or unaware of the failover, writes again with its old token: refused.
      expect(resource.write(a.token, 'A, stale')).toBe(false);
      expect(resource.accepted.map((w) => w.value)).toEqual(['A before the failover', 'B after the failover']);

      // A cannot renew or release B's grant.
      const renew = await fetch(`${url}/renew?ttl=30`, { method: 'PUT', headers: { 'X-Lock-Token': String(a.token) } });
      expect(renew.status).toBe(409);
      const release = await fetch(url, { method: 'DELETE', headers: { 'X-Lock-Token': String(b.token) } });
      expect(release.status).toBe(200);
    } finally {
      master.disconnect();
    }
  });
});
