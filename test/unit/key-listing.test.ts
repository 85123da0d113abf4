import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseGlob } from '../../origin/listing/glob.ts';
import { decodeListCursor, encodeListCursor } from '../../origin/listing/key-listing.ts';
import {
  clusterTopology,
  decodeClusterCursor,
  encodeClusterCursor,
  scanCursor,
} from '../../origin/store/redis-listing.ts';
import { globJsonPattern, globPathJsonPattern } from '../../shared/listing.ts';

describe('glob matching (Redis SCAN MATCH semantics)', () => {
  const cases: [string, string, boolean][] = [
    ['user:*', 'user:1', true],
    ['user:*', 'users', false],
    ['u?er', 'user', true],
    ['u?er', 'uer', false],
    ['[ab]c', 'bc', true],
    ['[^ab]c', 'bc', false],
    ['[a-c]x', 'bx', true],
    ['[c-a]x', 'bx', true],
    ['\\*', '*', true],
    ['\\*', 'a', false],
    ['*a*a*a*a*a*b', 'a'.repeat(500), false],
    ['?', 'é', false],
    ['??', 'é', true],
    ['caf[é]', 'café', false],
  ];
  it.each(cases)('%s against %s is %s', (glob, key, expected) => {
    expect(parseGlob(glob).matches(key)).toBe(expected);
  });

  it('gives the literal prefix a sorted index can start from, escapes resolved', () => {
    expect(parseGlob('user\\*:1*').literalPrefix).toBe('user*:1');
    expect(parseGlob('user:*').isPrefix).toBe(true);
    expect(parseGlob('user:*:x').isPrefix).toBe(false);
    expect(parseGlob('exact').literalPrefix).toBe('exact');
  });

  it.each(['', '[abc', '[]', '[^]', 'trailing\\', 'a\u0001', 'x'.repeat(1025)])('refuses %j with CACHE_004', (glob) => {
    expect(() => parseGlob(glob)).toThrow(expect.objectContaining({ code: 'CACHE_004' }));
  });
});

describe('the glob pattern the OpenAPI description states', () => {
  const chars = fc.constantFrom('a', 'z', 'é', '€', '*', '?', '[', ']', '^', '-', '\\', ':', '/', '.', '\u0001');
  const accepted = (glob: string) => {
    try {
      parseGlob(glob);
      return true;
    } catch {
      return false;
    }
  };

  // The server reads a class byte by byte, as Redis does: a character of several bytes followed by '-' would start
  // a range from its last byte, so it is refused (escaped, as a range's end, or on its own); one-byte ones are not.
  it.each([
    ['[\\é-]a', false],
    ['[\\é-]]', false],
    ['[\\a-]a', true],
    ['[a-é-]]', false],
    ['[a-é]', true],
    ['[é-z]', false],
    ['[-é]', true],
    ['[€]x', true],
  ])('%s: accepted %s, by the server and by the query form alike', (glob, expected) => {
    expect(accepted(glob)).toBe(expected);
    expect(new RegExp(globJsonPattern, 'u').test(glob)).toBe(expected);
  });

  it('property: a string matches the query form exactly when the server accepts it as a glob', () => {
    const described = new RegExp(globJsonPattern, 'u');
    fc.assert(
      fc.property(fc.array(chars, { minLength: 1, maxLength: 10 }), (cs) => {
        const glob = cs.join('');
        expect(described.test(glob)).toBe(accepted(glob));
      }),
      { numRuns: 5000 },
    );
  });

  it('property: the path form matches exactly the accepted globs with no slash, backslash or dot segment', () => {
    const described = new RegExp(globPathJsonPattern, 'u');
    fc.assert(
      fc.property(fc.array(chars, { minLength: 1, maxLength: 10 }), (cs) => {
        const glob = cs.join('');
        const pathSafe = !/[/\\]/.test(glob) && glob !== '.' && glob !== '..';
        expect(described.test(glob)).toBe(pathSafe && accepted(glob));
      }),
      { numRuns: 5000 },
    );
  });
});

describe('listing cursors', () => {
  it('an origin cursor round-trips and is refused for another namespace or glob', () => {
    const cursor = encodeListCursor('ns', 'a*', '1234');
    expect(decodeListCursor(cursor, 'ns', 'a*')).toBe('1234');
    expect(() => decodeListCursor(cursor, 'other', 'a*')).toThrow(expect.objectContaining({ code: 'CACHE_004' }));
    expect(() => decodeListCursor(cursor, 'ns', 'b*')).toThrow(expect.objectContaining({ code: 'CACHE_004' }));
    expect(() => decodeListCursor('%%%', 'ns', 'a*')).toThrow(expect.objectContaining({ code: 'CACHE_004' }));
  });

  it('a SCAN cursor is decimal digits', () => {
    expect(scanCursor(null)).toBe('0');
    expect(scanCursor('42')).toBe('42');
    for (const bad of ['0', '-1', '1e3', 'abc', '1'.repeat(21)]) {
      expect(() => scanCursor(bad)).toThrow(expect.objectContaining({ code: 'CACHE_004' }));
    }
  });

  const slots = (split: number, owners: [string, string]) =>
    Array.from({ length: 16384 }, (_, slot) => [slot < split ? owners[0] : owners[1]]);

  it('a Cluster cursor names its master and topology; a changed slot map answers 503 CACHE_005', () => {
    const before = clusterTopology(slots(8192, ['10.0.0.1:7000', '10.0.0.2:7000']))!;
    expect(before.masters).toEqual(['10.0.0.1:7000', '10.0.0.2:7000']);
    const cursor = encodeClusterCursor({ fingerprint: before.fingerprint, master: 1, scan: '17' });
    expect(decodeClusterCursor(cursor, before)).toEqual({ fingerprint: before.fingerprint, master: 1, scan: '17' });

    const resharded = clusterTopology(slots(8000, ['10.0.0.1:7000', '10.0.0.2:7000']))!;
    const failedOver = clusterTopology(slots(8192, ['10.0.0.1:7000', '10.0.0.3:7000']))!;
    for (const now of [resharded, failedOver]) {
      expect(now.fingerprint).not.toBe(before.fingerprint);
      expect(() => decodeClusterCursor(cursor, now)).toThrow(
        expect.objectContaining({ code: 'CACHE_005', status: 503 }),
      );
    }
    expect(() => decodeClusterCursor(`${before.fingerprint}.9.0`, before)).toThrow(
      expect.objectContaining({ code: 'CACHE_004' }),
    );
    expect(clusterTopology(Array.from({ length: 16384 }, () => undefined))).toBeNull();
  });
});
