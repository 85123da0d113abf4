import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CacheService } from '../../origin/cache-service.ts';
import { CacheProfiles, loadCacheProfiles } from '../../origin/lifecycle/profiles.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import type { TieredStore } from '../../origin/store/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'strata-profiles-unit-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, content: string) => {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
};

describe('CACHE_PROFILES', () => {
  it('a bad file stops start-up with one line naming the file and the field', () => {
    const bad = file('bad.json', JSON.stringify({ profiles: [{ namespace: 'character', ttl: 0 }] }));
    expect(() => loadCacheProfiles(bad)).toThrow(new RegExp(`^CACHE_PROFILES ${bad}: profiles\\.0\\.ttl: `));
    const consistency = file('c.json', JSON.stringify({ profiles: [{ namespace: 'x', consistency: 'linear' }] }));
    expect(() => loadCacheProfiles(consistency)).toThrow(/profiles\.0\.consistency: /);
    const notJson = file('n.json', '{nope');
    expect(() => loadCacheProfiles(notJson)).toThrow(/^CACHE_PROFILES .*n\.json: [^\n]+$/);
  });

  it('a key takes the profile of its longest matching prefix, else its namespace’s', () => {
    const profiles = new CacheProfiles([
      { namespace: 'character', ttl: 3600, consistency: 'strong' },
      { namespace: 'character', key_prefix: 'char:', ttl: 60, consistency: 'eventual' },
      { namespace: 'character', key_prefix: 'char:data:', ttl: 10, consistency: 'strong' },
    ]);
    expect(profiles.of('character', 'char:data:1')?.ttl).toBe(10);
    expect(profiles.of('character', 'char:1')?.ttl).toBe(60);
    expect(profiles.of('character', 'other')?.ttl).toBe(3600);
    expect(profiles.of('computation_results', 'x')).toBeUndefined();
  });

  it('a strong read is never answered from the fallback tier: CACHE_005 while the store is down', async () => {
    const inner = passThroughStore(memoryStore({ maxBytes: 1 << 20 }));
    // The store as the resilient facade answers while Redis is down: a degraded local copy.
    const down: TieredStore = {
      ...inner,
      getTiered: async (namespace, key) => {
        const read = await inner.getTiered(namespace, key);
        return read.entry ? { ...read, tier: 'origin-local', status: 'STALE', degraded: true } : read;
      },
    };
    const service = new CacheService({
      store: down,
      bus: new InProcessPurgeBus({ retainedEntries: 16 }),
      defaultTtlSeconds: 60,
      maxValueBytes: 1024,
      profiles: new CacheProfiles([{ namespace: 'character', consistency: 'strong' }]),
    });
    const value = new TextEncoder().encode('v');
    await service.set('character', 'k', { value, contentType: 'text/plain' });
    await service.set('other', 'k', { value, contentType: 'text/plain' });
    await expect(service.get('character', 'k')).rejects.toMatchObject({ code: 'CACHE_005', status: 503 });
    expect((await service.get('other', 'k')).entry).not.toBeNull();
    await expect(service.get('other', 'k', { strong: true })).rejects.toMatchObject({ code: 'CACHE_005' });
  });
});
