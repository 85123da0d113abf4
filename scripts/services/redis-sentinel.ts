import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { freePorts } from '../lib/ports.ts';
import { ensureDebianCommand, isAlive, killPid, spawnServer, stopPid, waitFor } from '../lib/proc.ts';
import { redisCommand, redisServerArgs } from './redis.ts';
import type { RunningService, StartOptions } from './types.ts';

/** Name of the master the sentinels monitor (`REDIS_SENTINEL_MASTER`). */
export const sentinelMasterName = 'strata';
const REPLICAS = 2;
const SENTINELS = 3;
/** Sentinels that must agree a master is down before a failover (a majority of 3). */
const QUORUM = 2;

/** Options for {@link startRedisSentinel}. */
export interface RedisSentinelStartOptions extends StartOptions {
  /** `down-after-milliseconds`: how long (ms) the master may be unreachable before sentinels call it down. Default 1000. */
  downAfterMs?: number;
  /** `failover-timeout` in ms. Default 5000. */
  failoverTimeoutMs?: number;
}

/** A running master + 2 replicas + 3 sentinels, and the controls a failover test needs. */
export interface RunningRedisSentinel extends RunningService {
  /** Ports of the three `redis-server` data nodes, master first at start. */
  readonly dataPorts: number[];
  /** Ports of the three sentinels. */
  readonly sentinelPorts: number[];
  /** Port of the current master, as a majority of live sentinels report it. */
  masterPort(): Promise<number>;
  /** SIGKILLs the data node on `port` and waits until its process is gone. */
  killNode(port: number): Promise<void>;
  /**
   * Starts the data node on `port` again, empty (no persistence) and without
   * `replicaof`: the sentinels turn a returning old master into a replica of the
   * current one. Resolves once it answers PING.
   */
  restartNode(port: number): Promise<void>;
  /**
   * Waits (default 30000 ms) until a majority of sentinels name a live master other
   * than `oldPort` that answers as `role:master`.
   * @returns the new master's port.
   */
  waitForFailover(oldPort: number, timeoutMs?: number): Promise<number>;
}

/** Runs one command against a sentinel or data node with a short-lived ioredis client. */
async function ask(port: number, ...args: string[]): Promise<unknown> {
  const client = new Redis({
    port,
    host: '127.0.0.1',
    lazyConnect: true,
    connectTimeout: 1_000,
    retryStrategy: () => null,
    maxRetriesPerRequest: 0,
  });
  client.on('error', () => {});
  try {
    await client.connect();
    return await client.call(args[0]!, ...args.slice(1));
  } finally {
    client.disconnect();
  }
}

/** Parses `key:value` lines of INFO. */
function info(text: string): Map<string, string> {
  return new Map(
    text
      .split('\r\n')
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)] as [string, string]),
  );
}

/** A flat `[field, value, ...]` reply as a map. */
function pairs(reply: unknown): Map<string, string> {
  const list = reply as string[];
  const out = new Map<string, string>();
  for (let i = 0; i + 1 < list.length; i += 2) out.set(list[i]!, list[i + 1]!);
  return out;
}

/**
 * Starts Redis Sentinel on free loopback ports from Debian's `redis-server`
 * package (`redis-server --sentinel` is the same binary as `redis-sentinel`):
 * one master, two replicas (`replicaof`) and three sentinels monitoring the
 * master as {@link sentinelMasterName} with quorum 2. Waits until both
 * replicas are linked and every sentinel sees the two replicas and the two
 * other sentinels, so a failover can start at once.
 *
 * @returns the setup, with `env.REDIS_SENTINELS` (the three sentinels) and `env.REDIS_SENTINEL_MASTER`.
 */
