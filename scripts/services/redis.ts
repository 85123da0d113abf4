import { mkdirSync } from 'node:fs';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../lib/ports.ts';
import { ensureDebianCommand, spawnServer, stopPid, waitFor } from '../lib/proc.ts';
import type { RunningService, StartOptions } from './types.ts';

/** Sends one inline command to a Redis server and resolves with the raw reply text. */
export async function redisCommand(port: number, command: string, host = '127.0.0.1'): Promise<string> {
  return await new Promise((resolve, reject) => {
    const socket = new Socket();
    let reply = '';
    socket.setTimeout(2_000, () => {
      socket.destroy();
      reject(new Error(`no reply from redis on ${host}:${port}`));
    });
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.endsWith('\r\n')) {
        socket.end();
        resolve(reply);
      }
    });
    socket.connect(port, host, () => socket.write(`${command}\r\n`));
  });
}

/** Arguments every test Redis gets: loopback only, no persistence (ARCHITECTURE.md §5). */
export function redisServerArgs(port: number, dir: string, extra: string[] = []): string[] {
  return [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
    '--dir',
    dir,
    '--daemonize',
    'no',
    ...extra,
  ];
}

export interface RunningRedis extends RunningService {
  readonly port: number;
  readonly url: string;
}

/**
 * Starts a standalone `redis-server` (Debian's package, installed with apt-get
 * when missing) on a free loopback port and waits until it answers PING.
 */
export async function startRedis(options: StartOptions): Promise<RunningRedis> {
  ensureDebianCommand('redis-server', ['redis-server']);
  mkdirSync(options.dir, { recursive: true });
  const port = await freePort();
  const server = spawnServer('redis-server', redisServerArgs(port, options.dir), {
    logFile: join(options.dir, `redis-${port}.log`),
    detached: options.detached,
  });
  await waitFor(
    `redis-server on port ${port}`,
    async () => (await redisCommand(port, 'PING')).startsWith('+PONG'),
    15_000,
  );
  const url = `redis://127.0.0.1:${port}`;
  return {
    name: 'redis',
    env: { REDIS_URL: url },
    pids: [server.pid],
    dir: options.dir,
    port,
    url,
    stop: () => stopPid(server.pid),
  };
}
