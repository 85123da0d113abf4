import { describe, expect, it } from 'vitest';
import { authorizationTokens, rememberedAuthorizations } from '../../edge/fast-hit.ts';
import { bearerToken } from '../../shared/auth.ts';

describe('authorizationTokens (the fast path remembers a parsed Authorization value)', () => {
  const values = [
    'Bearer abc.def.ghi',
    'bearer abc.def.ghi',
    'Bearer   abc.def-_~+/=  ',
    'Bearer abc def',
    'Basic dXNlcjpwYXNz',
    'Bearer',
    'Bearer ',
    'abc.def.ghi',
    'Bearer abc%def',
    '',
  ];

  it('finds the same token as bearerToken, first time and remembered', () => {
    const tokenOf = authorizationTokens();
    for (const value of values) {
      expect([value, tokenOf(value)]).toEqual([value, bearerToken(value)]);
      expect([value, tokenOf(value)]).toEqual([value, bearerToken(value)]);
    }
    expect(tokenOf(null)).toBeUndefined();
    expect(tokenOf(undefined)).toBeUndefined();
  });

  it('answers a value seen before (another string with the same characters) alike', () => {
    const tokenOf = authorizationTokens();
    const first = tokenOf(`Bearer ${'t'.repeat(40)}`);
    // A different string object with the same characters: found by value.
    const again = tokenOf(`Bearer ${'t'.repeat(20)}${'t'.repeat(20)}`);
    expect(first).toBe('t'.repeat(40));
    expect(again).toBe(first);
  });

  it('still parses correctly past its bound (it starts over)', () => {
    const tokenOf = authorizationTokens();
    for (let i = 0; i < rememberedAuthorizations * 2 + 3; i++) expect(tokenOf(`Bearer tok-${i}`)).toBe(`tok-${i}`);
    expect(tokenOf('Bearer tok-0')).toBe('tok-0');
    expect(tokenOf('Basic tok-0')).toBeUndefined();
  });
});
