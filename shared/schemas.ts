import { z } from 'zod';
import { keySchema, namespaceSchema, tagSchema, ttlSecondsSchema } from './keys.ts';

/** Largest number of keys in one batch or purge request. */
export const maxBatchKeys = 1000;

/** How batch values travel in JSON: UTF-8 text (default) or base64 for arbitrary bytes. */
export const valueEncodingSchema = z.enum(['utf8', 'base64']).default('utf8');
export type ValueEncoding = z.infer<typeof valueEncodingSchema>;

/** `POST /api/v1/cache/{namespace}/batch/get` body. */
export const batchGetRequestSchema = z.strictObject({
  keys: z.array(keySchema).min(1, 'keys must not be empty').max(maxBatchKeys, `at most ${maxBatchKeys} keys`),
  encoding: valueEncodingSchema,
});
export type BatchGetRequest = z.infer<typeof batchGetRequestSchema>;

/** Response of batch get: found values (encoded as asked) and the keys that missed. */
export const batchGetResponseSchema = z.object({
  values: z.record(z.string(), z.string()),
  missing_keys: z.array(z.string()),
  encoding: z.enum(['utf8', 'base64']),
});
export type BatchGetResponse = z.infer<typeof batchGetResponseSchema>;

/** `POST /api/v1/cache/{namespace}/batch/set` body; `ttl` in seconds, default `CACHE_DEFAULT_TTL`. */
export const batchSetRequestSchema = z.strictObject({
  entries: z
    .record(keySchema, z.string())
    .refine((e) => Object.keys(e).length >= 1, 'entries must not be empty')
    .refine((e) => Object.keys(e).length <= maxBatchKeys, `at most ${maxBatchKeys} entries`),
  ttl: ttlSecondsSchema.optional(),
  encoding: valueEncodingSchema,
  content_type: z.string().max(256).optional(),
  /** Encrypt every entry at rest (docs/security.md). */
  encrypt: z.boolean().optional(),
  /** Store every entry compressed when that saves space (`true`), never (`false`), or by the origin's threshold (absent); docs/compression.md. */
  compress: z.boolean().optional(),
});
export type BatchSetRequest = z.infer<typeof batchSetRequestSchema>;

/** Response of batch set. */
export const batchSetResponseSchema = z.object({ stored_count: z.number().int() });
export type BatchSetResponse = z.infer<typeof batchSetResponseSchema>;

/** Response of a single PUT: the stored entry's version and expiry (Unix ms). */
export const putResponseSchema = z.object({
  namespace: z.string(),
  key: z.string(),
  version: z.number().int(),
  expires_at_ms: z.number().int(),
});
export type PutResponse = z.infer<typeof putResponseSchema>;

/**
 * `POST /api/v1/purge` body: purge by keys, tags (surrogate keys) or key
 * prefix within one namespace. At least one selector is required.
 */
export const purgeRequestSchema = z
  .strictObject({
    namespace: namespaceSchema,
    keys: z.array(keySchema).max(maxBatchKeys).default([]),
    tags: z.array(tagSchema).max(maxBatchKeys).default([]),
    prefix: keySchema.nullable().default(null),
  })
  .refine((p) => p.keys.length > 0 || p.tags.length > 0 || p.prefix !== null, 'give keys, tags or prefix');
export type PurgeRequest = z.infer<typeof purgeRequestSchema>;

/** Response of a purge: how many stored entries were removed at the origin. */
export const purgeResponseSchema = z.object({ purged_count: z.number().int(), seq: z.number().int() });
export type PurgeResponse = z.infer<typeof purgeResponseSchema>;

/**
 * One purge on the purge stream (origin → every edge). `seq` increases by one
 * per message within an `epoch` (one origin process lifetime). An edge drops
 * its entries for the selected keys whose version is below `version`; entries
 * at or above it were written by or after the change and stay.
 */
export const purgeMessageSchema = z.object({
  type: z.literal('purge'),
  epoch: z.string().min(1),
  seq: z.number().int().positive(),
  namespace: namespaceSchema,
  keys: z.array(z.string()),
  tags: z.array(z.string()),
  prefix: z.string().nullable(),
  /** Version floor: entries with a lower version are stale. */
  version: z.number().int().nonnegative(),
  action: z.enum(['delete', 'update']),
  /** Unix ms when the origin acknowledged the change (for purge-lag metrics). */
  ts: z.number().int(),
});
export type PurgeMessage = z.infer<typeof purgeMessageSchema>;

/** Tells an edge the gap since its last sequence cannot be replayed: drop the whole tier. */
export const resetMessageSchema = z.object({
  type: z.literal('reset'),
  epoch: z.string().min(1),
  seq: z.number().int().nonnegative(),
  reason: z.string(),
});
export type ResetMessage = z.infer<typeof resetMessageSchema>;

/** First message on a subscription: the hub's epoch and current sequence. */
export const helloMessageSchema = z.object({
  type: z.literal('hello'),
  epoch: z.string().min(1),
  seq: z.number().int().nonnegative(),
});
export type HelloMessage = z.infer<typeof helloMessageSchema>;

/** Any message on the purge stream. */
export const streamMessageSchema = z.discriminatedUnion('type', [
  purgeMessageSchema,
  resetMessageSchema,
  helloMessageSchema,
]);
export type StreamMessage = z.infer<typeof streamMessageSchema>;

/**
 * Invalidation event on Kafka (ARCHITECTURE.md §4). Message key is the
 * namespace or `namespace:key` so per-key order holds. Idempotent by `id`.
 */
export const invalidationEventSchema = z
  .strictObject({
    id: z.string().min(1).max(128),
    namespace: namespaceSchema,
    keys: z.array(keySchema).max(maxBatchKeys).default([]),
    tags: z.array(tagSchema).max(maxBatchKeys).default([]),
    prefix: keySchema.nullable().default(null),
    action: z.enum(['delete', 'update']),
    /** Unix ms when the producer created the event. */
    timestamp: z.number().int().nonnegative(),
  })
  .refine((e) => e.keys.length > 0 || e.tags.length > 0 || e.prefix !== null, 'give keys, tags or prefix');
export type InvalidationEvent = z.infer<typeof invalidationEventSchema>;
