import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { maxTtlSeconds, plainTagList, plainTtlSeconds, tagListSchema, ttlQuerySchema } from '../../shared/keys.ts';

/** fast-check prints the seed and the shrunk counterexample on failure. */
const runs = { numRuns: 2_000 };

/** What a schema makes of a value: its result, or refused. */
const viaSchema = <T>(result: { success: true; data: T } | { success: false }) =>
  result.success ? result.data : undefined;

// Strings near the rule's edges: digits of every length, signs, spaces, exponents, the bounds and one past them.
const ttlText = fc.oneof(
  fc.stringMatching(/^[0-9]{1,14}$/),
  fc.constantFrom(
    '0',
    '1',
    String(maxTtlSeconds),
    String(maxTtlSeconds + 1),
    '+5',
    '-1',
    ' 5',
    '5 ',
    '1e3',
    '0x10',
    '',
  ),
  fc.string(),
);

// Tag lists of 0–34 tags, tags of 0–130 characters from the tag alphabet plus a few it refuses.
const tagChar = fc.constantFrom(...'aZ09_:.-', ' ', '/', 'é', ',');
const tagsText = fc.oneof(
  fc
    .array(fc.string({ unit: fc.constantFrom(...'aZ09_:.-'), minLength: 1, maxLength: 130 }), { maxLength: 34 })
    .map((t) => t.join(',')),
  fc.array(fc.string({ unit: tagChar, maxLength: 6 }), { maxLength: 5 }).map((t) => t.join(',')),
  fc.string(),
);

describe('the write path parses ttl and tags without zod, by the same rules', () => {
  it('plainTtlSeconds accepts exactly what ttlQuerySchema accepts, with the same seconds', () => {
    fc.assert(
      fc.property(ttlText, (text) => {
        expect(plainTtlSeconds(text)).toBe(viaSchema(ttlQuerySchema.safeParse(text)));
      }),
      runs,
    );
  });

  it('plainTagList accepts exactly what tagListSchema accepts, with the same tags', () => {
    fc.assert(
      fc.property(tagsText, (text) => {
        expect(plainTagList(text)).toEqual(viaSchema(tagListSchema.safeParse(text)));
      }),
      runs,
    );
  });
});
