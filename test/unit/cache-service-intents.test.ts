import { describe, expect, it } from 'vitest';
import { CacheService } from '../../origin/cache-service.ts';
import type { PublishOptions, PurgeBus, PurgeInput, PurgeScope } from '../../origin/purge/bus.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import type { TieredStore } from '../../origin/store/store.ts';
import { eventually } from '../support/wait.ts';

/**
 * The cache service's side of intents, with a bus that records what it is
 * asked (an in-process bus underneath, plus `intend`) and a fake log that
 * can refuse appends: the order intent → store write → purge that closes it,
 * and what happens when the store write fails or is accepted only locally.
 */
function recordingBus(options: { publishFails?: () => boolean } = {}) {
  const inner = new InProcessPurgeBus({ retainedEntries: 64 });
  const calls: string[] = [];
  const closed: (string | null | undefined)[] = [];
  /** What `publish` and `intend` were handed, as given. */
  const inputs: PurgeInput[] = [];
  const scopes: PurgeScope[] = [];
  let intents = 0;
  const bus: PurgeBus = {
    publish: async (input: PurgeInput, publishOptions?: PublishOptions) => {
      if (options.publishFails?.()) {
        calls.push('publish failed');
        throw new Error('log unreachable');
      }
      calls.push(`publish ${input.keys.join(',')} closes ${publishOptions?.closes ?? '-'}`);
      closed.push(publishOptions?.closes);
      inputs.push(input);
      return await inner.publish(input);
    },
    intend: async (scope: PurgeScope) => {
      intents += 1;
      scopes.push(scope);
      calls.push(`intent ${scope.keys.join(',')}`);
      return `${intents}-0`;
    },
    subscribe: (from, listener) => inner.subscribe(from, listener),
    read: (after, limit) => inner.read(after, limit),
    observe: (observer) => inner.observe(observer),
    health: () => inner.health(),
    get subscribers() {
      return inner.subscribers;
    },
    retainedEntries: inner.retainedEntries,
    relayLocally: () => calls.push('relayed locally'),
    close: () => inner.close(),
  };
  return { bus, calls, closed, inputs, scopes };
}

/** A service over a memory store and a recording bus. */
function overMemory() {
  const memory = memoryStore({ maxBytes: 1 << 20 });
  const { bus, calls, inputs, scopes } = recordingBus();
  const service = new CacheService({
    store: passThroughStore(memory, memory),
    bus,
    defaultTtlSeconds: 60,
    maxValueBytes: 1024,
  });
  return { memory, bus, calls, inputs, scopes, service };
}

const text = (s: string) => ({ value: new TextEncoder().encode(s), contentType: 'text/plain' });

