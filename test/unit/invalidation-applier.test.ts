import { describe, expect, it } from 'vitest';
import { CacheService } from '../../origin/cache-service.ts';
import { decodeInvalidation, InvalidationApplier } from '../../origin/invalidation/applier.ts';
import { inProcessSource } from '../../origin/invalidation/in-process-source.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import type { Store } from '../../origin/store/store.ts';
import { CacheError } from '../../shared/errors.ts';

const event = (fields: Record<string, unknown> = {}) => ({
  id: 'e1',
  namespace: 'ns',
  keys: ['a'],
  action: 'delete',
  timestamp: 1_000,
  ...fields,
});

function setup(store: Store = memoryStore({ maxBytes: 1 << 20 })) {
  const bus = new InProcessPurgeBus({ retainedEntries: 100 });
  const service = new CacheService({ store: passThroughStore(store), bus, defaultTtlSeconds: 60, maxValueBytes: 1024 });
  const outcomes: string[] = [];
  const applier = new InvalidationApplier({
    service,
    dedupWindow: 2,
    onOutcome: (_source, outcome) => outcomes.push(outcome),
  });
  return { bus, store, applier, outcomes };
}

describe('decodeInvalidation', () => {
  it('accepts a valid event and fills the defaults', () => {
    const result = decodeInvalidation(Buffer.from(JSON.stringify(event())));
    expect(result).toEqual({ ok: true, event: { ...event(), tags: [], prefix: null } });
  });

  it.each([
    ['a null value', null, /empty/],
    ['text that is not JSON', '{nope', /not JSON/],
    ['an event with no selector', JSON.stringify(event({ keys: [] })), /keys, tags or prefix/],
    ['an unknown action', JSON.stringify(event({ action: 'drop' })), /action/],
    ['an unknown field', JSON.stringify(event({ extra: 1 })), /invalid event/],
  ])('rejects %s with a one-line reason', (_name, raw, reason) => {
    const result = decodeInvalidation(raw);
    expect(result.ok).toBe(false);
    if (!result.ok) {
      expect(result.reason).toMatch(reason);
      expect(result.reason).not.toContain('\n');
    }
  });
});

