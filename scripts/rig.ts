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
import { isAlive, stopPid } from './lib/proc.ts';
import { type RigState, rigLatencyMs, startRig } from './lib/rig.ts';
import { setProxyEnabled } from './services/toxiproxy.ts';

const root = resolve(import.meta.dirname, '..');
const rigDir = join(root, '.rig');
const stateFile = join(rigDir, 'state.json');

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
  try {
    const rig = await startRig({
      dir: rigDir,
      cluster,
      detached: true,
      // Recorded as they start, so `down` stops them even if `up` dies half-way.
      onStarted: (name, pid) => {
        started.push({ name, pid });
        writeFileSync(join(rigDir, 'pids.json'), JSON.stringify(started));
      },
    });
    writeFileSync(stateFile, `${JSON.stringify(rig.state, null, 2)}\n`);
    print(rig.state);
  } catch (error) {
    process.stderr.write(
      `strata rig: could not start (${error instanceof Error ? error.message : error}); stopped what started\n`,
    );
    process.exitCode = 1;
  }
}

function print(state: RigState): void {
  const lines = [`toxiproxy: ${state.toxiproxyUrl}   kafka (direct): ${state.kafka}`];
  for (const [region, r] of Object.entries(state.regions)) {
    lines.push(
      `region ${region}: redis ${Object.values(r.redis).join(' ')}   kafka via proxy ${r.proxy} (+${rigLatencyMs} ms each way)`,
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
