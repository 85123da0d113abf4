import { z } from 'zod';
import { errorEnvelopeSchema } from './errors.ts';
import { headers } from './headers.ts';
import {
  defaultMaxValueBytes,
  keySchema,
  maxKeyBytes,
  maxTagsPerEntry,
  namespaceSchema,
  tagSchema,
  ttlSecondsSchema,
} from './keys.ts';
import { listingOpenApiPaths } from './listing.ts';
import { lockOpenApiPaths } from './lock-api.ts';
import { purgeAppliedReportSchema } from './purge-report.ts';
import { queryParameters } from './query-guard.ts';
import {
  batchGetRequestSchema,
  batchGetResponseSchema,
  batchSetRequestSchema,
  batchSetResponseSchema,
  flushResponseSchema,
  invalidationEventSchema,
  maxBatchKeys,
  maxPurgePollLimit,
  namespaceStatsSchema,
  namespacesOverviewSchema,
  namespaceVersionInfoSchema,
  purgePollResponseSchema,
  purgeRequestSchema,
  purgeResponseSchema,
  putResponseSchema,
  reloadResponseSchema,
} from './schemas.ts';
import { edgeReportSchema } from './stats.ts';
import { upstashOpenApiPaths } from './upstash-openapi.ts';
import { warmOpenApiPaths } from './warm.ts';

/**
 * The OpenAPI 3.1 description of the REST API, built from the same zod
 * schemas and limit constants the handlers validate with (`z.toJSONSchema`,
 * JSON Schema 2020-12, which OpenAPI 3.1 uses as is). Rules zod cannot
 * express in JSON Schema (a key's byte length, "keys, tags or prefix",
 * batch sizes of a map) are added here from the same constants. Served at
 * `/openapi.json` by the edge and the origin, each describing its own
 * surface and its configured `MAX_VALUE_BYTES`; `/docs` renders it with
 * examples. Runtime-free. Schemathesis fuzzes it against running servers
 * (test/integration/openapi-fuzz.test.ts), and a test probes every limit it
 * states (test/integration/openapi-limits.test.ts).
 *
 * One difference JSON Schema cannot state: `maxLength` counts characters,
 * the server counts UTF-8 bytes of keys and values. They agree for ASCII; the
 * exact rule is in each description and in `x-max-utf8-bytes`.
 */

type Json = Record<string, unknown>;

/** Version of the REST contract described (the package version). */
export const apiVersion = '0.1.0';

/** Which server the document describes, and the limits it was started with. */
export interface OpenApiOptions {
  /** `edge` (cache API, health, metrics) or `origin` (also the purge stream, invalidations, stats). */
  readonly side: 'edge' | 'origin';
  /** `MAX_VALUE_BYTES` of that server, bytes. */
  readonly maxValueBytes: number;
}

// No control characters (Unicode Cc), as keySchema; in a path also no `/`, `\` or dot segment (shared/input-guard.ts).
const bodyKeyPattern = '^[^\\u0000-\\u001f\\u007f-\\u009f]+$';
const pathKeyPattern = '^(?!\\.{1,2}$)[^\\u0000-\\u001f\\u007f-\\u009f/\\\\]+$';
// Canonical base64 (RFC 4648 §4, padded), what shared/bytes.ts accepts.
const base64Pattern = '^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$';

/** The JSON Schema of a key, with the byte rule zod's refinements cannot carry. */
const keyJsonSchema = (pattern: string): Json => ({
  type: 'string',
  minLength: 1,
  maxLength: maxKeyBytes,
  pattern,
  'x-max-utf8-bytes': maxKeyBytes,
  description: `1–${maxKeyBytes} bytes of UTF-8, no control characters`,
});

const limitsFromZod = () => {
  const ns = z.toJSONSchema(namespaceSchema) as { pattern: string };
  const ttl = z.toJSONSchema(ttlSecondsSchema) as { minimum: number; maximum: number };
  return { namespacePattern: ns.pattern, ttlMinimum: ttl.minimum, ttlMaximum: ttl.maximum };
};

