import { z } from 'zod';
import { keySchema, namespaceSchema, tagSchema, ttlSecondsSchema } from './keys.ts';
import { maxGraceSeconds, type StaleReason } from './lifecycle.ts';

/** A grace window in a JSON body: whole seconds, 0 to a year. */
export const graceSecondsSchema = z
  .number({ error: 'a grace window must be a whole number of seconds' })
  .int('a grace window must be a whole number of seconds')
  .min(0)
  .max(maxGraceSeconds);

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

/**
 * Why an entry was served stale, as `X-Cache-Stale-Reason` says on a single
 * read: `revalidating` (past its TTL, within `stale-while-revalidate`, RFC
 * 5861 §3), `soft-purge` (a soft purge ended its fresh lifetime), `error`
 * (the origin failed; an edge's single read only).
 */
export const staleReasonSchema = z.enum([
  'revalidating',
  'error',
  'soft-purge',
] as const satisfies readonly StaleReason[]);

/**
 * Response of batch get: found values (encoded as asked) and the keys that
 * missed; `stale_reasons` names each found key served stale with its
 * reason, and is absent when every value is fresh.
 */
export const batchGetResponseSchema = z.object({
  values: z.record(z.string(), z.string()),
  missing_keys: z.array(z.string()),
  encoding: z.enum(['utf8', 'base64']),
  stale_reasons: z.record(z.string(), staleReasonSchema).optional().meta({
    description:
      'Each key served stale, with why (as X-Cache-Stale-Reason on a single read); absent when every value is fresh.',
  }),
});
export type BatchGetResponse = z.infer<typeof batchGetResponseSchema>;

/** `POST /api/v1/cache/{namespace}/batch/set` body; `ttl` in seconds, default `CACHE_DEFAULT_TTL`. */
export const batchSetRequestSchema = z.strictObject({
  entries: z
    .record(keySchema, z.string())
    .refine((e) => Object.keys(e).length >= 1, 'entries must not be empty')
    .refine((e) => Object.keys(e).length <= maxBatchKeys, `at most ${maxBatchKeys} entries`),
  ttl: ttlSecondsSchema.optional(),
  /** Seconds an entry may be served stale after `ttl` while it is refreshed (RFC 5861 §3). */
  stale_while_revalidate: graceSecondsSchema.optional(),
  /** Seconds an entry may be served stale after `ttl` when the origin fails (RFC 5861 §4). */
  stale_if_error: graceSecondsSchema.optional(),
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
  /** When the origin stored it (Unix ms); `Age` counts from here. */
  created_at_ms: z.number().int().optional(),
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
    /** Soft purge: mark the entries stale (served in grace, flagged `soft-purge`) instead of removing them. */
    soft: z.boolean().default(false),
  })
  .refine((p) => p.keys.length > 0 || p.tags.length > 0 || p.prefix !== null, 'give keys, tags or prefix');
export type PurgeRequest = z.infer<typeof purgeRequestSchema>;

/** Response of a purge: how many stored entries were removed at the origin. */
export const purgeResponseSchema = z.object({ purged_count: z.number().int(), seq: z.number().int() });
export type PurgeResponse = z.infer<typeof purgeResponseSchema>;

/**
 * A position in a purge log: opaque to everyone but the purge bus that
 * issued it (it names the log, the log's incarnation and an offset, see
 * `origin/purge/position.ts`). An edge stores the last one it applied and
 * sends it back (`Last-Event-ID`) to resume; only the bus compares positions.
 */
export const purgePositionSchema = z
  .string()
  .min(1)
  .max(512)
  .regex(/^[\x21-\x7e]+$/, 'a purge position is printable ASCII without spaces');
export type PurgePosition = z.infer<typeof purgePositionSchema>;

/**
 * One purge on the purge stream (origin → every edge), at `position` in the
 * purge log. An edge drops its entries for the selected keys whose version is
 * below `version`; entries at or above it were written by or after the
 * change and stay.
 */
export const purgeMessageSchema = z.object({
  type: z.literal('purge'),
  position: purgePositionSchema,
  namespace: namespaceSchema,
  keys: z.array(z.string()),
  tags: z.array(z.string()),
  prefix: z.string().nullable(),
  /** Version floor: entries with a lower version are stale. */
  version: z.number().int().nonnegative(),
  /**
   * `flush`: the whole namespace was flushed (`keys` and `tags` empty,
   * `prefix` null). `version` is then the namespace's new version, a floor
   * above every entry version written before the flush: an edge drops the
   * namespace's copies below it and refuses older fills from then on.
   */
  action: z.enum(['delete', 'update', 'flush']),
  /** Unix ms when the origin acknowledged the change (for purge-lag metrics). */
  ts: z.number().int(),
});
export type PurgeMessage = z.infer<typeof purgeMessageSchema>;

