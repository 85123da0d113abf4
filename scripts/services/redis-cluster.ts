import { execFile } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { freePorts } from '../lib/ports.ts';
import { ensureDebianCommand, isAlive, killPid, spawnServer, stopPid, waitFor } from '../lib/proc.ts';
import { redisCommand, redisServerArgs } from './redis.ts';
import type { RunningService, StartOptions } from './types.ts';

/** Number of `redis-server` processes: 3 masters, each with 1 replica. */
const NODE_COUNT = 6;
/** Hash slots a Redis Cluster must cover. */
const SLOT_COUNT = 16_384;
/** How many times start-up picks fresh ports when a node dies at once (e.g. a port was taken meanwhile). */
const PORT_ATTEMPTS = 3;

/** Options for {@link startRedisCluster}. */
export interface RedisClusterStartOptions extends StartOptions {
  /** `cluster-node-timeout` in ms: how long a node may be unreachable before it is flagged failing. Default 2000. */
  nodeTimeoutMs?: number;
  /** How long (ms) to wait for the cluster to become healthy after create or {@link RunningRedisCluster.startAll}. Default 60000. */
  readyTimeoutMs?: number;
  /**
   * Also serve TLS: every node gets a TLS client port (`--tls-port`) next to
   * its plain one (kept for this harness's own checks), and the cluster bus
   * and replication run over TLS (`tls-cluster`, `tls-replication`). Clients
   * need no certificate of their own. `env.REDIS_CLUSTER_NODES` then lists
   * the TLS ports.
   */
  tls?: { certFile: string; keyFile: string; caFile: string };
}

/** One node as seen live in `CLUSTER NODES`, joined with the process this harness started for it. */
export interface RedisClusterNode {
  /** Client port on 127.0.0.1. */
  readonly port: number;
  /** Cluster bus port on 127.0.0.1 (set with `--cluster-port`, not port + 10000). */
  readonly busPort: number;
  /** 40-hex cluster node id. */
  readonly id: string;
  readonly role: 'master' | 'replica';
  /** For a replica: node id of its master. */
  readonly masterId?: string;
  /** Pid of the `redis-server` process the harness last started on this port. */
  readonly pid: number;
  /** True while that process exists. */
  readonly alive: boolean;
  /** True when the node that answered flags this one `fail` or `pfail`. */
  readonly failed: boolean;
  /** For a master: owned slots as inclusive `[first, last]` ranges (empty when it owns none). */
  readonly slots?: Array<[number, number]>;
}

/**
 * A running 6-node Redis Cluster (3 masters, 3 replicas) on loopback, plus the
 * controls failover and outage tests need.
 */
export interface RunningRedisCluster extends RunningService {
  /** Client ports of all six nodes (ports), in start order. */
  readonly ports: number[];
  /** `cluster-node-timeout` in use, in ms. */
  readonly nodeTimeoutMs: number;
  /**
   * Reads the topology live from `CLUSTER NODES` of the first reachable live node.
   * Nodes whose process is gone are still listed (`alive: false`, usually `failed: true`).
   */
  nodes(): Promise<RedisClusterNode[]>;
  /**
   * Sends `signal` (default `SIGKILL`) to the node on `port`. For SIGKILL, SIGTERM,
   * SIGINT and SIGQUIT it then waits (up to 5000 ms) until the process is gone.
   * Does not wait for failover: call {@link waitUntilHealthy} for that.
   */
  killNode(port: number, signal?: NodeJS.Signals): Promise<void>;
  /**
   * Stops every node (SIGTERM, SIGKILL after 5000 ms). Data dirs and
   * `nodes-PORT.conf` files stay, so {@link startAll} can bring the cluster back.
   */
  stopAll(): Promise<void>;
  /**
   * Starts every node whose process is gone again on the same port and bus port with
   * the same `nodes-PORT.conf`, then waits until the cluster is fully healthy (see
   * {@link waitUntilHealthy}). Keys are lost: nodes run without persistence.
   */
  startAll(): Promise<void>;
  /**
   * Waits (default: the start-up `readyTimeoutMs`) until every live node reports
   * `cluster_state:ok` with all 16384 slots ok, all live nodes agree on slot owners
   * and see each other connected, every slot owner is alive, and every live replica
   * has `master_link_status:up`. When all six processes are alive it also requires
   * 3 masters with a linked replica each. Throws with the last problem on time-out.
   */
  waitUntilHealthy(timeoutMs?: number): Promise<void>;
  /** Stops every node for good; later calls to {@link startAll} throw. Keeps the data dir. */
  stop(): Promise<void>;
}