/** JSON Schema of a zod schema, with keys and tags described as the server checks them. */
const schema = (s: z.ZodType, io: 'input' | 'output'): Json => {
  const { $schema: _, ...rest } = z.toJSONSchema(s, {
    io,
    unrepresentable: 'any',
    target: 'draft-2020-12',
    override: (ctx) => {
      if (ctx.zodSchema === (keySchema as unknown)) Object.assign(ctx.jsonSchema, keyJsonSchema(bodyKeyPattern));
      if (ctx.zodSchema === (tagSchema as unknown)) ctx.jsonSchema.examples = ['greetings'];
    },
  }) as Json;
  return rest;
};

const envelope = { $ref: '#/components/schemas/ErrorEnvelope' };
const error = (description: string, code: string, message: string) => ({
  description,
  content: {
    'application/json': {
      schema: envelope,
      example: { error: { code, message, details: { timestamp: '2026-11-22T12:20:40.252Z' } } },
    },
  },
});
const jsonResponse = (description: string, component: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${component}` } } },
});
const authErrors = {
  '401': error(
    'AUTH_001: missing or invalid credentials (when authentication is on)',
    'AUTH_001',
    'Invalid credentials',
  ),
  '403': error('AUTH_002: insufficient scope or namespace', 'AUTH_002', 'Insufficient permissions'),
};
const unavailable = {
  '503': error('CACHE_005: dependency unavailable', 'CACHE_005', 'Store unavailable'),
  '504': error('CACHE_005: operation timed out', 'CACHE_005', 'Origin timed out'),
};
const invalid = error(
  'CACHE_004: invalid namespace, key, TTL, tags, body or query parameter; path tricks',
  'CACHE_004',
  'namespace must match [a-z0-9_-]{1,64}',
);
const commonErrors = {
  '400': invalid,
  ...authErrors,
  '429': error(
    'CACHE_005: edge rate limit per service_id (Retry-After says when to retry)',
    'CACHE_005',
    'Rate limited',
  ),
  ...unavailable,
};
const tooLarge = (what: string) => ({ '413': error(`CACHE_003: ${what}`, 'CACHE_003', 'Value exceeds the limit') });
const json = (ref: string, example?: unknown) => ({
  'application/json': {
    schema: { $ref: `#/components/schemas/${ref}` },
    ...(example === undefined ? {} : { example }),
  },
});

const readHeaders = {
  [headers.cache]: { schema: { type: 'string', enum: ['HIT', 'MISS', 'STALE'] } },
  [headers.cacheTier]: { schema: { type: 'string' } },
  [headers.etag]: { schema: { type: 'string' } },
  [headers.age]: { schema: { type: 'string' } },
  [headers.requestId]: { schema: { type: 'string' } },
  [headers.cacheControl]: {
    description:
      'what remains: max-age − Age is the fresh time left (RFC 9111 §4.2.3), then the grace windows (RFC 5861)',
    schema: { type: 'string' },
  },
  [headers.staleReason]: {
    description: 'on X-Cache: STALE, why it was served stale',
    schema: { type: 'string', enum: ['revalidating', 'error', 'soft-purge'] },
  },
  [headers.lease]: {
    description:
      'the refresh lease handed to this reader (with Prefer: lease): load the value and PUT it with this header',
    schema: { type: 'string' },
  },
  [headers.consistency]: {
    description: "`strong` when the key's profile is strong (CACHE_PROFILES): never served stale",
    schema: { type: 'string', enum: ['strong'] },
  },
};

const openGet = (operationId: string, summary: string, ok: Json, extra: Json = {}) => ({
  get: { operationId, summary, security: [], responses: { '200': ok, ...extra } },
});

/**
 * Builds the OpenAPI 3.1 document (a plain JSON object) of one server.
 * @param options the side and its `MAX_VALUE_BYTES`; default: the origin with the default 1 MiB.
 */
