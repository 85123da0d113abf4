import { afterEach, describe, expect, inject, it } from 'vitest';
import { pollPurgeSource } from '../../edge/purge-sources/poll.ts';
import { canaryNamespace } from '../../origin/purge/canary.ts';
import type { PurgeMessage } from '../../shared/schemas.ts';
import { edgeFor, originFor, ownPurgeLogKey } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

/**
 * The staleness canary on a real origin over the test Redis (region purge
 * log), with a streaming edge and a polling one following it.
 */
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface ReadyCanary {
  at: string;
  write_ms: number;
  edges: number;
  delivered: number;
  max_lag_ms: number | null;
  error: string | null;
}

const histogramCount = (text: string) => {
  const line = text.split('\n').find((l) => l.startsWith('strata_purge_canary_lag_seconds_count'));
  return line === undefined ? undefined : Number(line.split(' ').at(-1));
};

describe('the staleness canary', () => {
  it('times its write to every edge, streaming and polling, and shows it in /ready and the metrics', async () => {
    const env = {
      REDIS_URL: inject('redisUrl'),
      PURGE_LOG_KEY: ownPurgeLogKey(),
      PURGE_CANARY_SECONDS: '1',
    };
    const origin = await originFor(env);
    cleanups.push(() => origin.close());
    const edge = await edgeFor(origin.url);
    cleanups.push(() => edge.close());
    const polled: PurgeMessage[] = [];
    const poller = pollPurgeSource({ originUrl: origin.url, pollMs: 100, pageSize: 50 }).subscribe({
      onPurge: (message) => polled.push(message),
      onReset: () => {},
    });
    cleanups.push(() => poller.close());

    // A probe that started with the streaming edge connected: it reached that edge, and the poller read it too.
    const canary = await eventually(
      'a probe delivered to the streaming edge and read by the poller',
      async () => {
        const body = (await (await fetch(`${origin.url}/ready`)).json()) as { canary: ReadyCanary | null };
        const c = body.canary;
        return c && c.error === null && c.edges === 1 && c.delivered >= 2 ? c : null;
      },
      15_000,
      100,
    );
    expect(canary.max_lag_ms).toBeGreaterThanOrEqual(0);
    expect(canary.write_ms).toBeGreaterThanOrEqual(0);
    expect(Number.isNaN(Date.parse(canary.at))).toBe(false);
    expect(polled.some((m) => m.namespace === canaryNamespace)).toBe(true);
    const metrics = await (await fetch(`${origin.url}/metrics`)).text();
    expect(histogramCount(metrics)).toBeGreaterThanOrEqual(2);
  });

  it('is off by default: no canary in /ready and no canary writes', async () => {
    const origin = await originFor({ REDIS_URL: inject('redisUrl'), PURGE_LOG_KEY: ownPurgeLogKey() });
    cleanups.push(() => origin.close());
    const body = (await (await fetch(`${origin.url}/ready`)).json()) as Record<string, unknown>;
    expect(body.status).toBe('ready');
    expect('canary' in body).toBe(false);
    expect(origin.bus.health().seq).toBe(0);
  });
});