export async function startRedisSentinel(options: RedisSentinelStartOptions): Promise<RunningRedisSentinel> {
  ensureDebianCommand('redis-server', ['redis-server']);
  mkdirSync(options.dir, { recursive: true });
  const downAfterMs = options.downAfterMs ?? 1_000;
  const failoverTimeoutMs = options.failoverTimeoutMs ?? 5_000;
  const ports = await freePorts(1 + REPLICAS + SENTINELS);
  const dataPorts = ports.slice(0, 1 + REPLICAS);
  const sentinelPorts = ports.slice(1 + REPLICAS);
  const [masterPort] = dataPorts as [number];
  const pids = new Map<number, number>();

  const spawnData = (port: number, replicaOf?: number): void => {
    const dir = join(options.dir, String(port));
    mkdirSync(dir, { recursive: true });
    const extra = ['--repl-diskless-sync-delay', '0'];
    if (replicaOf !== undefined) extra.push('--replicaof', '127.0.0.1', String(replicaOf));
    pids.set(
      port,
      spawnServer('redis-server', redisServerArgs(port, dir, extra), {
        logFile: join(dir, `redis-${port}.log`),
        detached: options.detached,
      }).pid,
    );
  };
  for (const port of dataPorts) spawnData(port, port === masterPort ? undefined : masterPort);
  for (const port of sentinelPorts) {
    const dir = join(options.dir, `sentinel-${port}`);
    mkdirSync(dir, { recursive: true });
    // Sentinel rewrites its config file as it learns the topology, so each gets its own.
    const conf = join(dir, 'sentinel.conf');
    writeFileSync(
      conf,
      [
        `port ${port}`,
        'bind 127.0.0.1',
        `dir ${dir}`,
        `sentinel monitor ${sentinelMasterName} 127.0.0.1 ${masterPort} ${QUORUM}`,
        `sentinel down-after-milliseconds ${sentinelMasterName} ${downAfterMs}`,
        `sentinel failover-timeout ${sentinelMasterName} ${failoverTimeoutMs}`,
        `sentinel parallel-syncs ${sentinelMasterName} 1`,
        '',
      ].join('\n'),
    );
    pids.set(
      port,
      spawnServer('redis-server', [conf, '--sentinel'], {
        logFile: join(dir, `sentinel-${port}.log`),
        detached: options.detached,
      }).pid,
    );
  }

  const stopAll = async (): Promise<void> => {
    await Promise.all([...pids.values()].filter(isAlive).map((pid) => stopPid(pid)));
  };

  try {
    await waitFor(
      'redis sentinel set-up (replicas linked, sentinels acquainted)',
      async () => {
        const dead = [...pids].filter(([, pid]) => !isAlive(pid)).map(([port]) => port);
        if (dead.length > 0) throw new Error(`exited: ${dead.join(', ')} (see ${options.dir})`);
        for (const port of dataPorts.slice(1)) {
          if (info(String(await ask(port, 'INFO', 'replication'))).get('master_link_status') !== 'up') return false;
        }
        for (const port of sentinelPorts) {
          const master = pairs(await ask(port, 'SENTINEL', 'MASTER', sentinelMasterName));
          if (master.get('num-slaves') !== String(REPLICAS)) return false;
          if (master.get('num-other-sentinels') !== String(SENTINELS - 1)) return false;
        }
        return (await redisCommand(masterPort, 'PING')).startsWith('+PONG');
      },
      30_000,
      100,
    );
  } catch (error) {
    await stopAll();
    throw error;
  }

  const currentMaster = async (): Promise<number> => {
    const votes = new Map<number, number>();
    for (const port of sentinelPorts.filter((p) => isAlive(pids.get(p)!))) {
      try {
        const [, masterPortText] = (await ask(port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', sentinelMasterName)) as [
          string,
          string,
        ];
        const p = Number(masterPortText);
        votes.set(p, (votes.get(p) ?? 0) + 1);
      } catch {
        // A sentinel that does not answer has no vote.
      }
    }
    const [best] = [...votes].sort((a, b) => b[1] - a[1]);
    if (!best || best[1] < QUORUM) throw new Error('no majority of sentinels agrees on a master');
    return best[0];
  };

  return {
    name: 'redis-sentinel',
    env: {
      REDIS_SENTINELS: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
      REDIS_SENTINEL_MASTER: sentinelMasterName,
    },
    get pids() {
      return [...pids.values()];
    },
    dir: options.dir,
    dataPorts,
    sentinelPorts,
    masterPort: currentMaster,
    async killNode(port) {
      const pid = pids.get(port);
      if (pid === undefined || !dataPorts.includes(port))
        throw new Error(`port ${port} is not a data node of this set-up`);
      killPid(pid, 'SIGKILL');
      await waitFor(`node ${port} to exit`, () => !isAlive(pid), 5_000, 20);
    },
    async restartNode(port) {
      if (!dataPorts.includes(port)) throw new Error(`port ${port} is not a data node of this set-up`);
      if (isAlive(pids.get(port)!)) throw new Error(`node ${port} is still running`);
      spawnData(port);
      await waitFor(
        `node ${port} to answer`,
        async () => (await redisCommand(port, 'PING')).startsWith('+PONG'),
        15_000,
      );
    },
    async waitForFailover(oldPort, timeoutMs = 30_000) {
      let found = 0;
      await waitFor(
        `sentinels to promote a replica of ${oldPort}`,
        async () => {
          const port = await currentMaster();
          if (port === oldPort || !isAlive(pids.get(port) ?? 0)) return false;
          if (info(String(await ask(port, 'INFO', 'replication'))).get('role') !== 'master') return false;
          found = port;
          return true;
        },
        timeoutMs,
        100,
      );
      return found;
    },
    stop: stopAll,
  };
}
