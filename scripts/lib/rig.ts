/**
 * Starts the two-region rig (`npm run rig -- up`, and the cross-region
 * benchmarks): per region one Redis (or Redis Cluster), two origin replicas
 * sharing that region's purge log, and two Node edges (one per replica); one
 * shared Kafka with one listener per region, each advertising that region's
 * Toxiproxy proxy, so every connection a region's clients make to the broker
 * (bootstrap and after) crosses the proxy, which adds `latencyMs` each way.
 */
import { join, resolve } from 'node:path';
import { startKafka } from '../services/kafka.ts';
import { startRedis } from '../services/redis.ts';
import { startRedisCluster } from '../services/redis-cluster.ts';
import { latencyProxy, startToxiproxy } from '../services/toxiproxy.ts';
import type { RunningService } from '../services/types.ts';
import { signServiceToken } from './dev-auth.ts';
import { freePorts } from './ports.ts';
import { spawnServer, stopPid, waitFor } from './proc.ts';

const root = resolve(import.meta.dirname, '../..');

/** The rig's regions. */
export const rigRegions = ['a', 'b'] as const;
/** Milliseconds the rig adds in each direction on a region's path to the shared Kafka (40 ms round trip). */
export const rigLatencyMs = 20;
const issuer = 'strata-rig';

/** What `npm run rig -- up` records in `.rig/state.json` and prints. */
export interface RigState {
  /** Every process started, in start order (stopped in reverse). */
  pids: { name: string; pid: number }[];
  toxiproxyUrl: string;
  kafka: string;
  regions: Record<string, { redis: Record<string, string>; origins: string[]; edges: string[]; proxy: string }>;
  /** An admin token (HS256, 7 days) every origin and edge of the rig accepts. */
  token: string;
}

export interface RigOptions {
  /** Folder for data and logs (one sub-folder per server, one log per origin and edge). */
  readonly dir: string;
  /** Redis Cluster (6 nodes) per region instead of one Redis. */
  readonly cluster?: boolean;
  /** Processes outlive this one (the CLI); a benchmark keeps them attached. */
  readonly detached?: boolean;
  /** Extra environment for every origin (a benchmark's settings). */
  readonly originEnv?: Record<string, string>;
  /** Told after each process starts (the CLI records pids as it goes, so a failed start can be undone). */
  readonly onStarted?: (name: string, pid: number) => void;
}

/** A running rig. */
export interface Rig {
  readonly state: RigState;
  /** Each region's Redis (or Cluster), to stop or inspect one region's store. */
  readonly redis: Record<string, RunningService>;
  /** Stops every process, newest first. */
  stop(): Promise<void>;
}

/**
 * Starts the rig and waits until every origin and edge answers `/ready`.
 * On a failed start it stops what it started, then throws.
 * @throws when a server cannot start (Toxiproxy needs `go`; Kafka a JDK).
 */
