import fc from 'fast-check';
import { expect, it } from 'vitest';
import { parseGlob } from '../../origin/listing/glob.ts';
import { listKeys } from '../../origin/listing/key-listing.ts';
import type { EntryInput, KeyPage, Store } from '../../origin/store/store.ts';

const enc = new TextEncoder();
const input = (value: string, over: Partial<EntryInput> = {}): EntryInput => ({
  value: enc.encode(value),
  contentType: 'text/plain',
  ttlMs: 60_000,
  tags: [],
  ...over,
});

let counter = 0;
const freshNamespace = () => `list-${process.pid}-${Date.now().toString(36)}-${counter++}`;

/** Every page of a store-level listing, following cursors to the end (bounded, so a broken cursor fails the test). */
async function storePages(store: Store, namespace: string, match: string, count: number): Promise<KeyPage[]> {
  const pages: KeyPage[] = [];
  let cursor: string | null = null;
  do {
    const page: KeyPage = await store.listKeys!(namespace, { match, cursor, count });
    pages.push(page);
    cursor = page.cursor;
    if (pages.length > 100_000) throw new Error('listing never ended');
  } while (cursor !== null);
  return pages;
}

/** Every key of an origin-level listing (flushed versions hidden), following the opaque cursors to the end. */
async function originKeys(store: Store, floor: number, namespace: string, match: string, count: number) {
  const keys: string[] = [];
  let cursor: string | undefined;
  for (let calls = 0; calls < 100_000; calls++) {
    const page = await listKeys({ store, floor: () => floor }, namespace, { match, cursor, count });
    keys.push(...page.keys.map((k) => k.key));
    if (page.cursor === null) return keys;
    cursor = page.cursor;
  }
  throw new Error('listing never ended');
}

// Few characters, so random globs match often; glob metacharacters are legal in keys.
const keyChar = fc.constantFrom('a', 'b', 'c', ':', '-', 'é', '*', '[', '?');
const keyArb = fc.array(keyChar, { minLength: 1, maxLength: 6 }).map((cs) => cs.join(''));
const globToken = fc.oneof(
  fc.constantFrom('a', 'b', 'c', ':', '-', 'é', '\\*', '\\[', '\\?'),
  fc.constantFrom('*', '?', '[ab]', '[^a]', '[a-b]', '[-:]'),
);
const globArb = fc.array(globToken, { minLength: 1, maxLength: 5 }).map((ts) => ts.join(''));

/**
 * Key listing checks of the `Store` conformance suite: every driver lists by
 * glob with cursors, bounded pages, its metadata, and the guarantee of
 * `SCAN` (a key present throughout is listed), here with no key twice and
 * no flushed entry at the origin level.
 */
export function keyListingConformance(getStore: () => Store): void {
  it('a listing pages through exactly the matching keys of one namespace, each once, with size, expiry, version and tags', async () => {
    const store = getStore();
    const ns = freshNamespace();
    const other = freshNamespace();
    const written = new Map<string, number>();
    for (let i = 0; i < 25; i++) {
      const key = i % 2 === 0 ? `user:${i}` : `order:${i}`;
      written.set(key, (await store.set(ns, key, input(`v${i}`, { tags: i === 0 ? ['first', 'users'] : [] }))).version);
    }
    await store.set(other, 'user:0', input('elsewhere'));
    const pages = await storePages(store, ns, 'user:*', 3);
    const listed = pages.flatMap((p) => p.keys);
    expect(listed.map((k) => k.key).sort()).toEqual([...written.keys()].filter((k) => k.startsWith('user:')).sort());
    const first = listed.find((k) => k.key === 'user:0')!;
    expect(first).toMatchObject({ sizeBytes: 2, version: written.get('user:0'), tags: ['first', 'users'] });
    expect(first.expiresAtMs).toBeGreaterThan(Date.now());
    for (const page of pages) expect(page.keys.length).toBeLessThanOrEqual(25);
  });

  it('deleted and expired entries are not listed', async () => {
    const store = getStore();
    const ns = freshNamespace();
    await store.set(ns, 'kept', input('k'));
    await store.set(ns, 'deleted', input('d'));
    await store.set(ns, 'short', input('s', { ttlMs: 1 }));
    await store.delete(ns, 'deleted');
    const deadline = Date.now() + 2_000;
    while ((await store.get(ns, 'short')) !== null && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    const keys = (await storePages(store, ns, '*', 10)).flatMap((p) => p.keys.map((k) => k.key));
    expect(keys).toEqual(['kept']);
  });

  it('a malformed glob or cursor is refused with CACHE_004', async () => {
    const store = getStore();
    const ns = freshNamespace();
    await expect(store.listKeys!(ns, { match: 'a[bc', cursor: null, count: 10 })).rejects.toMatchObject({
      code: 'CACHE_004',
    });
    await store.set(ns, 'a', input('a'));
    await store.set(ns, 'b', input('b'));
    const first = await listKeys({ store, floor: () => 0 }, ns, { match: '*', count: 1 });
    // A cursor is bound to its namespace and glob: reused elsewhere it is refused, not misread.
    const cursor = first.cursor;
    expect(cursor).not.toBeNull();
    await expect(listKeys({ store, floor: () => 0 }, ns, { match: 'a*', cursor: cursor! })).rejects.toMatchObject({
      code: 'CACHE_004',
    });
    await expect(listKeys({ store, floor: () => 0 }, ns, { match: '*', cursor: 'not a cursor' })).rejects.toMatchObject(
      {
        code: 'CACHE_004',
      },
    );
    await expect(
      listKeys({ store, floor: () => 0 }, ns, { match: '*', cursor: 'eyJub3QiOiJvdXJzIn0' }),
    ).rejects.toMatchObject({ code: 'CACHE_004' });
  });

  it('property: over random key sets and globs, the pages together hold every matching key once and none of a flushed version', async () => {
    const store = getStore();
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(keyArb, { maxLength: 12 }),
        fc.uniqueArray(keyArb, { maxLength: 12 }),
        globArb,
        // SCAN's COUNT walks the whole keyspace of a shared server: tiny counts make Redis listings long, not harder.
        fc.constantFrom(2, 20, 200, 1000),
        async (beforeFlush, afterFlush, glob, count) => {
          const ns = freshNamespace();
          const versions = new Map<string, number>();
          const before = await store.setMany(ns, new Map(beforeFlush.map((k) => [k, input(k)])));
          for (const [k, e] of before) versions.set(k, e.version);
          const floor = Math.max(0, ...versions.values()) + 1;
          const after = await store.setMany(ns, new Map(afterFlush.map((k) => [k, input(k)])));
          for (const [k, e] of after) versions.set(k, e.version);
          const matcher = parseGlob(glob);
          const expected = [...versions]
            .filter(([k, v]) => v >= floor && matcher.matches(k))
            .map(([k]) => k)
            .sort();
          const listed = await originKeys(store, floor, ns, glob, count);
          expect(new Set(listed).size).toBe(listed.length);
          expect([...listed].sort()).toEqual(expected);
        },
      ),
      { numRuns: 100 },
    );
  }, 180_000);
}