export function openApiDocument(
  options: OpenApiOptions = { side: 'origin', maxValueBytes: defaultMaxValueBytes },
): Json {
  const { namespacePattern, ttlMinimum, ttlMaximum } = limitsFromZod();
  const maxValueBytes = options.maxValueBytes;
  const namespaceParam = {
    name: 'namespace',
    in: 'path',
    required: true,
    schema: { type: 'string', pattern: namespacePattern },
    example: 'demo',
  };
  const keyParam = {
    name: 'key',
    in: 'path',
    required: true,
    description: `1–${maxKeyBytes} bytes of UTF-8, no control characters; in a path also no \`/\`, \`\\\` or dot segment`,
    schema: keyJsonSchema(pathKeyPattern),
    example: 'greeting',
  };
  const entryLinks = {
    ReadBack: {
      operationId: 'getEntry',
      parameters: { namespace: '$request.path.namespace', key: '$request.path.key' },
    },
    DeleteIt: {
      operationId: 'deleteEntry',
      parameters: { namespace: '$request.path.namespace', key: '$request.path.key' },
    },
  };
  const keyArray = { type: 'array', items: keyJsonSchema(bodyKeyPattern), minItems: 1, maxItems: maxBatchKeys };
  const tagArray = { type: 'array', items: schema(tagSchema, 'input'), minItems: 1, maxItems: maxBatchKeys };
  // "Give keys, tags or prefix" (a zod refinement) as JSON Schema: one of them present and non-empty.
  const selectorRequired = {
    anyOf: [
      { required: ['keys'], properties: { keys: keyArray } },
      { required: ['tags'], properties: { tags: tagArray } },
      { required: ['prefix'], properties: { prefix: keyJsonSchema(bodyKeyPattern) } },
    ],
  };
  const value = { type: 'string', maxLength: maxValueBytes, 'x-max-utf8-bytes': maxValueBytes };
  const batchSet = schema(batchSetRequestSchema, 'input');
  Object.assign((batchSet.properties as Json).entries as Json, {
    minProperties: 1,
    maxProperties: maxBatchKeys,
    propertyNames: keyJsonSchema(bodyKeyPattern),
    additionalProperties: value,
  });
  // Base64 values must be canonical base64 of at most MAX_VALUE_BYTES bytes.
  batchSet.if = { required: ['encoding'], properties: { encoding: { const: 'base64' } } };
  // biome-ignore lint/suspicious/noThenProperty: JSON Schema's if/then keyword, not a thenable
  batchSet.then = {
    properties: {
      entries: {
        additionalProperties: { type: 'string', pattern: base64Pattern, maxLength: 4 * Math.ceil(maxValueBytes / 3) },
      },
    },
  };

  const cachePaths: Json = {
    '/api/v1/cache/{namespace}/{key}': {
      parameters: [namespaceParam, keyParam],
      get: {
        operationId: 'getEntry',
        summary: 'Read one entry (cache:read)',
        parameters: [
          {
            name: headers.prefer,
            in: 'header',
            description:
              "RFC 7240: `lease` asks for the refresh lease of a stale or missing entry; `wait=<seconds>` (whole, at most 10) also waits on a full miss for the lease holder's write",
            schema: { type: 'string' },
            example: 'lease, wait=5',
          },
          {
            name: headers.cacheControl,
            in: 'header',
            description:
              '`no-cache` (RFC 9111 §5.2.1.4) asks for a strong read: only what the store confirms now, never a stale entry (a 404 instead) and never the fallback tier (503 CACHE_005 while the store is down); other directives are ignored',
            schema: { type: 'string' },
            example: 'no-cache',
          },
        ],
        responses: {
          '200': {
            description: 'the stored bytes with their Content-Type',
            headers: readHeaders,
            content: { '*/*': { example: 'hello, strata' } },
          },
          '304': { description: 'If-None-Match matched the ETag' },
          '404': {
            ...error('CACHE_001: not found', 'CACHE_001', 'Key not found'),
            headers: { [headers.cache]: readHeaders[headers.cache], [headers.lease]: readHeaders[headers.lease] },
          },
          ...commonErrors,
        },
      },
      put: {
        operationId: 'putEntry',
        summary: 'Write one entry (cache:write)',
        parameters: [
          {
            name: queryParameters.put[0],
            in: 'query',
            schema: { type: 'integer', minimum: ttlMinimum, maximum: ttlMaximum },
            description: 'seconds; default CACHE_DEFAULT_TTL',
            example: 300,
          },
          {
            name: queryParameters.put[1],
            in: 'query',
            description: `comma list without spaces, at most ${maxTagsPerEntry}, each [A-Za-z0-9_:.-]{1,128}; empty = none`,
            schema: {
              type: 'string',
              pattern: `^(?:[A-Za-z0-9_:.-]{1,128}(?:,[A-Za-z0-9_:.-]{1,128}){0,${maxTagsPerEntry - 1}})?$`,
            },
            example: 'greetings,demo',
          },
          {
            name: queryParameters.put[2],
            in: 'query',
            description: 'encrypt at rest (needs ENCRYPTION_KEYS at the origin)',
            schema: { type: 'string', enum: ['true', 'false', '1', '0'] },
          },
          {
            name: headers.cacheControl,
            in: 'header',
            description:
              'max-age (the TTL; must equal ttl when both are given), stale-while-revalidate and stale-if-error in whole seconds (RFC 5861)',
            schema: { type: 'string' },
            example: 'max-age=300, stale-while-revalidate=60, stale-if-error=600',
          },
          {
            name: headers.lease,
            in: 'header',
            description: 'the refresh lease this write completes; 412 CACHE_006 when it no longer holds',
            schema: { type: 'string', pattern: '^[A-Za-z0-9._:-]{1,128}$' },
          },
          {
            name: headers.compress,
            in: 'header',
            description:
              'store compressed with zstd when that saves space (true) or never (false); absent = values above COMPRESS_MIN_BYTES; ignored when encrypting',
            schema: { type: 'string', enum: ['true', 'false', '1', '0'] },
          },
        ],
        requestBody: {
          // An empty body is a valid, empty value.
          required: false,
          description: `the value: 0 to ${maxValueBytes} bytes (MAX_VALUE_BYTES); no body stores an empty value`,
          content: {
            'application/octet-stream': { schema: { type: 'string', format: 'binary', maxLength: maxValueBytes } },
            'text/plain': { schema: { ...value }, example: 'hello, strata' },
          },
        },
        responses: {
          '200': {
            description: 'stored',
            content: json('PutResponse', {
              namespace: 'demo',
              key: 'greeting',
              version: 1795350040187000,
              expires_at_ms: 1795350340187,
            }),
            links: entryLinks,
          },
          ...tooLarge(`value over MAX_VALUE_BYTES (${maxValueBytes} bytes)`),
          '412': error(
            'CACHE_006: the refresh lease expired, or a newer value was written',
            'CACHE_006',
            'Refresh lease lost',
          ),
          ...commonErrors,
        },
      },
      delete: {
        operationId: 'deleteEntry',
        summary: 'Delete one entry and purge it at every edge (cache:delete)',
        responses: {
          '200': {
            description: 'deleted (or was absent)',
            content: json('DeleteResponse', {
              namespace: 'demo',
              key: 'greeting',
              deleted: true,
              version: 1795350040190000,
            }),
          },
          ...commonErrors,
        },
      },
    },
    '/api/v1/cache/{namespace}/batch/get': {
      parameters: [namespaceParam],
      post: {
        operationId: 'batchGet',
        summary: `Read up to ${maxBatchKeys} keys (cache:read)`,
        requestBody: { required: true, content: json('BatchGetRequest', { keys: ['greeting', 'other'] }) },
        responses: {
          '200': {
            description: 'values found and keys missing; `stale_reasons` names the keys served stale',
            content: json('BatchGetResponse', {
              values: { greeting: 'hello, strata' },
              missing_keys: ['other'],
              encoding: 'utf8',
            }),
          },
          ...tooLarge('body too large'),
          ...commonErrors,
        },
      },
    },
    '/api/v1/cache/{namespace}/batch/set': {
      parameters: [namespaceParam],
      post: {
        operationId: 'batchSet',
        summary: `Write up to ${maxBatchKeys} entries with one TTL (cache:write)`,
        requestBody: {
          required: true,
          content: json('BatchSetRequest', { entries: { 'char:1': '{"hp":10}', 'char:2': '{"hp":12}' }, ttl: 3600 }),
        },
        responses: {
          '200': { description: 'stored', content: json('BatchSetResponse', { stored_count: 2 }) },
          ...tooLarge('body or a value too large'),
          ...commonErrors,
        },
      },
    },
    '/api/v1/purge': {
      post: {
        operationId: 'purge',
        summary: 'Purge by keys or tags (cache:delete) or prefix (cache:flush) within a namespace',
        requestBody: {
          required: true,
          content: json('PurgeRequest', { namespace: 'demo', tags: ['greetings'] }),
        },
        responses: {
          '200': {
            description: 'purged at the origin and sent to every edge',
            content: json('PurgeResponse', { purged_count: 1, seq: 2 }),
          },
          ...tooLarge('body too large'),
          ...commonErrors,
        },
      },
    },
  };

  const readyBody = {
    type: 'object',
    properties: { status: { const: 'ready' } },
    required: ['status'],
    additionalProperties: true,
  };
  const metricsOk = {
    description: 'Prometheus text exposition (version 0.0.4)',
    content: {
      'text/plain': {
        schema: { type: 'string' },
        example: 'strata_requests_total{operation="get",tier="edge",result="hit"} 42',
      },
    },
  };
  /** Management routes (origin; edges relay them uncached). */
  const managementPaths: Json = {
    '/api/v1/namespaces': {
      get: {
        operationId: 'namespacesStats',
        summary: 'Stats of every namespace seen since start or ever flushed, and the store footprint (metrics:read)',
        responses: {
          '200': jsonResponse('per-namespace stats', 'NamespacesOverview'),
          ...commonErrors,
        },
      },
    },
    '/api/v1/namespaces/{namespace}': {
      parameters: [namespaceParam],
      get: {
        operationId: 'namespaceVersion',
        summary: "A namespace's current version and who set each one, newest first (metrics:read)",
        responses: { '200': jsonResponse('version and history', 'NamespaceVersion'), ...commonErrors },
      },
    },
    '/api/v1/namespaces/{namespace}/stats': {
      parameters: [namespaceParam],
      get: {
        operationId: 'namespaceStats',
        summary: 'Entries, bytes, hit ratio per tier, operations per second, evictions, store memory (metrics:read)',
        responses: { '200': jsonResponse('stats', 'NamespaceStats'), ...commonErrors },
      },
    },
    '/api/v1/namespaces/{namespace}/flush': {
      parameters: [namespaceParam],
      post: {
        operationId: 'flushNamespace',
        summary: 'Flush a namespace in O(1): bump its version; older entries vanish for every reader (cache:flush)',
        responses: { '200': jsonResponse('flushed: the new version', 'FlushResponse'), ...commonErrors },
      },
    },
    '/api/v1/reload': {
      post: {
        operationId: 'reload',
        summary:
          'Re-read the run-time configuration: limits, default TTL, encryption keys, log level (cache:reload, admin)',
        responses: {
          '200': jsonResponse('variables now in force, and changed ones that need a restart', 'ReloadResponse'),
          ...commonErrors,
          '400': error(
            'CACHE_004: the new configuration is invalid (the message names the variable); nothing changed',
            'CACHE_004',
            'invalid configuration: MAX_VALUE_BYTES: Too small: expected number to be >0',
          ),
        },
      },
    },
  };

  const healthPaths: Json = {
    '/health': openGet('health', 'Liveness (open)', {
      description: 'alive',
      content: {
        'application/json': {
          schema: { type: 'object', properties: { status: { const: 'ok' } }, required: ['status'] },
          example: { status: 'ok' },
        },
      },
    }),
    '/ready': openGet(
      'ready',
      options.side === 'origin'
        ? 'Readiness (open): the store answers and writes are durable (breaker closed)'
        : 'Readiness (open): the purge stream from the origin is connected',
      { description: 'ready', content: { 'application/json': { schema: readyBody, example: { status: 'ready' } } } },
      { '503': error('CACHE_005: not ready', 'CACHE_005', 'Store unavailable') },
    ),
    '/metrics': {
      get: {
        operationId: 'metrics',
        summary: 'Prometheus metrics (metrics:read)',
        responses: {
          '200': metricsOk,
          '404': error('CACHE_001: no metrics on this runtime (Workers)', 'CACHE_001', 'No metrics on this runtime'),
          ...authErrors,
        },
      },
    },
    '/openapi.json': openGet('openApi', 'This document (open)', {
      description: 'OpenAPI 3.1',
      content: { 'application/json': { schema: { type: 'object' } } },
    }),
    '/docs': openGet('docs', 'A readable reference of this document, with examples (open)', {
      description: 'HTML page',
      content: { 'text/html': { schema: { type: 'string' } } },
    }),
  };

  const originPaths: Json =
    options.side === 'origin'
      ? {
          '/api/v1/purge/stream': {
            get: {
              operationId: 'purgeStream',
              summary:
                'The purge stream edges follow (cache:read in every namespace): Server-Sent Events `hello`, `purge`, `reset`, with keep-alive comments',
              parameters: [
                {
                  name: queryParameters.purgeStream[0],
                  in: 'query',
                  description: 'resume after this position `epoch:seq` (same as the Last-Event-ID header)',
                  schema: { type: 'string' },
                  example: '3b835dd2-5f59-48fa-b654-2dee928f4294:41',
                },
              ],
              responses: {
                '200': {
                  description: 'an endless event stream',
                  content: {
                    'text/event-stream': {
                      schema: { type: 'string' },
                      example:
                        'id: 3b835dd2-5f59-48fa-b654-2dee928f4294:42\nevent: purge\ndata: {"type":"purge","seq":42,…}\n\n',
                    },
                  },
                },
                ...commonErrors,
              },
            },
          },
          '/api/v1/purges': {
            get: {
              operationId: 'purgePage',
              summary:
                'One page of the purge log after a position, for edges that poll instead of holding the stream (purge:read in every namespace): the entries after `after`, or a `reset`, plus `tail_live`',
              parameters: [
                {
                  name: queryParameters.purgePage[0],
                  in: 'query',
                  description: 'the last position the edge applied; absent: read nothing and learn the head',
                  schema: { type: 'string', minLength: 1, maxLength: 512, pattern: '^[\\x21-\\x7e]+$' },
                },
                {
                  name: queryParameters.purgePage[1],
                  in: 'query',
                  description: `most entries to return (default 500)`,
                  schema: { type: 'integer', minimum: 1, maximum: maxPurgePollLimit },
                },
              ],
              responses: {
                '200': { description: 'a page of the log', content: json('PurgePage') },
                ...commonErrors,
              },
            },
          },
          '/api/v1/purge/applied': {
            post: {
              operationId: 'purgeApplied',
              summary:
                "An edge's report of the purge-log position it has applied (cache:read in every namespace; sent by streaming edges, timed by the staleness canary)",
              requestBody: {
                required: true,
                content: json('PurgeAppliedReport', { edge_id: 'edge-1', position: 'strata:3b835dd2:1732270000000-0' }),
              },
              responses: {
                '204': { description: 'taken' },
                '400': invalid,
                ...tooLarge('report too large'),
                ...authErrors,
              },
            },
          },
          '/api/v1/invalidations': {
            post: {
              operationId: 'invalidate',
              summary:
                'Apply one invalidation event without Kafka (cache:delete, cache:flush for a prefix); 404 when KAFKA_BROKERS is set',
              requestBody: {
                required: true,
                content: json('InvalidationEvent', {
                  id: '2f1c9b1e-6d0c-4a53-9f5e-8d1f0c3a7b21',
                  namespace: 'character',
                  keys: ['char:1'],
                  action: 'delete',
                  timestamp: 1732270000000,
                }),
              },
              responses: {
                '200': {
                  description: 'applied, or a duplicate of an event already applied (idempotent by id)',
                  content: {
                    'application/json': {
                      schema: {
                        type: 'object',
                        properties: { id: { type: 'string' }, result: { type: 'string' } },
                        required: ['id', 'result'],
                      },
                      example: { id: '2f1c9b1e-6d0c-4a53-9f5e-8d1f0c3a7b21', result: 'applied' },
                    },
                  },
                },
                '404': error('CACHE_001: Kafka is configured; publish to the topic instead', 'CACHE_001', 'No route'),
                ...tooLarge('body too large'),
                ...commonErrors,
              },
            },
          },
          '/api/v1/stats': {
            get: {
              operationId: 'stats',
              summary: "The dashboard's numbers (metrics:read): points over the last window, oldest first",
              responses: {
                '200': {
                  description: 'sample interval, breaker states, reporting edges and points',
                  content: {
                    'application/json': {
                      schema: {
                        type: 'object',
                        properties: {
                          sample_seconds: { type: 'integer' },
                          breaker_states: { type: 'array', items: { type: 'string' } },
                          edges: { type: 'array', items: { type: 'object' } },
                          points: { type: 'array', items: { type: 'object' } },
                          warm_jobs: { type: 'array', items: { type: 'object' }, description: 'recent warm jobs' },
                        },
                        required: ['sample_seconds', 'breaker_states', 'edges', 'points'],
                      },
                    },
                  },
                },
                ...authErrors,
              },
            },
          },
          '/api/v1/edges/stats': {
            post: {
              operationId: 'edgeStats',
              summary: "An edge's counters for the dashboard (metrics:read; sent by Node edges)",
              requestBody: {
                required: true,
                content: json('EdgeReport', { edge_id: 'edge-1', snapshot: { counters: {}, gauges: {} } }),
              },
              responses: {
                '204': { description: 'taken' },
                '400': invalid,
                ...tooLarge('report too large'),
                ...authErrors,
              },
            },
          },
          '/dashboard': openGet('dashboard', 'The live dashboard page (open; its data needs a metrics:read token)', {
            description: 'HTML page',
            content: { 'text/html': { schema: { type: 'string' } } },
          }),
        }
      : {};

  const purgeRequest = { ...schema(purgeRequestSchema, 'input'), ...selectorRequired };
  const invalidationEvent = { ...schema(invalidationEventSchema, 'input'), ...selectorRequired };
  return {
    openapi: '3.1.0',
    info: {
      title: `Strata cache REST API (${options.side})`,
      version: apiVersion,
      description:
        'Edge-tiered cache. The edge and the origin expose the same cache API; the origin adds the purge stream, ' +
        'invalidations and the dashboard. Errors use one envelope with a code (CACHE_001…CACHE_005, AUTH_001, AUTH_002); ' +
        'an unknown query parameter is CACHE_004. Keys and values are limited in UTF-8 bytes ' +
        `(keys ${maxKeyBytes}, values ${maxValueBytes}). Tokens: \`npm run token\`; see docs/security.md.`,
    },
    servers: [{ url: '/' }],
    security: [{ bearer: [] }],
    components: {
      securitySchemes: {
        bearer: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description: 'Claims: service_id or sub, scope (space list), ns (namespaces, "*" = all); RFC 7519.',
        },
      },
      schemas: {
        ErrorEnvelope: schema(errorEnvelopeSchema, 'output'),
        BatchGetRequest: schema(batchGetRequestSchema, 'input'),
        BatchGetResponse: schema(batchGetResponseSchema, 'output'),
        BatchSetRequest: batchSet,
        BatchSetResponse: schema(batchSetResponseSchema, 'output'),
        PurgeRequest: purgeRequest,
        PurgeResponse: schema(purgeResponseSchema, 'output'),
        PutResponse: schema(putResponseSchema, 'output'),
        FlushResponse: schema(flushResponseSchema, 'output'),
        NamespaceStats: schema(namespaceStatsSchema, 'output'),
        NamespacesOverview: schema(namespacesOverviewSchema, 'output'),
        NamespaceVersion: schema(namespaceVersionInfoSchema, 'output'),
        ReloadResponse: schema(reloadResponseSchema, 'output'),
        DeleteResponse: {
          type: 'object',
          properties: {
            namespace: { type: 'string' },
            key: { type: 'string' },
            deleted: { type: 'boolean' },
            version: { type: 'integer' },
          },
          required: ['namespace', 'key', 'deleted', 'version'],
        },
        ...(options.side === 'origin'
          ? {
              InvalidationEvent: invalidationEvent,
              EdgeReport: schema(edgeReportSchema, 'input'),
              PurgePage: schema(purgePollResponseSchema, 'output'),
              PurgeAppliedReport: schema(purgeAppliedReportSchema, 'input'),
            }
          : {}),
      },
    },
    paths: {
      ...healthPaths,
      ...cachePaths,
      ...managementPaths,
      ...lockOpenApiPaths({ error, commonErrors, namespaceParam, keyParam, schema }),
      ...listingOpenApiPaths({ commonErrors, namespaceParam, schema }),
      ...upstashOpenApiPaths({ namespaceParam, keyParam }),
      ...originPaths,
      ...(options.side === 'origin'
        ? warmOpenApiPaths({ commonErrors, error, schema, namespacePattern, ttlMinimum, ttlMaximum })
        : {}),
    },
  };
}
