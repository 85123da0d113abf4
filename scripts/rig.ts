/**
 * `npm run rig -- up [--cluster] | down | cut a b | heal | status`: a
 * two-region deployment on loopback, for trying cross-region invalidation as
 * a user would (docs/regions.md).
 *
 * - regions `a` and `b`, each with one Redis (`--cluster`: a 6-node Redis
 *   Cluster), two origin replicas sharing that region's purge log, and two
 *   Node edges (one per replica);
 * - one shared Kafka with one listener per region, each advertising that
 *   region's Toxiproxy proxy, so every connection a region's clients make to
 *   the broker (bootstrap and after) crosses the proxy, which adds 20 ms each
 *   way;
 * - `cut a b` disables both regions' proxies (no traffic between them),
 *   `heal` enables them again.
 *
 * Processes outlive this command; state and logs live in `.rig/`. Auth is on:
 * a fresh HS256 secret per rig, and an admin token printed ready to paste.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Toxiproxy } from 'toxiproxy-node-client';
import { signServiceToken } from './lib/dev-auth.ts';
import { freePorts } from './lib/ports.ts';
import { isAlive, spawnServer, stopPid, waitFor } from './lib/proc.ts';
import { startKafka } from './services/kafka.ts';
import { startRedis } from './services/redis.ts';
import { startRedisCluster } from './services/redis-cluster.ts';
import { latencyProxy, setProxyEnabled, startToxiproxy } from './services/toxiproxy.ts';
import type { RunningService } from './services/types.ts';

const root = resolve(import.meta.dirname, '..');
const rigDir = join(root, '.rig');
const stateFile = join(rigDir, 'state.json');
const regions = ['a', 'b'] as const;
/** Milliseconds added in each direction on a region's path to the shared Kafka. */
const latencyMs = 20;
const issuer = 'strata-rig';

interface RigState {
  /** Every process started, in start order (stopped in reverse). */
  pids: { name: string; pid: number }[];
  toxiproxyUrl: string;
  kafka: string;
  regions: Record<string, { redis: Record<string, string>; origins: string[]; edges: string[]; proxy: string }>;
  token: string;
}

function readState(): RigState | undefined {
  return existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as RigState) : undefined;
}

async function up(cluster: boolean): Promise<void> {
  const existing = readState();
  if (existing?.pids.some((p) => isAlive(p.pid))) {
    process.stderr.write('strata rig: already up (npm run rig -- down first)\n');
    print(existing);
    return;
  }
  rmSync(rigDir, { recursive: true, force: true });
  mkdirSync(rigDir, { recursive: true });
  const started: { name: string; pid: number }[] = [];
  const record = (name: string, service: RunningService) => {
    for (const pid of service.pids) started.push({ name, pid });
    writeFileSync(join(rigDir, 'pids.json'), JSON.stringify(started));
  };
  try {
    const toxiproxy = await startToxiproxy({ dir: join(rigDir, 'toxiproxy'), detached: true });
    record('toxiproxy', toxiproxy);
    const proxyPorts = await freePorts(regions.length);
    const kafka = await startKafka({
      dir: join(rigDir, 'kafka'),
      detached: true,
      extraListeners: regions.map((r, i) => ({
        name: `REGION_${r.toUpperCase()}`,
        protocol: 'PLAINTEXT' as const,
        advertised: `127.0.0.1:${proxyPorts[i]}`,
      })),
    });
    record('kafka', kafka);
    const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
    const edgeToken = await signServiceToken(secret, { serviceId: 'strata-edge', issuer }, 7 * 24 * 3600);
    const token = await signServiceToken(secret, { serviceId: 'rig-admin', issuer }, 7 * 24 * 3600);
    const state: RigState = { pids: started, toxiproxyUrl: toxiproxy.url, kafka: kafka.brokers, regions: {}, token };
    for (const [i, region] of regions.entries()) {
      const listen = `127.0.0.1:${proxyPorts[i]}`;
      const proxy = `kafka-${region}`;
      await latencyProxy(
        toxiproxy.client,
        proxy,
        listen,
        `127.0.0.1:${kafka.listenerPorts[`REGION_${region.toUpperCase()}`]}`,
        latencyMs,
      );
      const dir = join(rigDir, `redis-${region}`);
      const redis = cluster
        ? await startRedisCluster({ dir, detached: true })
        : await startRedis({ dir, detached: true });
      record(`redis-${region}`, redis);
      const [o1, o2, e1, e2] = await freePorts(4);
      const origins = [o1!, o2!].map((port) => `http://127.0.0.1:${port}`);
      const edges = [e1!, e2!].map((port) => `http://127.0.0.1:${port}`);
      for (const [n, port] of [o1!, o2!].entries()) {
        const env = {
          ...process.env,
          ...redis.env,
          ORIGIN_PORT: String(port),
          ORIGIN_ID: `origin-${region}${n + 1}`,
          STRATA_REGION: region,
          KAFKA_BROKERS: listen,
          // Rejoin the region's group within seconds after `heal` (the default session is 30 s).
          KAFKA_SESSION_TIMEOUT_MS: '6000',
          KAFKA_HEARTBEAT_INTERVAL_MS: '1000',
          AUTH_JWT_SECRET: secret,
          AUTH_ISSUER: issuer,
        };
        const proc = spawnServer(process.execPath, ['origin/main.ts'], {
          logFile: join(rigDir, `origin-${region}${n + 1}.log`),
          detached: true,
          cwd: root,
          env,
        });
        started.push({ name: `origin-${region}${n + 1}`, pid: proc.pid });
      }
      for (const [n, port] of [e1!, e2!].entries()) {
        const env = {
          ...process.env,
          EDGE_PORT: String(port),
          EDGE_ID: `edge-${region}${n + 1}`,
          ORIGIN_URL: origins[n]!,
          EDGE_ORIGIN_TOKEN: edgeToken,
          AUTH_JWT_SECRET: secret,
          AUTH_ISSUER: issuer,
        };
        const proc = spawnServer(process.execPath, ['edge/adapters/node/main.ts'], {
          logFile: join(rigDir, `edge-${region}${n + 1}.log`),
          detached: true,
          cwd: root,
          env,
        });
        started.push({ name: `edge-${region}${n + 1}`, pid: proc.pid });
      }
      state.regions[region] = { redis: redis.env, origins, edges, proxy };
    }
    writeFileSync(stateFile, `${JSON.stringify(state, null, 2)}\n`);
    for (const r of Object.values(state.regions)) {
      for (const url of [...r.origins, ...r.edges]) {
        await waitFor(`${url}/ready`, async () => (await fetch(`${url}/ready`).catch(() => null))?.ok === true, 60_000);
      }
    }
    print(state);
  } catch (error) {
    process.stderr.write(
      `strata rig: could not start (${error instanceof Error ? error.message : error}); stopping what started\n`,
    );
    for (const p of started.reverse()) await stopPid(p.pid);
    process.exitCode = 1;
  }
}

