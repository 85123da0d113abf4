import { describe, expect, it } from 'vitest';
import { NewestRead } from '../../origin/purge/newest-read.ts';
import { deferred } from '../support/fixtures.ts';

/** Two overlapping reads, the older started first; `olderFirst` says which one's answer comes first. */
async function overlapping(olderFirst: boolean) {
  const reads = new NewestRead<number>();
  const kept: number[] = [];
  const older = deferred<number>();
  const newer = deferred<number>();
  const first = reads.read(
    () => older.promise,
    (v) => kept.push(v),
  );
  const second = reads.read(
    () => newer.promise,
    (v) => kept.push(v),
  );
  const answers: boolean[] = [];
  if (olderFirst) {
    older.resolve(1);
    answers.push(await first);
  }
  newer.resolve(0);
  answers.push(await second);
  if (!olderFirst) {
    older.resolve(1);
    answers.push(await first);
  }
  return { kept, answers };
}

describe('NewestRead', () => {
  it('an older read finishing after a newer one is dropped', async () => {
    expect(await overlapping(false)).toEqual({ kept: [0], answers: [true, false] });
  });

  it('an older read finishing before a newer one is kept, then replaced', async () => {
    expect(await overlapping(true)).toEqual({ kept: [1, 0], answers: [true, true] });
  });

  it('reads finishing in order are all kept, and a failed read keeps nothing nor blocks the next', async () => {
    const reads = new NewestRead<number>();
    const kept: number[] = [];
    expect(
      await reads.read(
        async () => 1,
        (v) => kept.push(v),
      ),
    ).toBe(true);
    await expect(
      reads.read(
        () => Promise.reject(new Error('down')),
        (v) => kept.push(v),
      ),
    ).rejects.toThrow('down');
    expect(
      await reads.read(
        async () => 2,
        (v) => kept.push(v),
      ),
    ).toBe(true);
    expect(kept).toEqual([1, 2]);
  });
});