describe('CacheService intents', () => {
  it('logs the intent before the store write and closes it with the change’s purge', async () => {
    const memory = memoryStore({ maxBytes: 1 << 20 });
    const { bus, calls } = recordingBus();
    const store: TieredStore = {
      ...passThroughStore(memory, memory),
      set: async (namespace, key, input) => {
        calls.push(`store ${key}`);
        return await memory.set(namespace, key, input);
      },
    };
    const service = new CacheService({ store, bus, defaultTtlSeconds: 60, maxValueBytes: 1024 });
    await service.set('ns', 'a', text('A'));
    await service.delete('ns', 'a');
    await service.purge('ns', { keys: ['b'], tags: ['t'], prefix: null });
    expect(calls).toEqual([
      'intent a',
      'store a',
      'publish a closes 1-0',
      'intent a',
      'publish a closes 2-0',
      'intent b',
      'publish b closes 3-0',
    ]);
  });

  it('a purge its source delivers again until it returns (a Kafka event) logs no intent: only its purge', async () => {
    const { memory, calls, service } = overMemory();
    await memory.set('ns', 'x', { ...text('X'), ttlMs: 60_000, tags: [] });
    await service.purge(
      'ns',
      { keys: ['x'], tags: [], prefix: null },
      {
        acknowledgedAtMs: 1_000,
        originRegion: 'a',
        redelivered: true,
      },
    );
    expect(calls).toEqual(['publish x closes -']);
    expect(await memory.get('ns', 'x')).toBeNull();
  });

  it('a failed store write leaves its intent open (for a replica to recover) and logs no purge', async () => {
    const memory = memoryStore({ maxBytes: 1 << 20 });
    const { bus, calls } = recordingBus();
    const store: TieredStore = {
      ...passThroughStore(memory, memory),
      set: async () => {
        throw new Error('store timed out');
      },
    };
    const service = new CacheService({ store, bus, defaultTtlSeconds: 60, maxValueBytes: 1024 });
    await expect(service.set('ns', 'a', text('A'))).rejects.toMatchObject({ code: 'CACHE_005' });
    expect(calls).toEqual(['intent a']);
  });

  it('a change accepted only locally stays accepted and its intent is closed once the log takes it again', async () => {
    const memory = memoryStore({ maxBytes: 1 << 20 });
    let logDown = true;
    const { bus, calls, closed } = recordingBus({ publishFails: () => logDown });
    const store: TieredStore = { ...passThroughStore(memory, memory), acceptedLocally: () => true };
    const service = new CacheService({ store, bus, defaultTtlSeconds: 60, maxValueBytes: 1024 });
    const entry = await service.set('ns', 'a', text('A'));
    expect(entry.version).toBeGreaterThan(0);
    expect(calls).toEqual(['intent a', 'publish failed', 'relayed locally']);
    logDown = false;
    await eventually('the intent to be closed', () => closed.includes('1-0'), 5_000);
    // Closed with an empty purge: it drops nothing at any edge.
    expect(calls.at(-1)).toBe('publish  closes 1-0');
  });

  it('recovering an intent purges each key at the version the store holds, evicting nothing, and closes the intent', async () => {
    const { memory, bus, calls, service } = overMemory();
    const held = await memory.set('ns', 'a', {
      value: new TextEncoder().encode('A'),
      contentType: 'x',
      ttlMs: 60_000,
      tags: [],
    });
    const published: PurgeInput[] = [];
    bus.observe((m) => published.push(m));
    await service.recoverIntent({ namespace: 'ns', keys: ['a', 'gone'], tags: [], prefix: null }, '9-0');
    expect((await memory.get('ns', 'a'))?.version).toBe(held.version);
    expect(calls).toEqual(['publish a closes -', 'publish gone closes 9-0']);
    // 'a' at its own version (older copies go, it stays); 'gone' at the store's floor, above anything it held.
    expect(published.map((p) => [p.keys, p.version === held.version])).toEqual([
      [['a'], true],
      [['gone'], false],
    ]);
  });

  it('recovering a purge intent (tags or prefix) applies the purge again', async () => {
    const { memory, calls, service } = overMemory();
    await memory.set('ns', 't1', {
      value: new TextEncoder().encode('T'),
      contentType: 'x',
      ttlMs: 60_000,
      tags: ['t'],
    });
    await service.recoverIntent({ namespace: 'ns', keys: [], tags: ['t'], prefix: null }, '9-0');
    expect(await memory.get('ns', 't1')).toBeNull();
    expect(calls).toEqual(['publish  closes 9-0']);
  });

  it('another region’s invalidation keeps its region in the intent, and a recovered intent keeps it in every purge it logs', async () => {
    const { memory, inputs, scopes, service } = overMemory();
    await service.purge(
      'ns',
      { keys: ['x'], tags: [], prefix: null },
      {
        action: 'update',
        acknowledgedAtMs: 1_000,
        originRegion: 'a',
      },
    );
    expect(scopes).toEqual([{ namespace: 'ns', keys: ['x'], tags: [], prefix: null, origin_region: 'a' }]);
    await memory.set('ns', 'held', { value: new TextEncoder().encode('H'), contentType: 'x', ttlMs: 60_000, tags: [] });
    inputs.length = 0;
    // Recovered here, an intent of region a's purge must not be forwarded back to region a as this region's own.
    await service.recoverIntent(
      { namespace: 'ns', keys: ['held', 'gone'], tags: [], prefix: null, origin_region: 'a' },
      '9-0',
    );
    await service.recoverIntent({ namespace: 'ns', keys: [], tags: ['t'], prefix: null, origin_region: 'a' }, '10-0');
    await service.recoverIntent({ namespace: 'ns', keys: [], tags: [], prefix: null, origin_region: 'a' }, '11-0');
    expect(inputs.length).toBe(4);
    for (const input of inputs) expect(input).toMatchObject({ origin_region: 'a' });
    // This region's own intents stay unmarked.
    inputs.length = 0;
    await service.recoverIntent({ namespace: 'ns', keys: ['held'], tags: [], prefix: null }, '12-0');
    expect(inputs.map((i) => 'origin_region' in i)).toEqual([false]);
  });
});