describe('InvalidationApplier', () => {
  it('applies an event once per id within the window, and again once the id has left it', async () => {
    const { bus, applier, outcomes } = setup();
    const parsed = (id: string) => ({ ...event({ id }), tags: [], prefix: null }) as never;
    expect(await applier.apply(parsed('e1'), 'kafka')).toBe('applied');
    expect(await applier.apply(parsed('e1'), 'kafka')).toBe('duplicate');
    expect(bus.health().seq).toBe(1);
    await applier.apply(parsed('e2'), 'kafka');
    await applier.apply(parsed('e3'), 'kafka');
    // Window of 2: e1 was evicted, so a late redelivery is applied again (purges are idempotent).
    expect(await applier.apply(parsed('e1'), 'kafka')).toBe('applied');
    expect(outcomes).toEqual(['applied', 'duplicate', 'applied', 'applied', 'applied']);
  });

  it('logs an intent for a purge from the in-process source, none for one from Kafka (which delivers it again)', async () => {
    const bus = new InProcessPurgeBus({ retainedEntries: 100 });
    const intents: string[] = [];
    Object.assign(bus, { intend: async (scope: { keys: string[] }) => `${intents.push(scope.keys.join(','))}-0` });
    const store = memoryStore({ maxBytes: 1 << 20 });
    const service = new CacheService({
      store: passThroughStore(store),
      bus,
      defaultTtlSeconds: 60,
      maxValueBytes: 1024,
    });
    const applier = new InvalidationApplier({ service, dedupWindow: 8 });
    const parsed = (id: string, key: string) => ({ ...event({ id, keys: [key] }), tags: [], prefix: null }) as never;
    expect(await applier.apply(parsed('e1', 'posted'), 'in-process')).toBe('applied');
    expect(await applier.apply(parsed('e2', 'consumed'), 'kafka')).toBe('applied');
    expect(intents).toEqual(['posted']);
  });

  it('does not remember an event whose purge failed, so its redelivery is applied', async () => {
    const store = memoryStore({ maxBytes: 1 << 20 });
    let failing = true;
    const flaky: Store = {
      ...store,
      kind: store.kind,
      purge: (ns, selector) => (failing ? Promise.reject(new Error('down')) : store.purge(ns, selector)),
    };
    const { bus, applier, outcomes } = setup(flaky);
    const parsed = { ...event(), tags: [], prefix: null } as never;
    await expect(applier.apply(parsed, 'kafka')).rejects.toMatchObject({ code: 'CACHE_005' });
    expect(bus.health().seq).toBe(0);
    failing = false;
    expect(await applier.apply(parsed, 'kafka')).toBe('applied');
    expect(bus.health().seq).toBe(1);
    expect(outcomes).toEqual(['failed', 'applied']);
  });

  it('reports, for an applied event, its lag since the event timestamp and the time its own apply took (the store purge within it)', async () => {
    const store = memoryStore({ maxBytes: 1 << 20 });
    const slow: Store = {
      ...store,
      kind: store.kind,
      purge: async (ns, selector) => {
        await new Promise((r) => setTimeout(r, 30));
        return await store.purge(ns, selector);
      },
    };
    const bus = new InProcessPurgeBus({ retainedEntries: 100 });
    const service = new CacheService({
      store: passThroughStore(slow),
      bus,
      defaultTtlSeconds: 60,
      maxValueBytes: 1024,
    });
    const reported: { outcome: string; lagMs?: number; applyMs?: number }[] = [];
    const applier = new InvalidationApplier({
      service,
      dedupWindow: 2,
      now: () => 10_000,
      onOutcome: (_source, outcome, lagMs, applyMs) => reported.push({ outcome, lagMs, applyMs }),
    });
    const parsed = { ...event({ timestamp: 4_000 }), tags: [], prefix: null } as never;
    expect(await applier.apply(parsed, 'kafka')).toBe('applied');
    expect(await applier.apply(parsed, 'kafka')).toBe('duplicate');
    const [applied, duplicate] = reported;
    expect(applied).toMatchObject({ outcome: 'applied', lagMs: 6_000 });
    // The apply covers the store purge (held 30 ms; timers may fire a millisecond early).
    expect(applied!.applyMs).toBeGreaterThanOrEqual(29);
    expect(duplicate).toEqual({ outcome: 'duplicate', lagMs: undefined, applyMs: undefined });
  });

  it('a second apply of an id in flight waits for the first and then skips it: the store purges once', async () => {
    const store = memoryStore({ maxBytes: 1 << 20 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let purges = 0;
    const gated: Store = {
      ...store,
      kind: store.kind,
      purge: async (ns, selector) => {
        purges++;
        await gate;
        return await store.purge(ns, selector);
      },
    };
    const { bus, applier, outcomes } = setup(gated);
    const parsed = { ...event(), tags: [], prefix: null } as never;
    const first = applier.apply(parsed, 'kafka');
    const second = applier.apply(parsed, 'kafka');
    let secondDone = false;
    void second.then(() => (secondDone = true));
    // The second waits while the first is held at the store; it has not purged on its own.
    await new Promise((r) => setImmediate(r));
    expect(purges).toBe(1);
    expect(secondDone).toBe(false);
    release();
    expect(await first).toBe('applied');
    expect(await second).toBe('duplicate');
    expect(purges).toBe(1);
    expect(bus.health().seq).toBe(1);
    expect(outcomes).toEqual(['applied', 'duplicate']);
  });

  it('when the apply in flight fails, the apply that waited for it applies the event itself', async () => {
    const store = memoryStore({ maxBytes: 1 << 20 });
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    let purges = 0;
    const failingOnce: Store = {
      ...store,
      kind: store.kind,
      purge: async (ns, selector) => {
        purges++;
        if (purges === 1) {
          await gate;
          throw new Error('down');
        }
        return await store.purge(ns, selector);
      },
    };
    const { bus, applier, outcomes } = setup(failingOnce);
    const parsed = { ...event(), tags: [], prefix: null } as never;
    const first = applier.apply(parsed, 'kafka');
    const second = applier.apply(parsed, 'kafka');
    release();
    await expect(first).rejects.toMatchObject({ code: 'CACHE_005' });
    expect(await second).toBe('applied');
    expect(purges).toBe(2);
    expect(bus.health().seq).toBe(1);
    expect(outcomes).toEqual(['failed', 'applied']);
  });
});

describe('in-process source', () => {
  it('validates with the shared schema and applies through the same applier', async () => {
    const { bus, applier } = setup();
    const source = inProcessSource(applier);
    await source.start();
    await source.ready();
    await expect(source.publish(event({ namespace: 'Bad!' }))).rejects.toBeInstanceOf(CacheError);
    expect(await source.publish(event())).toBe('applied');
    expect(await source.publish(event())).toBe('duplicate');
    expect(bus.health().seq).toBe(1);
    await source.stop();
    await expect(source.publish(event({ id: 'e9' }))).rejects.toMatchObject({ code: 'CACHE_005' });
  });
});