/**
 * Format version of entries in the region's purge log (the Redis Stream
 * field `v`). A replica that reads an entry of another version cannot know
 * what it purges, so it answers `reset` to its edges (rolling upgrades).
 */
export const purgeLogFormatVersion = '1';

/**
 * The `data` field of a purge log entry: a purge without its position (the
 * position is where the entry sits). Unknown fields are ignored, so a newer
 * origin may add optional ones without a format version change.
 */
export const purgeLogEntrySchema = purgeMessageSchema.omit({ type: true, position: true }).extend({
  /**
   * Set when the purge applies another region's invalidation (`STRATA_REGION`
   * of the region that acknowledged the change): the region's forwarder does
   * not send it back to Kafka. Absent for the region's own changes.
   */
  origin_region: z.string().optional(),
  /**
   * True when the change is a purge (a purge request, a Kafka invalidation)
   * rather than a delete of the same keys, for `cache.item.updated`. Absent
   * for other changes and from older origins.
   */
  purge: z.boolean().optional(),
});
export type PurgeLogEntry = z.infer<typeof purgeLogEntrySchema>;

/**
 * Tells an edge the gap since its position cannot be replayed (too old, or
 * from another log or incarnation): drop the whole tier and continue from
 * `position`.
 */
export const resetMessageSchema = z.object({
  type: z.literal('reset'),
  position: purgePositionSchema,
  reason: z.string(),
});
export type ResetMessage = z.infer<typeof resetMessageSchema>;

/** First message on a subscription: the log's head when it began (where an edge without a position starts). */
export const helloMessageSchema = z.object({
  type: z.literal('hello'),
  position: purgePositionSchema,
});
export type HelloMessage = z.infer<typeof helloMessageSchema>;

/**
 * Sent every `PURGE_HEARTBEAT_SECONDS` on an idle or busy stream: the edge
 * has everything up to `position`; `tail_live` says whether the origin's own
 * tail of the purge log is live, and `tail_age_ms` how long ago (ms) it last
 * confirmed so. An edge counts a heartbeat with a live tail as a confirmation
 * that its view of the log is fresh (leases, Gray and Cheriton, SOSP 1989).
 */
export const heartbeatMessageSchema = z.object({
  type: z.literal('heartbeat'),
  position: purgePositionSchema,
  tail_live: z.boolean(),
  tail_age_ms: z.number().int().nonnegative(),
});
export type HeartbeatMessage = z.infer<typeof heartbeatMessageSchema>;

/** A message that changes or starts an edge's view of the log: what the edge applies. */
export const streamMessageSchema = z.discriminatedUnion('type', [
  purgeMessageSchema,
  resetMessageSchema,
  helloMessageSchema,
]);
export type StreamMessage = z.infer<typeof streamMessageSchema>;

/** Any event on the purge stream (SSE `event:` names the `type`). */
export const purgeStreamEventSchema = z.discriminatedUnion('type', [
  purgeMessageSchema,
  resetMessageSchema,
  helloMessageSchema,
  heartbeatMessageSchema,
]);
export type PurgeStreamEvent = z.infer<typeof purgeStreamEventSchema>;

/** Most entries one poll answer carries (`GET /api/v1/purges?limit=`). */
export const maxPurgePollLimit = 1_000;

/**
 * Query of `GET /api/v1/purges`: `after`, the last position the edge applied
 * (absent: read nothing, learn the head), and `limit`, the most entries to
 * return (1 to {@link maxPurgePollLimit}, default 500).
 */
export const purgePollQuerySchema = z.object({
  after: purgePositionSchema.optional(),
  limit: z
    .string()
    .regex(/^[0-9]{1,4}$/, 'limit must be a whole number')
    .transform(Number)
    .pipe(z.number().int().min(1).max(maxPurgePollLimit))
    .default(500),
});
export type PurgePollQuery = z.infer<typeof purgePollQuerySchema>;

/**
 * Answer of `GET /api/v1/purges`: the entries after `after`, oldest first
 * (continue from the last one's position, or from `head` when there are
 * none), or a `reset` (drop the tier, continue from `reset.position`);
 * `tail_live` and `tail_age_ms` (ms) as in a heartbeat: a poll answer with a
 * live tail confirms the edge's view like a heartbeat does.
 */
export const purgePollResponseSchema = z.object({
  entries: z.array(purgeMessageSchema),
  reset: resetMessageSchema.nullable(),
  head: purgePositionSchema,
  tail_live: z.boolean(),
  tail_age_ms: z.number().int().nonnegative(),
});
export type PurgePollResponse = z.infer<typeof purgePollResponseSchema>;

