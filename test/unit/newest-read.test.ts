import { describe, expect, it } from 'vitest';
import { NewestRead } from '../../origin/purge/newest-read.ts';

/** A load whose answer the test releases. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

describe('NewestRead', () => {
  it('an older read finishing after a newer one is dropped', async () => {
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
    newer.resolve(0);
    expect(await second).toBe(true);
    older.resolve(1);
    expect(await first).toBe(false);
    expect(kept).toEqual([0]);
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
    const failing = deferred<number>();
    const failed = reads.read(
      () => failing.promise,
      (v) => kept.push(v),
    );
    failing.reject(new Error('down'));
    await expect(failed).rejects.toThrow('down');
    expect(
      await reads.read(
        async () => 2,
        (v) => kept.push(v),
      ),
    ).toBe(true);
    expect(kept).toEqual([1, 2]);
  });

  it('an older read finishing before a newer one is kept, then replaced', async () => {
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
    older.resolve(1);
    expect(await first).toBe(true);
    newer.resolve(0);
    expect(await second).toBe(true);
    expect(kept).toEqual([1, 0]);
  });
});