export async function startRig(options: RigOptions): Promise<Rig> {
  const { dir, detached } = options;
  const started: { name: string; pid: number }[] = [];
  const record = (name: string, pids: readonly number[]) => {
    for (const pid of pids) {
      started.push({ name, pid });
      options.onStarted?.(name, pid);
    }
  };
  const stop = async () => {
    for (const p of [...started].reverse()) await stopPid(p.pid, 15_000);
  };
  try {
    const toxiproxy = await startToxiproxy({ dir: join(dir, 'toxiproxy'), detached });
    record('toxiproxy', toxiproxy.pids);
    const proxyPorts = await freePorts(rigRegions.length);
    const kafka = await startKafka({
      dir: join(dir, 'kafka'),
      detached,
      extraListeners: rigRegions.map((r, i) => ({
        name: `REGION_${r.toUpperCase()}`,
        protocol: 'PLAINTEXT' as const,
        advertised: `127.0.0.1:${proxyPorts[i]}`,
      })),
    });
    record('kafka', kafka.pids);
    const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
    const edgeToken = await signServiceToken(secret, { serviceId: 'strata-edge', issuer }, 7 * 24 * 3600);
    const token = await signServiceToken(secret, { serviceId: 'rig-admin', issuer }, 7 * 24 * 3600);
    const state: RigState = { pids: started, toxiproxyUrl: toxiproxy.url, kafka: kafka.brokers, regions: {}, token };
    const redisByRegion: Record<string, RunningService> = {};
    const spawn = (name: string, entry: string, env: NodeJS.ProcessEnv) => {
      const proc = spawnServer(process.execPath, [entry], {
        logFile: join(dir, `${name}.log`),
        detached,
        cwd: root,
        env,
      });
      record(name, [proc.pid]);
    };
    for (const [i, region] of rigRegions.entries()) {
      const listen = `127.0.0.1:${proxyPorts[i]}`;
      const proxy = `kafka-${region}`;
      const upstream = `127.0.0.1:${kafka.listenerPorts[`REGION_${region.toUpperCase()}`]}`;
      await latencyProxy(toxiproxy.client, proxy, listen, upstream, rigLatencyMs);
      const redisDir = join(dir, `redis-${region}`);
      const redis = options.cluster
        ? await startRedisCluster({ dir: redisDir, detached })
        : await startRedis({ dir: redisDir, detached });
      record(`redis-${region}`, redis.pids);
      redisByRegion[region] = redis;
      const [o1, o2, e1, e2] = await freePorts(4);
      const origins = [o1!, o2!].map((port) => `http://127.0.0.1:${port}`);
      const edges = [e1!, e2!].map((port) => `http://127.0.0.1:${port}`);
      for (const [n, port] of [o1!, o2!].entries()) {
        spawn(`origin-${region}${n + 1}`, 'origin/main.ts', {
          ...process.env,
          ...redis.env,
          ORIGIN_PORT: String(port),
          ORIGIN_ID: `origin-${region}${n + 1}`,
          STRATA_REGION: region,
          KAFKA_BROKERS: listen,
          // Rejoin the region's group within seconds after `heal` (the default session is 30 s).
          KAFKA_SESSION_TIMEOUT_MS: '6000',
          KAFKA_HEARTBEAT_INTERVAL_MS: '1000',
          // A fetch reaches the broker every 10 ms beside the long-poll: a purge no longer waits a round trip for
          // one. (5 ms cost more than it saved on two cores: 800 fetches a second over four origins slowed the rest.)
          KAFKA_FETCH_SAMPLE_MS: '10',
          AUTH_JWT_SECRET: secret,
          AUTH_ISSUER: issuer,
          // The staleness canary, so each region's `/ready` shows how far behind the other it is (`region.sources`).
          PURGE_CANARY_SECONDS: '2',
          ...options.originEnv,
        });
      }
      for (const [n, port] of [e1!, e2!].entries()) {
        spawn(`edge-${region}${n + 1}`, 'edge/adapters/node/main.ts', {
          ...process.env,
          EDGE_PORT: String(port),
          EDGE_ID: `edge-${region}${n + 1}`,
          ORIGIN_URL: origins[n]!,
          EDGE_ORIGIN_TOKEN: edgeToken,
          AUTH_JWT_SECRET: secret,
          AUTH_ISSUER: issuer,
        });
      }
      state.regions[region] = { redis: redis.env, origins, edges, proxy };
    }
    for (const r of Object.values(state.regions)) {
      for (const url of [...r.origins, ...r.edges]) {
        await waitFor(`${url}/ready`, async () => (await fetch(`${url}/ready`).catch(() => null))?.ok === true, 60_000);
      }
    }
    // Kafka consumer groups join after /ready, and a new group starts at the topic's end: the rig is up once
    // every origin has applied a canary purge of the other region (so a write now crosses both ways).
    for (const [region, r] of Object.entries(state.regions)) {
      const others = rigRegions.filter((other) => other !== region);
      for (const url of r.origins) {
        await waitFor(
          `${url} to hear from region ${others.join(', ')}`,
          async () => {
            const body = (await (await fetch(`${url}/ready`)).json()) as { region?: { sources?: object } };
            return others.every((other) => Object.hasOwn(body.region?.sources ?? {}, other));
          },
          120_000,
          200,
        );
      }
    }
    return { state, redis: redisByRegion, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
