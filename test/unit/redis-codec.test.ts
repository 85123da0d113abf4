import { describe, expect, it } from 'vitest';
import { decodeEntry } from '../../origin/store/redis-codec.ts';

/**
 * `decodeEntry` turns an `HMGET` reply (value fields in `entryFields` order:
 * version, data, content type, created, expires, tags, stale-while-revalidate,
 * stale-if-error, soft-purged at, refresh) into an entry. Pure function, no Redis.
 */
const b = (s: string) => Buffer.from(s);
const base = [b('7'), b('value'), b('text/plain'), b('1000'), b('5000'), b('a,b')];

describe('decodeEntry', () => {
  it('leaves absent lifecycle fields absent, not undefined', () => {
    const entry = decodeEntry([...base, null, null, null, null], 4_000);
    expect(entry).toStrictEqual({
      value: new Uint8Array(Buffer.from('value')),
      contentType: 'text/plain',
      version: 7,
      createdAtMs: 1000,
      expiresAtMs: 5000,
      tags: ['a', 'b'],
    });
    expect(Object.keys(entry!)).toEqual(['value', 'contentType', 'version', 'createdAtMs', 'expiresAtMs', 'tags']);
  });

  it('reads every lifecycle field that is stored, in order after the tags', () => {
    const entry = decodeEntry([...base, b('100'), b('300'), b('4500'), b('2000')], 4_000);
    expect(entry).toMatchObject({
      staleWhileRevalidateMs: 100,
      staleIfErrorMs: 300,
      softPurgedAtMs: 4500,
      refreshMs: 2000,
    });
    expect(Object.keys(entry!).slice(6)).toEqual([
      'staleWhileRevalidateMs',
      'staleIfErrorMs',
      'softPurgedAtMs',
      'refreshMs',
    ]);
  });

  it('answers null past the expiry plus the longer grace window, and when a required field is missing', () => {
    const graced = [...base, b('100'), b('300'), null, null];
    expect(decodeEntry(graced, 5_299)).not.toBeNull();
    expect(decodeEntry(graced, 5_300)).toBeNull();
    expect(decodeEntry([...base, null, null, null, null], 5_000)).toBeNull();
    expect(decodeEntry([null, b('value'), null, null, b('5000'), null, null, null, null, null], 0)).toBeNull();
  });

  it('defaults the content type, creation time and tags when they are not stored', () => {
    const entry = decodeEntry([b('1'), b(''), null, null, b('5000'), b(''), null, null, null, null], 0);
    expect(entry).toMatchObject({ contentType: 'application/octet-stream', createdAtMs: 0, tags: [] });
  });
});
