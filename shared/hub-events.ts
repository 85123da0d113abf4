import { z } from 'zod';
import { keySchema, namespaceSchema, tagSchema } from './keys.ts';

/**
 * Events Strata publishes and obeys on the Message Hub's Kafka topics (the
 * cache service's interface control document §3.1.1 and §3.2, docs/message-hub.md).
 * The envelope follows the document: `{ "event": <name>, "data": { … } }`,
 * with `id` beside it so consumers can skip a redelivery.
 */

/** What changed, in a `cache.item.updated` event. */
export const itemOperations = ['set', 'delete', 'purge', 'flush', 'reset'] as const;
export type ItemOperation = (typeof itemOperations)[number];

/**
 * `cache.item.updated` (ICD §3.1.1), one per key changed, with the fields
 * the document names (`key`, `operation`, `timestamp`, `service_id`) plus:
 * - `namespace`; `key` null for a change of no single key: a purge by tags
 *   or prefix (`tags`, `prefix` say which), a namespace `flush`, a `reset`;
 * - `operation`: `set` (a write, batch write or compare-and-swap), `delete`,
 *   `purge` (a purge request or a Kafka invalidation), `flush` (the whole
 *   namespace), `reset` (entries of the purge log were lost before they were
 *   published: treat every key of `namespace`, or of every namespace when
 *   null, as changed);
 * - `version`: the entry's version after the change (for a flush, the
 *   namespace's new version; 0 when unknown);
 * - `timestamp` (ISO 8601) and `timestamp_ms` (Unix ms): when the origin
 *   acknowledged the change;
 * - `service_id`: the origin replica that published it (`ORIGIN_ID`), not
 *   the caller, which the purge log does not record;
 * - `origin_region`: the region that acknowledged the change (`STRATA_REGION`).
 * Message key `namespace:key` (or `namespace` when `key` is null), so one
 * key's events share a partition and keep their order.
 */
export const itemUpdatedEventSchema = z.object({
  event: z.literal('cache.item.updated'),
  /** Unique per change and key; the same on a redelivery. */
  id: z.string(),
  data: z.object({
    namespace: namespaceSchema.nullable(),
    key: z.string().nullable(),
    operation: z.enum(itemOperations),
    version: z.number().int().nonnegative(),
    tags: z.array(z.string()),
    prefix: z.string().nullable(),
    timestamp: z.string(),
    timestamp_ms: z.number().int(),
    service_id: z.string(),
    origin_region: z.string(),
  }),
});
export type ItemUpdatedEvent = z.infer<typeof itemUpdatedEventSchema>;

/** Header carrying the sender's credential on the consumed topics: `Bearer <JWT>` (RFC 6750 §2.1), as on REST. */
export const hubAuthHeader = 'authorization';

/** Parameters of `config.cache.update` with `policy: "defaults"`: the run-time settings of every namespace. */
export const defaultsParametersSchema = z
  .strictObject({
    /** Seconds, for writes that give no TTL (`CACHE_DEFAULT_TTL`). */
    default_ttl: z.union([z.number(), z.string()]).optional(),
    /** Largest value, bytes (`MAX_VALUE_BYTES`). */
    max_value_bytes: z.union([z.number(), z.string()]).optional(),
    /** `LOG_LEVEL`. */
    log_level: z.string().optional(),
  })
  .refine((p) => Object.keys(p).length > 0, 'give default_ttl, max_value_bytes or log_level');

/**
 * `config.cache.update` (ICD §3.2.1): a policy change, applied like a reload
 * (validated whole, refused with the old configuration kept):
 * - `policy: "defaults"`, `scope: "all"`: {@link defaultsParametersSchema};
 * - `policy: "profile"`, `scope: <namespace>`: the namespace's cache profile
 *   (`ttl`, `stale_while_revalidate`, `stale_if_error`, `consistency`,
 *   `key_prefix`, as in `CACHE_PROFILES`), replacing the one it had.
 */
export const configUpdateEventSchema = z.object({
  event: z.literal('config.cache.update'),
  id: z.string().max(200).optional(),
  data: z.discriminatedUnion('policy', [
    z.object({ policy: z.literal('defaults'), scope: z.literal('all'), parameters: defaultsParametersSchema }),
    z.object({
      policy: z.literal('profile'),
      scope: namespaceSchema,
      parameters: z.record(z.string(), z.unknown()),
    }),
  ]),
});
export type ConfigUpdateEvent = z.infer<typeof configUpdateEventSchema>;

/**
 * `control.cache.action` (ICD §3.2.2): runs an operation.
 * - `flush`: `target` is the namespace (every entry, in O(1));
 * - `purge`: `target` is the namespace, `parameters` the selectors of
 *   `POST /api/v1/purge` (`keys`, `tags`, `prefix`);
 * - `reload`: `target` is `"all"`; re-reads the run-time configuration.
 */
export const controlActionEventSchema = z.object({
  event: z.literal('control.cache.action'),
  id: z.string().max(200).optional(),
  data: z.discriminatedUnion('action', [
    z.object({ action: z.literal('flush'), target: namespaceSchema, parameters: z.strictObject({}).optional() }),
    z.object({
      action: z.literal('purge'),
      target: namespaceSchema,
      parameters: z
        .strictObject({
          keys: z.array(keySchema).max(1_000).default([]),
          tags: z.array(tagSchema).max(1_000).default([]),
          prefix: keySchema.nullable().default(null),
        })
        .refine((p) => p.keys.length > 0 || p.tags.length > 0 || p.prefix !== null, 'give keys, tags or prefix'),
    }),
    z.object({ action: z.literal('reload'), target: z.literal('all'), parameters: z.strictObject({}).optional() }),
  ]),
});
export type ControlActionEvent = z.infer<typeof controlActionEventSchema>;