interface NodeProcess {
  readonly port: number;
  readonly busPort: number;
  /** TLS client port, when the cluster serves TLS. */
  readonly tlsPort?: number;
  readonly dir: string;
  pid: number;
}

interface NodesLine {
  id: string;
  port: number;
  busPort: number;
  flags: string[];
  masterId: string | undefined;
  linkState: string;
  slots: Array<[number, number]>;
}

/** Sends one command and returns the payload of a bulk-string reply, throwing on error or truncated replies. */
async function bulkReply(port: number, command: string): Promise<string> {
  const reply = await redisCommand(port, command);
  if (reply.startsWith('-')) throw new Error(`${command} on ${port}: ${reply.trim()}`);
  const header = reply.indexOf('\r\n');
  const length = Number(reply.slice(1, header));
  if (!reply.startsWith('$') || !Number.isInteger(length) || length < 0) {
    throw new Error(`${command} on ${port}: unexpected reply ${JSON.stringify(reply.slice(0, 40))}`);
  }
  const body = reply.slice(header + 2, reply.length - 2);
  if (Buffer.byteLength(body) !== length) throw new Error(`${command} on ${port}: truncated reply`);
  return body;
}

/** Parses `key:value` lines of CLUSTER INFO / INFO. */
function parseInfo(text: string): Map<string, string> {
  const fields = new Map<string, string>();
  for (const line of text.split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon > 0) fields.set(line.slice(0, colon), line.slice(colon + 1));
  }
  return fields;
}

/** Parses CLUSTER NODES text; skips `[slot->-id]` migration markers. */
function parseNodes(text: string): NodesLine[] {
  const lines: NodesLine[] = [];
  for (const line of text.split('\n')) {
    const parts = line.trim().split(' ');
    const [id, address, flags, master, , , , linkState] = parts;
    if (!id || !address || !flags || !master || !linkState) continue;
    const [hostPort = '', bus = ''] = address.split('@');
    const slots: Array<[number, number]> = [];
    for (const part of parts.slice(8)) {
      if (part.startsWith('[')) continue;
      const [first, last = first] = part.split('-');
      slots.push([Number(first), Number(last)]);
    }
    lines.push({
      id,
      port: Number(hostPort.slice(hostPort.lastIndexOf(':') + 1)),
      busPort: Number(bus.split(',')[0]),
      flags: flags.split(','),
      masterId: master === '-' ? undefined : master,
      linkState,
      slots,
    });
  }
  return lines;
}

function slotTotal(slots: Array<[number, number]>): number {
  return slots.reduce((sum, [first, last]) => sum + last - first + 1, 0);
}

function isReplica(line: NodesLine): boolean {
  return line.flags.includes('slave') || line.flags.includes('replica');
}

function isFailing(line: NodesLine): boolean {
  return line.flags.some((f) => f === 'fail' || f === 'fail?' || f === 'pfail');
}

async function run(command: string, args: string[], timeoutMs: number): Promise<string> {
  return await new Promise((resolve, reject) => {
    execFile(command, args, { timeout: timeoutMs, maxBuffer: 4 * 1024 * 1024 }, (error, stdout, stderr) => {
      const output = `${stdout}${stderr}`;
      if (error) reject(new Error(`${command} ${args.join(' ')} failed: ${error.message}\n${output}`));
      else resolve(output);
    });
  });
}

/**
 * Starts a real Redis Cluster of six `redis-server` processes (3 masters, 3 replicas)
 * on free loopback ports, each in its own subfolder `options.dir/PORT`, then creates
 * it with `redis-cli --cluster create ... --cluster-replicas 1` and waits until it is
 * fully healthy (see {@link RunningRedisCluster.waitUntilHealthy}).
 *
 * Bus ports are picked free as well and passed with `--cluster-port`, because
 * port + 10000 may be taken or exceed 65535 for ephemeral ports.
 *
 * @returns the cluster, with `env.REDIS_CLUSTER_NODES` = all six `127.0.0.1:PORT`, comma-separated.
 */
