import { afterEach, describe, expect, it } from 'vitest';
import { CacheService } from '../../origin/cache-service.ts';
import { InvalidationApplier } from '../../origin/invalidation/applier.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { resilientRedisFromConfig } from '../../origin/store/resilient-from-config.ts';
import type { TieredStore } from '../../origin/store/store.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';
import { CacheError } from '../../shared/errors.ts';
import type { PurgeMessage } from '../../shared/schemas.ts';

/**
 * A Kafka invalidation is committed only once Redis has it: while Redis is
 * unreachable the purge still reaches the edges, but the applier fails the
 * event so the consumer retries it instead of committing a purge that lives
 * only in this process's memory.
 */
describe('invalidation durability with Redis down', () => {
  let store: TieredStore | null = null;
  afterEach(async () => {
    await store?.close();
  });

  it('a Kafka purge accepted only by the local tier is failed for retry, yet reaches the edges; an in-process one is applied', async () => {
    const closedPort = await freePort();
    const config = parseConfig(originConfigSchema, {
      REDIS_URL: `redis://127.0.0.1:${closedPort}`,
      BREAKER_RECOVERY_INTERVAL_MS: '0',
    });
    store = resilientRedisFromConfig(config);
    const bus = new InProcessPurgeBus({ retainedEntries: 16 });
    const published: PurgeMessage[] = [];
    bus.observe((m) => published.push(m));
    const service = new CacheService({ store: store!, bus, defaultTtlSeconds: 60, maxValueBytes: 1024 });
    const outcomes: string[] = [];
    const applier = new InvalidationApplier({ service, dedupWindow: 10, onOutcome: (_s, o) => outcomes.push(o) });
    const event = {
      id: 'e1',
      namespace: 'ns',
      keys: ['k'],
      tags: [],
      prefix: null,
      action: 'delete' as const,
      timestamp: 0,
    };

    const failure = await applier.apply(event, 'kafka').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(CacheError);
    expect((failure as CacheError).code).toBe('CACHE_005');
    expect(published.map((m) => m.keys)).toEqual([['k']]);
    // Not remembered as applied: the redelivery is applied again, not skipped as a duplicate.
    await applier.apply(event, 'kafka').catch(() => {});
    expect(outcomes).toEqual(['failed', 'failed']);

    expect(await applier.apply({ ...event, id: 'e2' }, 'in-process')).toBe('applied');
  });
});
