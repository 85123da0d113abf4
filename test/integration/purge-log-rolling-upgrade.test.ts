import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { cleanEnv, repoRoot, type Spawned, spawnEntry } from '../support/spawn-entry.ts';
import { edgeFor, originFor, ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * A rolling upgrade: an origin and an edge of the previous landed commit
 * run from a `git archive` of it (this checkout's `node_modules` linked in)
 * beside an origin and an edge of this commit, on the same Redis and the same
 * region purge log. Edges cross over: the old edge follows the new origin,
 * the new edge the old origin. Writes at either origin reach the edges of
 * both, and an entry in a format version neither reads resets the edges of
 * both. A clone without that commit (a shallow clone) cannot run it: the test
 * is then reported skipped with the reason in its name, never passed.
 */
const previousCommit = '1f7630e';

const hasPrevious = (() => {
  try {
    execFileSync('git', ['cat-file', '-e', `${previousCommit}^{commit}`], { cwd: repoRoot, stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

const cleanups: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Starts `entry` of the previous commit's tree on a free port (`portVariable`) and waits for `/ready`. */
async function startPrevious(
  tree: string,
  entry: string,
  portVariable: string,
  env: Record<string, string>,
): Promise<{ url: string; proc: Spawned }> {
  const port = await freePort();
  const proc = spawnEntry(entry, cleanEnv({ ...env, [portVariable]: String(port), LOG_LEVEL: 'silent' }), [], tree);
  cleanups.push(() => proc.stop());
  const url = `http://127.0.0.1:${port}`;
  await eventually(
    `${entry} of ${previousCommit} to be ready`,
    async () => {
      if (proc.child.exitCode !== null) throw new Error(`${entry} exited: ${proc.stderr()}`);
      return (await fetch(`${url}/ready`).catch(() => null))?.ok ?? false;
    },
    30_000,
    100,
  );
  return { url, proc };
}

const ns = 'rolling';
const put = async (base: string, key: string, value: string) => {
  const res = await fetch(`${base}/api/v1/cache/${ns}/${key}?ttl=600`, { method: 'PUT', body: value });
  await res.arrayBuffer();
  expect(res.status).toBe(200);
};
const read = async (base: string, key: string) => {
  const res = await fetch(`${base}/api/v1/cache/${ns}/${key}`);
  return { status: res.status, body: await res.text(), cache: res.headers.get('X-Cache') };
};
/** Polls `edge` until it serves `value` for `key` (an edge that never gets the purge keeps the old copy: 600 s cap). */
const serves = (edge: string, key: string, value: string) =>
  eventually(`${edge} to serve ${value}`, async () => (await read(edge, key)).body === value, 10_000, 20);

describe('a rolling upgrade of the origin', () => {
  let tree: string;
  let oldOrigin: { url: string };
  let newOrigin: RunningOrigin;
  let oldEdge: { url: string };
  let newEdge: RunningEdge;
  const logKey = ownPurgeLogKey();

  beforeAll(async () => {
    if (!hasPrevious) return;
    tree = mkdtempSync(join(tmpdir(), 'strata-previous-'));
    cleanups.push(() => rmSync(tree, { recursive: true, force: true }));
    execFileSync('sh', ['-c', `git archive ${previousCommit} | tar -x -C "${tree}"`], { cwd: repoRoot });
    symlinkSync(join(repoRoot, 'node_modules'), join(tree, 'node_modules'), 'dir');
    const env = { REDIS_URL: inject('redisUrl'), PURGE_LOG_KEY: logKey };
    oldOrigin = await startPrevious(tree, 'origin/main.ts', 'ORIGIN_PORT', env);
    newOrigin = await originFor(env);
    cleanups.push(() => newOrigin.close());
    // Crossed over: each edge follows an origin of the other commit.
    oldEdge = await startPrevious(tree, 'edge/adapters/node/main.ts', 'EDGE_PORT', {
      ORIGIN_URL: newOrigin.url,
      EDGE_MAX_TTL_SECONDS: '600',
    });
    newEdge = await edgeFor(oldOrigin.url, { EDGE_MAX_TTL_SECONDS: '600' });
    cleanups.push(() => newEdge.close());
  }, 90_000);

  it.skipIf(!hasPrevious)(
    `an origin of the previous commit (${previousCommit}) and one of this commit share the purge log: writes at either reach the edges of both${hasPrevious ? '' : ` [skipped: commit ${previousCommit} is not in this clone (shallow clone?)]`}`,
    async () => {
      const edges = [oldEdge.url, newEdge.url];
      await put(oldOrigin.url, 'k', 'v1');
      for (const edge of edges) await serves(edge, 'k', 'v1');
      // Both edges hold v1 now; only the purge through the shared log can replace it.
      for (const edge of edges) expect((await read(edge, 'k')).cache).toBe('HIT');

      await put(newOrigin.url, 'k', 'v2');
      for (const edge of edges) await serves(edge, 'k', 'v2');

      await put(oldOrigin.url, 'k', 'v3');
      for (const edge of edges) await serves(edge, 'k', 'v3');

      const res = await fetch(`${newOrigin.url}/api/v1/cache/${ns}/k`, { method: 'DELETE' });
      await res.arrayBuffer();
      expect(res.status).toBe(200);
      for (const edge of edges) {
        await eventually(`${edge} to stop serving the deleted key`, async () => (await read(edge, 'k')).status === 404);
      }
    },
    60_000,
  );

  it.skipIf(!hasPrevious)(
    `an entry in a format version neither commit reads resets the edges of both${hasPrevious ? '' : ` [skipped: commit ${previousCommit} is not in this clone (shallow clone?)]`}`,
    async () => {
      const edges = [oldEdge.url, newEdge.url];
      await put(newOrigin.url, 'f', 'kept');
      for (const edge of edges) {
        await serves(edge, 'f', 'kept');
        expect((await read(edge, 'f')).cache).toBe('HIT');
      }
      // An entry as a later origin might write it: the next number, a format version 99.
      const [, incarnation] = newOrigin.bus.health().position.split(':');
      const redis = new Redis(inject('redisUrl'));
      try {
        const seq = await redis.hincrby(`${logKey}:meta`, 'seq', 1);
        await redis.xadd(`${logKey}:stream`, '*', 'v', '99', 'inc', incarnation!, 'seq', String(seq), 'data', '{}');
      } finally {
        redis.disconnect();
      }
      // A reset drops the whole tier: the next read at each edge goes to the origin again.
      for (const edge of edges) {
        await eventually(`${edge} to drop its tier`, async () => (await read(edge, 'f')).cache === 'MISS', 10_000, 20);
      }
      // And the log keeps flowing both ways after it.
      await put(oldOrigin.url, 'f', 'after');
      for (const edge of edges) await serves(edge, 'f', 'after');
    },
    60_000,
  );
});
