import { z } from 'zod';

/** Namespace rule: `[a-z0-9_-]{1,64}` (walking-skeleton issue). */
export const namespaceSchema = z.string().regex(/^[a-z0-9_-]{1,64}$/, 'namespace must match [a-z0-9_-]{1,64}');

/** Largest key, in bytes of UTF-8. */
export const maxKeyBytes = 512;

const encoder = new TextEncoder();

/** Byte length of a string as UTF-8. */
export function utf8Bytes(value: string): number {
  return encoder.encode(value).byteLength;
}

// C0 controls, DEL and C1 controls (Unicode category Cc).
// biome-ignore lint/suspicious/noControlCharactersInRegex: the rule is about control characters
const controlCharacters = /[\u0000-\u001f\u007f-\u009f]/;

/**
 * Key rule: 1–512 bytes of UTF-8, no control characters (C0, DEL, C1), and no
 * lone surrogates (which cannot be encoded as UTF-8).
 */
export const keySchema = z
  .string()
  .min(1, 'key must not be empty')
  .refine((k) => !controlCharacters.test(k), 'key must not contain control characters')
  .refine((k) => k.isWellFormed(), 'key must be well-formed UTF-8')
  .refine((k) => utf8Bytes(k) <= maxKeyBytes, `key must be at most ${maxKeyBytes} bytes of UTF-8`);

/** Default largest value, in bytes (1 MiB). */
export const defaultMaxValueBytes = 1024 * 1024;

/** Longest TTL a write may ask for, in seconds (one year). */
export const maxTtlSeconds = 365 * 24 * 3600;

/** Shortest TTL a write may ask for, in seconds. */
export const minTtlSeconds = 1;

/** A TTL in whole seconds, 1 … one year, as a JSON number. */
export const ttlSecondsSchema = z
  .number({ error: 'ttl must be a whole number of seconds' })
  .int('ttl must be a whole number of seconds')
  .min(minTtlSeconds, 'ttl must be at least 1 second')
  .max(maxTtlSeconds, `ttl must be at most ${maxTtlSeconds} seconds`);

/** Decimal digits only (no sign, exponent, hex or spaces): a TTL as a query string writes it. */
const wholeSeconds = /^[0-9]{1,12}$/;

/** A TTL in a query string: decimal digits only (no sign, exponent, hex or spaces), then {@link ttlSecondsSchema}. */
export const ttlQuerySchema = z
  .string()
  .regex(wholeSeconds, 'ttl must be a whole number of seconds')
  .transform(Number)
  .pipe(ttlSecondsSchema);

/** One tag's rule, as regular-expression source: the schema below and the write path's plain check share it. */
const tagRule = '[A-Za-z0-9_:.-]{1,128}';

/** A tag (surrogate key): same character rules as a namespace but up to 128 chars, plus `:` and `.`. */
export const tagSchema = z.string().regex(new RegExp(`^${tagRule}$`), `tag must match ${tagRule}`);

/** Largest number of tags on one entry. */
export const maxTagsPerEntry = 32;

/**
 * Parses the `tags` query value of a PUT: a comma list with no empty item or
 * space (`a,b`); the empty string means no tags.
 * @returns the tags, validated with {@link tagSchema}.
 */
export const tagListSchema = z
  .string()
  .transform((s) => (s === '' ? [] : s.split(',')))
  .pipe(z.array(tagSchema).max(maxTagsPerEntry, `at most ${maxTagsPerEntry} tags`));

/** Joins the parts of a composite key: NUL, which neither a namespace, a key nor a tag may contain. */
const compositeSeparator = '\u0000';

/**
 * The one composite key of a namespace and a key (or a tag) in in-process
 * maps: the edge tier, coalescer and purge ledger, the origin's memory store
 * and local fallback tier. Two different pairs never give the same string,
 * because the separator (NUL) is refused in namespaces, keys and tags.
 */
export function storageKey(namespace: string, key: string): string {
  return `${namespace}${compositeSeparator}${key}`;
}

/** What every {@link storageKey} of `namespace` starts with (for prefix scans). */
export function storageKeyPrefix(namespace: string): string {
  return `${namespace}${compositeSeparator}`;
}

/** The namespace part of a {@link storageKey}. */
export function namespaceOfStorageKey(composite: string): string {
  return composite.slice(0, composite.indexOf(compositeSeparator));
}

const namespacePattern = /^[a-z0-9_-]{1,64}$/;

/**
 * Fast check of the namespace rule, for the hot path; the schema above stays
 * the source of the error message.
 */
export function isValidNamespace(namespace: string): boolean {
  return namespacePattern.test(namespace);
}

/**
 * Fast check of the key rule, for the hot path: a UTF-16 string of at most
 * 170 code units is at most 510 bytes of UTF-8, so short keys skip encoding.
 */
export function isValidKey(key: string): boolean {
  if (key.length === 0 || controlCharacters.test(key) || !key.isWellFormed()) return false;
  return key.length <= 170 || utf8Bytes(key) <= maxKeyBytes;
}

/**
 * Fast parse of a `ttl` query value, for the write path: the seconds when
 * {@link ttlQuerySchema} accepts it, else undefined (the schema then says
 * why). Same rule, without zod's per-call work.
 */
export function plainTtlSeconds(text: string): number | undefined {
  if (!wholeSeconds.test(text)) return undefined;
  const seconds = Number(text);
  return seconds >= minTtlSeconds && seconds <= maxTtlSeconds ? seconds : undefined;
}

const plainTags = new RegExp(`^(?:${tagRule}(?:,${tagRule}){0,${maxTagsPerEntry - 1}})?$`);

/**
 * Fast parse of a `tags` query value, for the write path: the tags when
 * {@link tagListSchema} accepts it (the empty string: none), else undefined
 * (the schema then says why).
 */
export function plainTagList(text: string): string[] | undefined {
  if (text === '') return [];
  return plainTags.test(text) ? text.split(',') : undefined;
}
