/**
 * `npm run services -- up <name>` / `down [name]` / `status`: throwaway servers
 * for development, started on free loopback ports. State lives in `.services/`.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { isAlive, stopPid } from './lib/proc.ts';
import { startKafka } from './services/kafka.ts';
import { startRedis } from './services/redis.ts';
import { startRedisCluster } from './services/redis-cluster.ts';
import { startRedisSentinel } from './services/redis-sentinel.ts';
import type { RunningService, StartOptions } from './services/types.ts';

const root = resolve(import.meta.dirname, '..');
const stateDir = join(root, '.services');
const stateFile = join(stateDir, 'state.json');

type Starter = (options: StartOptions) => Promise<RunningService>;

const starters: Record<string, Starter> = {
  redis: startRedis,
  kafka: startKafka,
  'redis-cluster': startRedisCluster,
  'redis-sentinel': startRedisSentinel,
};

interface State {
  [name: string]: { pids: number[]; env: Record<string, string>; dir: string };
}

function readState(): State {
  return existsSync(stateFile) ? (JSON.parse(readFileSync(stateFile, 'utf8')) as State) : {};
}

function writeState(state: State): void {
  mkdirSync(stateDir, { recursive: true });
  writeFileSync(stateFile, `${JSON.stringify(state, null, 2)}\n`);
}

async function up(name: string): Promise<void> {
  const start = starters[name];
  if (!start) throw new Error(`unknown service '${name}'; known: ${Object.keys(starters).join(', ')}`);
  const state = readState();
  const existing = state[name];
  if (existing?.pids.some(isAlive)) {
    process.stderr.write(`${name} is already up\n`);
    for (const [k, v] of Object.entries(existing.env)) process.stdout.write(`${k}=${v}\n`);
    return;
  }
  const dir = join(stateDir, name);
  rmSync(dir, { recursive: true, force: true });
  const service = await start({ dir, detached: true });
  state[name] = { pids: service.pids, env: service.env, dir };
  writeState(state);
  for (const [k, v] of Object.entries(service.env)) process.stdout.write(`${k}=${v}\n`);
}

async function down(name?: string): Promise<void> {
  const state = readState();
  const names = name ? [name] : Object.keys(state);
  for (const n of names) {
    const entry = state[n];
    if (!entry) continue;
    await Promise.all(entry.pids.map((pid) => stopPid(pid)));
    delete state[n];
    process.stderr.write(`${n} stopped\n`);
  }
  writeState(state);
}

function status(): void {
  for (const [n, entry] of Object.entries(readState())) {
    const alive = entry.pids.filter(isAlive).length;
    process.stdout.write(
      `${n}: ${alive}/${entry.pids.length} processes up; ${Object.entries(entry.env)
        .map(([k, v]) => `${k}=${v}`)
        .join(' ')}\n`,
    );
  }
}

const [command, name] = process.argv.slice(2);
try {
  if (command === 'up' && name) await up(name);
  else if (command === 'down') await down(name);
  else if (command === 'status') status();
  else {
    process.stderr.write(`usage: npm run services -- up <${Object.keys(starters).join('|')}> | down [name] | status\n`);
    process.exitCode = 2;
  }
} catch (error) {
  process.stderr.write(`services: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exitCode = 1;
}
