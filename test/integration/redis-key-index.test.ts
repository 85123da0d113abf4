import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { redisStore } from '../../origin/store/redis.ts';
import { entryKey } from '../../origin/store/redis-codec.ts';
import type { StrataCommands } from '../../origin/store/redis-commands.ts';
import { standaloneIndexKeys } from '../../origin/store/redis-key-index.ts';
import { redisWriteBack } from '../../origin/store/write-back.ts';
import { eventually } from '../support/wait.ts';

const input = (value: string, ttlMs = 60_000) => ({
  value: new TextEncoder().encode(value),
  contentType: 'text/plain',
  ttlMs,
  tags: [],
});

describe('the per-namespace key index on real Redis', () => {
  let store: ReturnType<typeof redisStore>;
  let counter = 0;
  const fresh = () => `idx-${process.pid}-${Date.now().toString(36)}-${counter++}`;
  const indexed = async (namespace: string) =>
    (await store.client.zrange(standaloneIndexKeys(namespace)[0], 0, -1)).map((k) =>
      k.slice(entryKey(namespace, '').length),
    );

  beforeAll(() => {
    store = redisStore({ url: inject('redisUrl') });
  });
  afterAll(async () => {
    await store?.close();
  });

  it('holds exactly the live entries: written by the same script as each write and delete', async () => {
    const ns = fresh();
    await store.set(ns, 'b', input('b'));
    await store.set(ns, 'a', input('a'));
    await store.setMany(ns, new Map([['c', input('c')]]));
    expect(await indexed(ns)).toEqual(['a', 'b', 'c']);
    await store.delete(ns, 'b');
    expect(await indexed(ns)).toEqual(['a', 'c']);
    await store.purge(ns, { keys: ['a'], tags: [], prefix: null });
    expect(await indexed(ns)).toEqual(['c']);
  });

  it('conditional writes (swap) keep the index too, so a prefix purge finds what they wrote', async () => {
    const ns = fresh();
    const swapped = await store.swap!(ns, [
      { key: 'cas:1', expectedVersion: 0, action: { kind: 'set', input: input('1') } },
      { key: 'cas:2', expectedVersion: 0, action: { kind: 'set', input: input('2') } },
    ]);
    expect(swapped.kind).toBe('swapped');
    expect(await indexed(ns)).toEqual(['cas:1', 'cas:2']);
    // A conflicting swap changes nothing, the index included.
    const conflict = await store.swap!(ns, [
      { key: 'cas:3', expectedVersion: 42, action: { kind: 'set', input: input('3') } },
    ]);
    expect(conflict.kind).toBe('conflict');
    expect(await indexed(ns)).toEqual(['cas:1', 'cas:2']);
    const v1 = (await store.get(ns, 'cas:1'))!.version;
    await store.swap!(ns, [{ key: 'cas:1', expectedVersion: v1, action: { kind: 'delete' } }]);
    expect(await indexed(ns)).toEqual(['cas:2']);
    await store.purge(ns, { keys: [], tags: [], prefix: 'cas:' });
    expect(await store.get(ns, 'cas:2')).toBeNull();
  });

  it('drops expired members as later writes come, so the index does not grow with expired keys', async () => {
    const ns = fresh();
    for (let i = 0; i < 5; i++) await store.set(ns, `short${i}`, input('s', 1));
    await eventually('short entries expired', async () => (await store.get(ns, 'short4')) === null);
    await store.set(ns, 'long', input('l'));
    expect(await indexed(ns)).toEqual(['long']);
  });

  it('a prefix purge finds its keys in the index, written-back ones included, and nothing else', async () => {
    const ns = fresh();
    await store.set(ns, 'user:1', input('1'));
    await store.set(ns, 'user:2', input('2'));
    await store.set(ns, 'users', input('s'));
    await store.set(ns, 'order:1', input('o'));
    const now = Date.now();
    const replayed = await redisWriteBack(store.client as typeof store.client & StrataCommands).setIfNewer(
      ns,
      'user:3',
      {
        ...input('3'),
        version: 1,
        createdAtMs: now,
        expiresAtMs: now + 60_000,
      },
    );
    expect(replayed).toBe(true);
    const purged = await store.purge(ns, { keys: [], tags: [], prefix: 'user:' });
    expect(purged.removed).toBe(3);
    expect(await indexed(ns)).toEqual(['order:1', 'users']);
    expect(await store.get(ns, 'users')).not.toBeNull();
  });
});
