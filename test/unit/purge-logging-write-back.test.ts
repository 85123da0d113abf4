import { describe, expect, it } from 'vitest';
import type { PurgeInput } from '../../origin/purge/bus.ts';
import type { StoredEntry } from '../../origin/store/store.ts';
import { purgeLoggingWriteBack, type WriteBack } from '../../origin/store/write-back.ts';

const entry = { version: 42, value: new Uint8Array(), contentType: 'text/plain', tags: [] } as unknown as StoredEntry;

/** A write-back that answers what it is told (this module's only collaborator). */
const fixed = (answer: boolean): WriteBack => ({
  setIfNewer: async () => answer,
  deleteIfOlder: async () => answer,
});

describe('purgeLoggingWriteBack', () => {
  it('logs a purge for every replayed change, written or not, with the change version as floor', async () => {
    const logged: PurgeInput[] = [];
    const log = async (purge: PurgeInput) => logged.push(purge);
    expect(await purgeLoggingWriteBack(fixed(true), log).setIfNewer('ns', 'a', entry)).toBe(true);
    expect(await purgeLoggingWriteBack(fixed(false), log).deleteIfOlder('ns', 'b', 7)).toBe(false);
    expect(logged.map(({ namespace, keys, version, action }) => ({ namespace, keys, version, action }))).toEqual([
      { namespace: 'ns', keys: ['a'], version: 42, action: 'update' },
      { namespace: 'ns', keys: ['b'], version: 7, action: 'delete' },
    ]);
  });

  it('rejects when the log rejects, so the change stays dirty and is replayed again', async () => {
    const failing = purgeLoggingWriteBack(fixed(true), async () => {
      throw new Error('log down');
    });
    await expect(failing.setIfNewer('ns', 'a', entry)).rejects.toThrow('log down');
  });
});