export async function startRedisCluster(options: RedisClusterStartOptions): Promise<RunningRedisCluster> {
  ensureDebianCommand('redis-server', ['redis-server']);
  ensureDebianCommand('redis-cli', ['redis-tools']);
  mkdirSync(options.dir, { recursive: true });
  const nodeTimeoutMs = options.nodeTimeoutMs ?? 2_000;
  const readyTimeoutMs = options.readyTimeoutMs ?? 60_000;
  const logFile = join(options.dir, 'cluster.log');

  const spawnNode = (node: NodeProcess): void => {
    mkdirSync(node.dir, { recursive: true });
    const args = redisServerArgs(node.port, node.dir, [
      '--cluster-enabled',
      'yes',
      '--cluster-config-file',
      `nodes-${node.port}.conf`,
      '--cluster-node-timeout',
      String(nodeTimeoutMs),
      '--cluster-port',
      String(node.busPort),
      // Replicas sync at once instead of the master waiting 5 s for more replicas to batch.
      '--repl-diskless-sync-delay',
      '0',
      ...(options.tls && node.tlsPort
        ? [
            '--tls-port',
            String(node.tlsPort),
            '--tls-cert-file',
            options.tls.certFile,
            '--tls-key-file',
            options.tls.keyFile,
            '--tls-ca-cert-file',
            options.tls.caFile,
            '--tls-cluster',
            'yes',
            '--tls-replication',
            'yes',
            '--tls-auth-clients',
            'no',
          ]
        : []),
    ]);
    node.pid = spawnServer('redis-server', args, {
      logFile: join(node.dir, `redis-${node.port}.log`),
      detached: options.detached,
    }).pid;
  };

  /** Waits until every given node answers PING; throws early if one of them exits (e.g. port taken). */
  const waitForPing = async (group: NodeProcess[]): Promise<void> => {
    await waitFor(
      `redis-server on ports ${group.map((n) => n.port).join(', ')}`,
      async () => {
        const dead = group.filter((n) => !isAlive(n.pid));
        if (dead.length > 0) throw new Error(`exited: ${dead.map((n) => `${n.port} (see ${n.dir})`).join(', ')}`);
        const replies = await Promise.all(group.map((n) => redisCommand(n.port, 'PING')));
        return replies.every((r) => r.startsWith('+PONG'));
      },
      15_000,
    );
  };

  let nodes: NodeProcess[] = [];
  for (let attempt = 1; ; attempt++) {
    const ports = await freePorts(NODE_COUNT * (options.tls ? 3 : 2));
    nodes = ports.slice(0, NODE_COUNT).map((port, i) => ({
      port,
      busPort: ports[NODE_COUNT + i]!,
      ...(options.tls ? { tlsPort: ports[2 * NODE_COUNT + i]! } : {}),
      dir: join(options.dir, String(port)),
      pid: 0,
    }));
    for (const node of nodes) spawnNode(node);
    try {
      await waitForPing(nodes);
      break;
    } catch (error) {
      await Promise.all(nodes.map((n) => stopPid(n.pid)));
      if (attempt >= PORT_ATTEMPTS) throw error;
    }
  }

  let stopped = false;

  const stopNodes = async (): Promise<void> => {
    await Promise.all(nodes.filter((n) => isAlive(n.pid)).map((n) => stopPid(n.pid)));
  };

  /** Throws with the first problem found; resolves when healthy. */
  const checkHealthy = async (): Promise<boolean> => {
    const live = nodes.filter((n) => isAlive(n.pid));
    if (live.length === 0) throw new Error('no node is running');
    const livePorts = new Set(live.map((n) => n.port));
    let slotMap: string | undefined;
    for (const node of live) {
      const info = parseInfo(await bulkReply(node.port, 'CLUSTER INFO'));
      if (info.get('cluster_state') !== 'ok') {
        throw new Error(`${node.port}: cluster_state:${info.get('cluster_state')}`);
      }
      if (info.get('cluster_slots_ok') !== String(SLOT_COUNT)) {
        throw new Error(`${node.port}: cluster_slots_ok:${info.get('cluster_slots_ok')}`);
      }
      const view = parseNodes(await bulkReply(node.port, 'CLUSTER NODES'));
      for (const port of livePorts) {
        const entry = view.find((l) => l.port === port);
        if (!entry) throw new Error(`${node.port} does not know ${port}`);
        if (isFailing(entry) || entry.flags.includes('handshake') || entry.flags.includes('noaddr')) {
          throw new Error(`${node.port} sees ${port} as ${entry.flags.join(',')}`);
        }
        if (!entry.flags.includes('myself') && entry.linkState !== 'connected') {
          throw new Error(`${node.port} is not connected to ${port}`);
        }
      }
      const owners = view.filter((l) => !isReplica(l) && l.slots.length > 0);
      if (owners.reduce((sum, l) => sum + slotTotal(l.slots), 0) !== SLOT_COUNT) {
        throw new Error(`${node.port} does not see all ${SLOT_COUNT} slots assigned`);
      }
      for (const owner of owners) {
        if (!livePorts.has(owner.port)) throw new Error(`${node.port} sees slots on stopped node ${owner.port}`);
      }
      const signature = owners
        .map((l) => `${l.port}:${JSON.stringify(l.slots)}`)
        .sort()
        .join(' ');
      if (slotMap !== undefined && slotMap !== signature) throw new Error('nodes disagree on slot owners');
      slotMap = signature;
      const me = view.find((l) => l.flags.includes('myself'));
      if (me && isReplica(me)) {
        const replication = parseInfo(await bulkReply(node.port, 'INFO replication'));
        if (replication.get('master_link_status') !== 'up') {
          throw new Error(`replica ${node.port}: master_link_status:${replication.get('master_link_status')}`);
        }
      }
      if (live.length === NODE_COUNT) {
        const masters = view.filter((l) => !isReplica(l));
        if (masters.length !== NODE_COUNT / 2) throw new Error(`${node.port} sees ${masters.length} masters`);
        for (const master of masters) {
          if (!view.some((l) => isReplica(l) && l.masterId === master.id)) {
            throw new Error(`${node.port} sees master ${master.port} without a replica`);
          }
        }
      }
    }
    return true;
  };

  const waitUntilHealthy = async (timeoutMs = readyTimeoutMs): Promise<void> => {
    await waitFor('a healthy redis cluster', checkHealthy, timeoutMs, 200);
  };

  try {
    const addresses = nodes.map((n) => `127.0.0.1:${n.port}`);
    const output = await run(
      'redis-cli',
      ['--cluster', 'create', ...addresses, '--cluster-replicas', '1', '--cluster-yes'],
      60_000,
    );
    appendFileSync(logFile, output);
    await waitUntilHealthy();
  } catch (error) {
    await stopNodes();
    throw error;
  }

  const byPort = (port: number): NodeProcess => {
    const node = nodes.find((n) => n.port === port);
    if (!node) throw new Error(`port ${port} is not a node of this cluster`);
    return node;
  };

  return {
    name: 'redis-cluster',
    env: { REDIS_CLUSTER_NODES: nodes.map((n) => `127.0.0.1:${n.tlsPort ?? n.port}`).join(',') },
    get pids() {
      return nodes.map((n) => n.pid);
    },
    dir: options.dir,
    ports: nodes.map((n) => n.port),
    nodeTimeoutMs,

    async nodes() {
      let lastError: unknown = new Error('no node is running');
      for (const node of nodes.filter((n) => isAlive(n.pid))) {
        try {
          const view = parseNodes(await bulkReply(node.port, 'CLUSTER NODES'));
          return view.map((line): RedisClusterNode => {
            const proc = nodes.find((n) => n.port === line.port);
            const replica = isReplica(line);
            return {
              port: line.port,
              busPort: line.busPort,
              id: line.id,
              role: replica ? 'replica' : 'master',
              ...(replica ? { masterId: line.masterId } : { slots: line.slots }),
              pid: proc?.pid ?? 0,
              alive: proc ? isAlive(proc.pid) : false,
              failed: isFailing(line),
            };
          });
        } catch (error) {
          lastError = error;
        }
      }
      throw lastError;
    },

    async killNode(port, signal = 'SIGKILL') {
      const node = byPort(port);
      killPid(node.pid, signal);
      if (['SIGKILL', 'SIGTERM', 'SIGINT', 'SIGQUIT'].includes(signal)) {
        await waitFor(`node ${port} to exit`, () => !isAlive(node.pid), 5_000, 20);
      }
    },

    stopAll: stopNodes,

    async startAll() {
      if (stopped) throw new Error('this redis cluster was stopped for good');
      const down = nodes.filter((n) => !isAlive(n.pid));
      for (const node of down) spawnNode(node);
      await waitForPing(down);
      await waitUntilHealthy();
    },

    waitUntilHealthy,

    async stop() {
      stopped = true;
      await stopNodes();
    },
  };
}