/** A region name (`STRATA_REGION`): lowercase letters, digits, `-` and `_`, at most 63. */
export const regionSchema = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'expected a region name: lowercase letters, digits, - and _ (at most 63)');

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
    /** Soft purge: mark the entries stale instead of removing them (absent = false). */
    soft: z.boolean().optional(),
    /** Unix ms when the producer created the event. */
    timestamp: z.number().int().nonnegative(),
    /** Region (`STRATA_REGION`) whose purge log the event was forwarded from; absent for events from other producers. */
    origin_region: regionSchema.optional(),
  })
  .refine((e) => e.keys.length > 0 || e.tags.length > 0 || e.prefix !== null, 'give keys, tags or prefix');
export type InvalidationEvent = z.infer<typeof invalidationEventSchema>;

/**
 * A region-wide reset on the invalidation topic: region `origin_region` lost
 * purges before forwarding them (its forwarder fell behind the purge log's
 * retention). Other regions empty `namespaces` (every namespace when null)
 * of anything they hold, in their stores and edges. Idempotent by `id`.
 */
export const regionResetEventSchema = z.strictObject({
  id: z.string().min(1).max(128),
  type: z.literal('reset'),
  origin_region: regionSchema,
  /** Namespaces the source region has touched; null = unknown, reset them all. */
  namespaces: z.array(namespaceSchema).max(10_000).nullable(),
  /** One line: why the source region reset. */
  reason: z.string().max(500),
  /** Unix ms when the source region detected the loss. */
  timestamp: z.number().int().nonnegative(),
});
export type RegionResetEvent = z.infer<typeof regionResetEventSchema>;

/** The store's footprint in management stats: memory used and its limit (bytes), keys held, evictions since start. */
export const storeFootprintSchema = z.object({
  kind: z.enum(['memory', 'redis']),
  memory_bytes: z.number().int().nonnegative(),
  /** null when the store has no limit (Redis `maxmemory 0`). */
  memory_limit_bytes: z.number().int().nonnegative().nullable(),
  /** Keys held by the store (on Redis: entries, tag sets and tombstones alike). */
  keys: z.number().int().nonnegative(),
  evictions: z.number().int().nonnegative(),
});
export type StoreFootprint = z.infer<typeof storeFootprintSchema>;

/**
 * `GET /api/v1/namespaces/{namespace}/stats`: counters since the origin
 * started; `entries` and `bytes` are null where the store cannot count one
 * namespace cheaply (Redis); `hit_ratio` is per answering tier plus `all`.
 */
export const namespaceStatsSchema = z.object({
  namespace: namespaceSchema,
  /** The namespace's version (0 = never flushed). */
  version: z.number().int().nonnegative(),
  entries: z.number().int().nonnegative().nullable(),
  bytes: z.number().int().nonnegative().nullable(),
  hits: z.record(z.string(), z.number().int().nonnegative()),
  misses: z.number().int().nonnegative(),
  hit_ratio: z.record(z.string(), z.number().min(0).max(1)),
  writes: z.number().int().nonnegative(),
  deletes: z.number().int().nonnegative(),
  /** Operations (reads, writes, deletes) per second over the last 10 s. */
  ops_per_second: z.number().nonnegative(),
  store: storeFootprintSchema,
});
export type NamespaceStats = z.infer<typeof namespaceStatsSchema>;

/** `GET /api/v1/namespaces`: every namespace this origin has seen or that was ever flushed. */
export const namespacesOverviewSchema = z.object({
  namespaces: z.array(namespaceStatsSchema),
  store: storeFootprintSchema,
});
export type NamespacesOverview = z.infer<typeof namespacesOverviewSchema>;

/** `GET /api/v1/namespaces/{namespace}`: the current version and who set each one (newest first). */
export const namespaceVersionInfoSchema = z.object({
  namespace: namespaceSchema,
  version: z.number().int().nonnegative(),
  history: z.array(
    z.object({
      version: z.number().int().nonnegative(),
      /** Unix ms. */
      flushed_at_ms: z.number().int().nonnegative(),
      /** The flushing caller's `service_id` (`anonymous` when authentication is off). */
      service_id: z.string(),
    }),
  ),
});
export type NamespaceVersionInfo = z.infer<typeof namespaceVersionInfoSchema>;

/** `POST /api/v1/namespaces/{namespace}/flush` response. */
export const flushResponseSchema = z.object({
  namespace: namespaceSchema,
  /** The namespace's new version: entries below it are gone for every reader. */
  version: z.number().int().nonnegative(),
  flushed_at_ms: z.number().int().nonnegative(),
  service_id: z.string(),
  /** The flush's number in the purge log. */
  seq: z.number().int(),
});
export type FlushResponse = z.infer<typeof flushResponseSchema>;

/** `POST /api/v1/reload` response: variables now in force, and changed ones that need a restart. */
export const reloadResponseSchema = z.object({
  applied: z.array(z.string()),
  restart_required: z.array(z.string()),
});
export type ReloadResponse = z.infer<typeof reloadResponseSchema>;