function print(state: RigState): void {
  const lines = [`toxiproxy: ${state.toxiproxyUrl}   kafka (direct): ${state.kafka}`];
  for (const [region, r] of Object.entries(state.regions)) {
    lines.push(
      `region ${region}: redis ${Object.values(r.redis).join(' ')}   kafka via proxy ${r.proxy} (+${latencyMs} ms each way)`,
    );
    lines.push(`  origins: ${r.origins.join('  ')}`);
    lines.push(`  edges:   ${r.edges.join('  ')}`);
  }
  const a = state.regions.a;
  const b = state.regions.b;
  lines.push(
    '',
    `export STRATA_TOKEN=${state.token}`,
    '',
    'Try it: write in region a, watch region b drop its copy.',
    `  curl -s -X PUT -H "Authorization: Bearer $STRATA_TOKEN" --data 'from-b' '${b?.origins[0]}/api/v1/cache/demo/k?ttl=600'`,
    `  curl -s -H "Authorization: Bearer $STRATA_TOKEN" ${b?.edges[0]}/api/v1/cache/demo/k   # cached at b's edge`,
    `  curl -s -X PUT -H "Authorization: Bearer $STRATA_TOKEN" --data 'from-a' '${a?.origins[0]}/api/v1/cache/demo/k?ttl=600'`,
    `  curl -s -H "Authorization: Bearer $STRATA_TOKEN" ${b?.edges[0]}/api/v1/cache/demo/k   # 404: purged in b`,
    `  curl -s -H "Authorization: Bearer $STRATA_TOKEN" ${b?.origins[0]}/metrics | grep strata_cross_region`,
    '  npm run rig -- cut a b   |   npm run rig -- heal   |   npm run rig -- down',
  );
  process.stdout.write(`${lines.join('\n')}\n`);
}

async function down(): Promise<void> {
  const state = readState();
  const pidsFile = join(rigDir, 'pids.json');
  const pids =
    state?.pids ?? (existsSync(pidsFile) ? (JSON.parse(readFileSync(pidsFile, 'utf8')) as RigState['pids']) : []);
  for (const p of [...pids].reverse()) {
    if (isAlive(p.pid)) {
      process.stderr.write(`stopping ${p.name} (pid ${p.pid})\n`);
      await stopPid(p.pid, 15_000);
    }
  }
  rmSync(rigDir, { recursive: true, force: true });
  process.stdout.write('strata rig: down\n');
}

async function setLink(from: string, to: string, enabled: boolean): Promise<void> {
  const state = readState();
  if (!state) throw new Error('the rig is not up (npm run rig -- up)');
  const client = new Toxiproxy(state.toxiproxyUrl);
  for (const region of [from, to]) {
    const r = state.regions[region];
    if (!r) throw new Error(`unknown region '${region}'; the rig has ${Object.keys(state.regions).join(', ')}`);
    await setProxyEnabled(client, r.proxy, enabled);
  }
  process.stdout.write(`strata rig: link ${from} <-> ${to} ${enabled ? 'healed' : 'cut'}\n`);
}

const [command, ...args] = process.argv.slice(2);
try {
  if (command === 'up') await up(args.includes('--cluster'));
  else if (command === 'down') await down();
  else if (command === 'cut') await setLink(args[0] ?? 'a', args[1] ?? 'b', false);
  else if (command === 'heal') await setLink(args[0] ?? 'a', args[1] ?? 'b', true);
  else if (command === 'status') {
    const state = readState();
    if (state) print(state);
    else process.stdout.write('strata rig: down\n');
  } else {
    process.stderr.write('usage: npm run rig -- up [--cluster] | down | cut a b | heal [a b] | status\n');
    process.exitCode = 2;
  }
} catch (error) {
  process.stderr.write(`strata rig: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
