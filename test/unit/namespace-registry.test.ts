import { describe, expect, it } from 'vitest';
import { CacheService } from '../../origin/cache-service.ts';
import { NamespaceRegistry } from '../../origin/namespaces/registry.ts';
import { memoryNamespaceVersions, type NamespaceVersionStore } from '../../origin/namespaces/versions.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';

/**
 * An origin that starts while the store cannot answer knows no namespace
 * versions: its first reads after the store returns must not show entries of
 * a flushed version while the retry timer has yet to fire. A version store
 * that fails its first reads stands in for the outage (a fake of the one
 * seam; the real Redis one is covered by the namespace integration tests).
 */
function outageAtStart(inner: NamespaceVersionStore, failures: number): NamespaceVersionStore & { calls: number } {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    bump: (...args) => inner.bump(...args),
    history: (namespace) => inner.history(namespace),
    async all() {
      calls++;
      if (calls <= failures) throw new Error('store unreachable');
      return await inner.all();
    },
  };
}

describe('namespace versions after a start during an outage', () => {
  it('a read waits for the versions instead of showing an entry of a flushed version', async () => {
    const bus = new InProcessPurgeBus({ retainedEntries: 16 });
    const memory = memoryStore({ maxBytes: 1 << 20 });
    const store = passThroughStore(memory, memory);
    const versions = memoryNamespaceVersions();
    // Before this origin started: an entry, then a flush of its namespace whose entries are not reclaimed yet.
    const old = await memory.set('ns', 'k', { value: new Uint8Array([1]), contentType: 'x', ttlMs: 60_000, tags: [] });
    await versions.bump('ns', 'admin', old.version + 1);
    const flaky = outageAtStart(versions, 1);
    const registry = new NamespaceRegistry(flaky, bus);
    const errors: unknown[] = [];
    await registry.loadOrRetry(3_600_000, (error) => errors.push(error));
    expect(errors).toHaveLength(1);
    expect(registry.loaded).toBe(false);
    const service = new CacheService({ store, bus, namespaces: registry, defaultTtlSeconds: 60, maxValueBytes: 1024 });
    const [single, batch] = await Promise.all([service.get('ns', 'k'), service.getMany('ns', ['k'])]);
    expect(single.entry).toBeNull();
    expect(batch.found.size).toBe(0);
    expect(registry.loaded).toBe(true);
    expect(flaky.calls, 'concurrent reads share one load').toBe(2);
    registry.close();
  });

  it('a read answers CACHE_005 while the versions still cannot be read, and the next one succeeds', async () => {
    const bus = new InProcessPurgeBus({ retainedEntries: 16 });
    const memory = memoryStore({ maxBytes: 1 << 20 });
    await memory.set('ns', 'k', { value: new Uint8Array([1]), contentType: 'x', ttlMs: 60_000, tags: [] });
    const registry = new NamespaceRegistry(outageAtStart(memoryNamespaceVersions(), 2), bus);
    await registry.loadOrRetry(3_600_000, () => {});
    const service = new CacheService({
      store: passThroughStore(memory, memory),
      bus,
      namespaces: registry,
      defaultTtlSeconds: 60,
      maxValueBytes: 1024,
    });
    await expect(service.get('ns', 'k')).rejects.toMatchObject({ code: 'CACHE_005' });
    expect((await service.get('ns', 'k')).entry?.version).toBeGreaterThan(0);
    registry.close();
  });
});
