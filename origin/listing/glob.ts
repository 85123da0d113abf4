import { CacheError } from '../../shared/errors.ts';
import { maxGlobBytes } from '../../shared/listing.ts';

/**
 * Glob patterns of key listing, with the semantics of Redis `SCAN MATCH` /
 * `KEYS` (Redis `util.c` `stringmatchlen`), so the memory store and the
 * Redis stores list the same keys for the same pattern:
 *
 * - `*` any run of bytes, `?` exactly one byte;
 * - `[abc]`, `[a-z]` (a reversed range is swapped), `[^a]` one byte in or
 *   not in the class; `\` escapes the next character, in or out of a class;
 * - everything else matches itself, case-sensitively.
 *
 * Matching is on the UTF-8 bytes of the key, as Redis does: `?` matches one
 * byte, so a key holding `é` (two bytes) needs `??` or `*` there.
 *
 * Stricter than Redis, to catch mistakes: an unclosed `[`, an empty class
 * (`[]`, `[^]`), a trailing lone `\`, a control character, or a pattern
 * longer than {@link maxGlobBytes} is refused with CACHE_004.
 */

type Token =
  | { readonly kind: 'byte'; readonly byte: number }
  | { readonly kind: 'any' }
  | { readonly kind: 'star' }
  | { readonly kind: 'class'; readonly negate: boolean; readonly ranges: readonly (readonly [number, number])[] };

/** A parsed glob: a byte matcher and the literal prefix every match starts with. */
export interface Glob {
  /** The pattern as given. */
  readonly source: string;
  /** The literal text before the first `*`, `?` or `[` (escapes resolved): every matching key starts with it. */
  readonly literalPrefix: string;
  /** True when the pattern is the literal prefix followed by one `*` (a prefix listing). */
  readonly isPrefix: boolean;
  /** True when `key` matches, on its UTF-8 bytes. */
  matches(key: string): boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
// biome-ignore lint/suspicious/noControlCharactersInRegex: the rule is about control characters
const controlCharacters = /[\u0000-\u001f\u007f-\u009f]/;

function malformed(pattern: string, reason: string): CacheError {
  return new CacheError('CACHE_004', `Invalid glob: ${reason}`, { details: { match: pattern, operation: 'list' } });
}

/**
 * Parses a glob.
 * @throws CacheError CACHE_004 for a malformed pattern (see the module comment).
 */
export function parseGlob(pattern: string): Glob {
  if (pattern.length === 0) throw malformed(pattern, 'pattern is empty');
  if (controlCharacters.test(pattern)) throw malformed(pattern, 'control characters are not allowed');
  if (!pattern.isWellFormed()) throw malformed(pattern, 'pattern must be well-formed UTF-8');
  const bytes = encoder.encode(pattern);
  if (bytes.byteLength > maxGlobBytes) throw malformed(pattern, `pattern is longer than ${maxGlobBytes} bytes`);
  const tokens: Token[] = [];
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i]!;
    if (b === 0x2a /* * */) {
      if (tokens.at(-1)?.kind !== 'star') tokens.push({ kind: 'star' });
      i++;
    } else if (b === 0x3f /* ? */) {
      tokens.push({ kind: 'any' });
      i++;
    } else if (b === 0x5c /* \ */) {
      if (i + 1 >= bytes.length) throw malformed(pattern, 'trailing \\ escapes nothing');
      tokens.push({ kind: 'byte', byte: bytes[i + 1]! });
      i += 2;
    } else if (b === 0x5b /* [ */) {
      i++;
      const negate = bytes[i] === 0x5e; /* ^ */
      if (negate) i++;
      const ranges: [number, number][] = [];
      let closed = false;
      while (i < bytes.length) {
        let c = bytes[i]!;
        if (c === 0x5d /* ] */) {
          closed = true;
          i++;
          break;
        }
        if (c === 0x5c) {
          if (i + 1 >= bytes.length) break;
          c = bytes[++i]!;
          ranges.push([c, c]);
          i++;
        } else if (c >= 0x80 && bytes[i + 1] === 0x2d /* - */) {
          // A character of several bytes: its last byte would start a byte range (as Redis reads it), which no
          // reader of the pattern expects; refused rather than matched in a way the pattern does not show.
          throw malformed(pattern, 'a character of more than one byte cannot start a range in [...]');
        } else if (bytes[i + 1] === 0x2d /* - */ && i + 2 < bytes.length) {
          // As Redis: the byte after '-' ends the range, whatever it is (even ']' or '\\').
          const end = bytes[i + 2]!;
          ranges.push(c <= end ? [c, end] : [end, c]);
          i += 3;
        } else {
          ranges.push([c, c]);
          i++;
        }
      }
      if (!closed) throw malformed(pattern, 'unclosed [');
      if (ranges.length === 0) throw malformed(pattern, 'empty character class');
      tokens.push({ kind: 'class', negate, ranges });
    } else {
      tokens.push({ kind: 'byte', byte: b });
      i++;
    }
  }
  const firstWild = tokens.findIndex((t) => t.kind !== 'byte');
  const literalBytes = (firstWild === -1 ? tokens : tokens.slice(0, firstWild)).map((t) =>
    t.kind === 'byte' ? t.byte : 0,
  );
  const literalPrefix = decoder.decode(cutToCharacter(Uint8Array.from(literalBytes)));
  const isPrefix = firstWild !== -1 && firstWild === tokens.length - 1 && tokens[firstWild]!.kind === 'star';
  return {
    source: pattern,
    literalPrefix,
    isPrefix,
    matches: (key) => matchTokens(tokens, encoder.encode(key)),
  };
}

// A class may split a multi-byte character: keep the prefix to whole characters.
function cutToCharacter(bytes: Uint8Array): Uint8Array {
  let end = bytes.length;
  let back = end - 1;
  while (back >= 0 && (bytes[back]! & 0xc0) === 0x80) back--;
  if (back >= 0) {
    const lead = bytes[back]!;
    const need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    if (end - back < need) end = back;
  }
  return bytes.subarray(0, end);
}

function matchOne(token: Token, byte: number): boolean {
  switch (token.kind) {
    case 'byte':
      return token.byte === byte;
    case 'any':
      return true;
    case 'class': {
      const inside = token.ranges.some(([lo, hi]) => byte >= lo && byte <= hi);
      return inside !== token.negate;
    }
    case 'star':
      return false;
  }
}

/**
 * Wildcard matching with backtracking to the last `*` only: O(pattern ×
 * key) steps in the worst case, never exponential (a pattern of many stars
 * cannot be used to stall the origin).
 */
function matchTokens(tokens: readonly Token[], key: Uint8Array): boolean {
  let t = 0;
  let k = 0;
  let starT = -1;
  let starK = 0;
  while (k < key.length) {
    const token = tokens[t];
    if (token && token.kind === 'star') {
      starT = t++;
      starK = k;
    } else if (token && matchOne(token, key[k]!)) {
      t++;
      k++;
    } else if (starT !== -1) {
      t = starT + 1;
      k = ++starK;
    } else {
      return false;
    }
  }
  while (t < tokens.length && tokens[t]!.kind === 'star') t++;
  return t === tokens.length;
}
