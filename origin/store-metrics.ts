import type { Cluster, Redis } from 'ioredis';
import { Gauge, type Registry } from 'prom-client';
import { evictionCounter } from '../platform/node/eviction-metrics.ts';
import type { TieredStore } from './store/store.ts';

/*
 * Store-side gauges of the origin's /metrics, read at scrape time: sizes of
 * the in-memory tiers and the health of each Redis node. Registered by
 * `observability.ts`.
 */

/**
 * Size of the origin's in-memory tiers, read at scrape time:
 * `strata_store_bytes` (embedded memory store, bytes counted against
 * `MEMORY_STORE_MAX_BYTES`), `strata_local_tier_entries{kind}` (`clean`
 * copies and `dirty` changes of the fallback tier in front of Redis) and
 * `strata_local_tier_dirty_bytes` (against `LOCAL_TIER_MAX_DIRTY_BYTES`),
 * and the evictions of each tier by `policy` and `reason` (`evict`: for the
 * byte budget; `expire`: found past its TTL) (`strata_store_evictions_total`,
 * `strata_local_tier_evictions_total`).
 */
export function registerTierMetrics(registry: Registry, store: TieredStore): void {
  const { usage } = store;
  if (usage) {
    new Gauge({
      name: 'strata_store_bytes',
      help: 'Bytes held by the embedded memory store (against MEMORY_STORE_MAX_BYTES).',
      registers: [registry],
      collect() {
        this.set(usage.bytes);
      },
    });
    evictionCounter(
      registry,
      'strata_store_evictions_total',
      'Entries the embedded memory store evicted, by policy and reason (evict: byte budget; expire: TTL).',
      usage.policy ?? 'unknown',
      () => usage.evictionsByReason ?? { evict: usage.evictions, expire: 0 },
    );
  }
  const local = store.resilience?.local;
  if (!local) return;
  evictionCounter(
    registry,
    'strata_local_tier_evictions_total',
    "Clean copies the origin's fallback tier evicted, by policy and reason (evict: byte budget; expire: TTL).",
    local.policy,
    () => local.evictionsByReason,
  );
  new Gauge({
    name: 'strata_local_tier_entries',
    help: "Entries in the origin's fallback tier: clean copies and dirty changes waiting for Redis.",
    labelNames: ['kind'] as const,
    registers: [registry],
    collect() {
      this.set({ kind: 'clean' }, local.cleanCount);
      this.set({ kind: 'dirty' }, local.dirtyCount);
    },
  });
  new Gauge({
    name: 'strata_local_tier_dirty_bytes',
    help: 'Bytes of dirty changes in the fallback tier (against LOCAL_TIER_MAX_DIRTY_BYTES).',
    registers: [registry],
    collect() {
      this.set(local.dirtyBytes);
    },
  });
}

/**
 * `strata_redis_node_up{node, role}`: 1 while a Redis node is healthy, else 0.
 * Standalone: the origin's own connection (`role` `standalone`, 1 while it
 * is ready). Cluster: the cluster's own view, `CLUSTER NODES` asked at scrape
 * time — every master and replica, 0 when flagged `fail`/`fail?` or its link
 * is down; when the origin cannot ask within 500 ms, every node it knew
 * reads 0 (the origin cannot reach the cluster).
 */
export function registerRedisNodeMetrics(registry: Registry, client: Redis | Cluster): void {
  let known: { node: string; role: string }[] = [];
  new Gauge({
    name: 'strata_redis_node_up',
    help: 'Redis nodes: 1 healthy (standalone: connection ready; cluster: CLUSTER NODES says so), by node and role.',
    labelNames: ['node', 'role'] as const,
    registers: [registry],
    async collect() {
      if (!client.isCluster) {
        const redis = client as Redis;
        this.reset();
        const node = `${redis.options.host ?? '127.0.0.1'}:${redis.options.port ?? 6379}`;
        this.set({ node, role: 'standalone' }, redis.status === 'ready' ? 1 : 0);
        return;
      }
      let text: string | undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        text = await Promise.race([
          (client as Cluster).cluster('NODES') as Promise<string>,
          new Promise<undefined>((resolve) => {
            timer = setTimeout(() => resolve(undefined), 500);
          }),
        ]);
      } catch {
        text = undefined;
      } finally {
        clearTimeout(timer);
      }
      this.reset();
      if (text === undefined) {
        for (const n of known) this.set(n, 0);
        return;
      }
      const nodes = parseClusterNodes(text);
      known = nodes.map(({ node, role }) => ({ node, role }));
      for (const n of nodes) this.set({ node: n.node, role: n.role }, n.up ? 1 : 0);
    },
  });
}

/**
 * Parses `CLUSTER NODES` (https://redis.io/docs/latest/commands/cluster-nodes/):
 * `<id> <ip:port@cport[,hostname]> <flags> <master> <ping> <pong> <epoch> <link-state> <slot>…`.
 * A node is up unless flagged `fail` / `fail?` or its link is `disconnected`.
 */
export function parseClusterNodes(text: string): { node: string; role: 'master' | 'replica'; up: boolean }[] {
  const out: { node: string; role: 'master' | 'replica'; up: boolean }[] = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(' ');
    if (f.length < 8) continue;
    const flags = f[2]!.split(',');
    out.push({
      node: f[1]!.split('@')[0]!,
      role: flags.includes('master') ? 'master' : 'replica',
      up: !flags.some((x) => x.startsWith('fail') || x === 'noaddr') && f[7] === 'connected',
    });
  }
  return out;
}
