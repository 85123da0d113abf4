import { afterEach, describe, expect, inject, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { cleanEnv, type Spawned, spawnEntry } from '../support/spawn-entry.ts';
import { edgeFor, originFor, ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * A real origin process that SIGKILLs itself at an injected point of a write
 * (`STRATA_FAULT`), beside a healthy replica on the same Redis and purge log,
 * with an edge of the healthy replica holding the old value.
 */
const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function crashingReplica(fault: string, env: Record<string, string>): Promise<{ url: string; proc: Spawned }> {
  const port = await freePort();
  const proc = spawnEntry('origin/main.ts', cleanEnv({ ...env, ORIGIN_PORT: String(port), STRATA_FAULT: fault }));
  cleanups.push(async () => {
    if (proc.child.exitCode === null && proc.child.signalCode === null) await proc.stop();
  });
  const url = `http://127.0.0.1:${port}`;
  await eventually('the crashing replica to listen', async () => (await fetch(`${url}/health`)).ok, 20_000, 50);
  return { url, proc };
}

const put = (base: string, key: string, body: string) =>
  fetch(`${base}/api/v1/cache/crash/${key}?ttl=600`, { method: 'PUT', body });
const read = async (base: string, key: string) => (await fetch(`${base}/api/v1/cache/crash/${key}`)).text();

describe('an origin killed in the middle of a write', () => {
  it('after the log append, before the acknowledgement: the purge is in the log, so edges of the other replica drop the old value', async () => {
    const env = { REDIS_URL: inject('redisUrl'), PURGE_LOG_KEY: ownPurgeLogKey(), LOG_LEVEL: 'silent' };
    const healthy = await originFor(env);
    cleanups.push(() => healthy.close());
    const edge: RunningEdge = await edgeFor(healthy.url, { EDGE_MAX_TTL_SECONDS: '600' });
    cleanups.push(() => edge.close());
    const crashing = await crashingReplica('crash-after-log-append', env);
    await put(healthy.url, 'k', 'old');
    expect(await read(edge.url, 'k')).toBe('old');
    await expect(put(crashing.url, 'k', 'new')).rejects.toThrow();
    expect(await crashing.proc.exited).toBeNull();
    // Not acknowledged, but in the store and in the log: the healthy replica relays the purge.
    await eventually('the edge to serve the new value', async () => (await read(edge.url, 'k')) === 'new', 5_000);
  });

  it('after the store write, before the log append: nothing was acknowledged, and the edge cap bounds how long the old value is served', async () => {
    const env = { REDIS_URL: inject('redisUrl'), PURGE_LOG_KEY: ownPurgeLogKey(), LOG_LEVEL: 'silent' };
    const healthy = await originFor(env);
    cleanups.push(() => healthy.close());
    const capSeconds = 2;
    const edge: RunningEdge = await edgeFor(healthy.url, { EDGE_MAX_TTL_SECONDS: String(capSeconds) });
    cleanups.push(() => edge.close());
    const crashing = await crashingReplica('crash-after-store-write', env);
    await put(healthy.url, 'k', 'old');
    expect(await read(edge.url, 'k')).toBe('old');
    const crashedAt = Date.now();
    await expect(put(crashing.url, 'k', 'new')).rejects.toThrow();
    expect(await crashing.proc.exited).toBeNull();
    // No purge was logged (the documented crash window): the old copy lives until the edge's cap, not longer.
    await eventually('the edge to serve the new value', async () => (await read(edge.url, 'k')) === 'new', 10_000, 50);
    // The copy was cached before the crash, so it is gone by the cap; the margin covers a loaded machine's scheduling.
    expect(Date.now() - crashedAt).toBeLessThanOrEqual(capSeconds * 1000 + 2_000);
  });
});
