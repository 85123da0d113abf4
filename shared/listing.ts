import { z } from 'zod';
import { namespaceSchema } from './keys.ts';

/**
 * Wire shapes of key listing: `GET /api/v1/namespaces/{namespace}/keys`
 * and its first-page alias `GET /api/v1/cache/{namespace}/pattern/{pattern}`.
 */

/** Largest `count` of one listing call; a larger one is capped to it. */
export const maxListCount = 1000;

/** `count` when the caller gives none. */
export const defaultListCount = 100;

/** Longest opaque cursor accepted, in characters. */
export const maxCursorLength = 2048;

/**
 * Query of a listing: `match` (glob, default `*`), `cursor` (opaque, from
 * the previous page), `count` (work bound, 1 … capped at {@link maxListCount}).
 */
export const listQuerySchema = z.strictObject({
  match: z.string().min(1, 'match must not be empty').default('*'),
  cursor: z.string().min(1, 'cursor must not be empty').max(maxCursorLength, 'cursor is too long').optional(),
  count: z
    .string()
    .regex(/^[0-9]{1,9}$/, 'count must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(1, 'count must be at least 1'))
    .transform((n) => Math.min(n, maxListCount))
    .optional(),
});
export type ListQuery = z.infer<typeof listQuerySchema>;

/** One listed key. */
export const listedKeySchema = z.object({
  key: z.string(),
  /** Bytes of the stored value (as stored: after compression or encryption). */
  size_bytes: z.number().int().nonnegative(),
  /** Milliseconds of TTL left when the page was read. */
  ttl_ms: z.number().int().nonnegative(),
  /** Unix ms when the entry expires. */
  expires_at_ms: z.number().int().nonnegative(),
  /** The entry's version (its `ETag`). */
  version: z.number().int().nonnegative(),
  tags: z.array(z.string()),
});
export type ListedKeyBody = z.infer<typeof listedKeySchema>;

/** A page of a listing; `cursor` is null when the listing is done (a page may be empty while it is not). */
export const keyPageSchema = z.object({
  namespace: namespaceSchema,
  match: z.string(),
  keys: z.array(listedKeySchema),
  cursor: z.string().nullable(),
});
export type KeyPageBody = z.infer<typeof keyPageSchema>;
