import { z } from 'zod';
import { errorCodes } from './errors.ts';
import { keySchema, maxTtlSeconds, minTtlSeconds, namespaceSchema } from './keys.ts';
import { staleReasonSchema } from './schemas.ts';

/**
 * Wire contract of the Message Hub: cache operations and management
 * requests as Kafka events, answered by correlated response events
 * (docs/message-hub.md). The shapes follow the Message Hub plan's
 * `cache.operation.request` / `cache.management.request` events, plus a
 * `namespace`, and carry what every hub request must (interface control
 * document §1.3): a correlation id, the source service, the event type and
 * version, a timestamp and a time to live.
 */

/** Topics of the hub, named after the events they carry. */
export const hubTopics = {
  operationRequest: 'cache.operation.request',
  operationResponse: 'cache.operation.response',
  managementRequest: 'cache.management.request',
  managementResponse: 'cache.management.response',
} as const;

/** Kafka headers of a hub request (names are lower-case; values UTF-8). */
export const hubHeaders = {
  /** `Bearer <JWT>` (RFC 6750 §2.1), authorised as on REST. */
  authorization: 'authorization',
  /** Topic to answer on; honoured only when it is on the origin's `HUB_REPLY_TOPICS`. */
  replyTo: 'reply-to',
  /** Copied onto the response, so a reader can filter without parsing the value. */
  correlationId: 'correlation-id',
} as const;

/** Version of the event schemas below; a request of another version is answered CACHE_004. */
export const hubEventVersion = 1;

/** Longest request time to live the origin accepts, ms (5 min): it is also the longest grace an expired token gets. */
export const maxRequestTtlMs = 300_000;

const correlationId = z.string().min(1).max(128);
const common = {
  /** The calling service (ICD §1.3 source service); informative: the JWT decides what it may do. */
  service: z.string().min(1).max(128),
  /** Unique per request; a redelivered request with the same id and content gets the recorded response. */
  correlation_id: correlationId,
  /** When the caller sent it: RFC 3339 date-time, or epoch milliseconds. */
  timestamp: z.union([z.iso.datetime({ offset: true }), z.number().int().nonnegative()]),
  /** Milliseconds after `timestamp` past which the request is not processed (answered CACHE_005 instead). */
  request_ttl_ms: z.number().int().positive().max(maxRequestTtlMs),
};
/** `utf8` text or `base64` bytes (RFC 4648 §4), as REST batches carry values. */
export const hubEncodingSchema = z.enum(['utf8', 'base64']).default('base64');

/** The data of a `cache.operation.request` event. */
export const operationRequestDataSchema = z.object({
  operation: z.enum(['get', 'set', 'delete', 'get_many', 'set_many']),
  ...common,
  namespace: namespaceSchema,
  /** get, set, delete. */
  key: keySchema.optional(),
  /** get_many. */
  keys: z.array(keySchema).min(1).max(1_000).optional(),
  /** set: the value, in `encoding`. */
  value: z.string().optional(),
  /** set_many: key → value, in `encoding`. */
  entries: z.record(keySchema, z.string()).optional(),
  /** Encoding of `value`/`entries` in the request and of values in the response. */
  encoding: hubEncodingSchema,
  /** set, set_many: the entry's time to live, seconds; absent = the namespace's default. */
  ttl: z.number().int().min(minTtlSeconds).max(maxTtlSeconds).optional(),
  /** set, set_many: Content-Type stored with the value. */
  content_type: z.string().min(1).max(256).optional(),
});
export type OperationRequestData = z.infer<typeof operationRequestDataSchema>;

/**
 * One per-service event name accepted as an alias of `cache.operation.request`
 * (`HUB_ALIASES`, the Message Hub plan's `cache.char.get`, `cache.campaign.set`,
 * ...): `<topic>=<operation>:<namespace>`, e.g.
 * `cache.char.get=get:character`. A request on the topic may leave out
 * `operation` and `namespace` (they are the alias's); one that names others
 * is refused with CACHE_004.
 */
export const hubAliasSchema = z
  .string()
  .regex(
    /^[A-Za-z0-9._-]{1,249}=(get|set|delete|get_many|set_many):[^:=\s]+$/,
    'expected <topic>=<get|set|delete|get_many|set_many>:<namespace>',
  )
  .transform((item) => {
    const [topic, rest] = item.split('=') as [string, string];
    const [operation, namespace] = rest.split(':') as [OperationRequestData['operation'], string];
    return { topic, operation, namespace };
  })
  .pipe(
    z.object({
      topic: z.string(),
      operation: operationRequestDataSchema.shape.operation,
      namespace: namespaceSchema,
    }),
  );

/** A per-service alias of `cache.operation.request` (see {@link hubAliasSchema}). */
export type HubAlias = z.infer<typeof hubAliasSchema>;

/** The data of a `cache.management.request` event. */
export const managementRequestDataSchema = z.object({
  operation: z.enum(['flush', 'stats', 'reload']),
  ...common,
  /** flush: required; stats: one namespace, or absent for all; reload: absent. */
  namespace: namespaceSchema.optional(),
});
export type ManagementRequestData = z.infer<typeof managementRequestDataSchema>;

/** A hub request event: `event` names the topic's event type, `version` its schema version. */
export const hubRequestSchema = z.discriminatedUnion('event', [
  z.object({
    event: z.literal(hubTopics.operationRequest),
    version: z.literal(hubEventVersion),
    data: operationRequestDataSchema,
  }),
  z.object({
    event: z.literal(hubTopics.managementRequest),
    version: z.literal(hubEventVersion),
    data: managementRequestDataSchema,
  }),
]);
export type HubRequest = z.infer<typeof hubRequestSchema>;

/** The error of an `error` response: the ICD code and message (ICD §8), as the REST envelope carries them. */
export const hubErrorSchema = z.object({
  code: z.enum(errorCodes),
  message: z.string(),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type HubError = z.infer<typeof hubErrorSchema>;

/**
 * The data of a response event. `status` is `success` or `error` (then
 * `error` holds the ICD code). What a success carries, by operation:
 * get → `value`, `encoding`, `content_type`, `version`, `expires_at_ms`;
 * set → `version`, `expires_at_ms`; delete → `deleted`, `version`;
 * get_many → `values`, `missing_keys`, `encoding`, `stale_reasons` (absent when
 * every value is fresh); set_many → `stored_count`,
 * `versions`; flush, stats, reload → `result` (the REST answer's body).
 */
export const hubResponseDataSchema = z.object({
  operation: z.string(),
  status: z.enum(['success', 'error']),
  correlation_id: z.string(),
  /** When the origin answered, RFC 3339. */
  timestamp: z.string(),
  /** The origin that answered (its `ORIGIN_ID`). */
  service: z.string(),
  namespace: z.string().optional(),
  key: z.string().optional(),
  value: z.string().optional(),
  encoding: z.enum(['utf8', 'base64']).optional(),
  content_type: z.string().optional(),
  version: z.number().optional(),
  expires_at_ms: z.number().optional(),
  deleted: z.boolean().optional(),
  values: z.record(z.string(), z.string()).optional(),
  missing_keys: z.array(z.string()).optional(),
  /** get_many: each key served stale and why, as in the REST batch get; absent when every value is fresh. */
  stale_reasons: z.record(z.string(), staleReasonSchema).optional(),
  stored_count: z.number().optional(),
  versions: z.record(z.string(), z.number()).optional(),
  result: z.unknown().optional(),
  error: hubErrorSchema.optional(),
});
export type HubResponseData = z.infer<typeof hubResponseDataSchema>;

/** A response event: `cache.operation.response` or `cache.management.response`. */
export const hubResponseSchema = z.object({
  event: z.enum([hubTopics.operationResponse, hubTopics.managementResponse]),
  version: z.literal(hubEventVersion),
  data: hubResponseDataSchema,
});
export type HubResponse = z.infer<typeof hubResponseSchema>;

/** The Kafka message key of a request: `namespace:key` (per-key order), `namespace`, or the correlation id. */
export function hubMessageKey(request: HubRequest): string {
  const { data } = request;
  if (data.namespace === undefined) return data.correlation_id;
  return 'key' in data && data.key !== undefined ? `${data.namespace}:${data.key}` : data.namespace;
}

/** Epoch milliseconds of a request's `timestamp`. */
export function requestTimeMs(timestamp: string | number): number {
  return typeof timestamp === 'number' ? timestamp : Date.parse(timestamp);
}
