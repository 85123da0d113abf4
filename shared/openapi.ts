import { z } from 'zod';
import { errorEnvelopeSchema } from './errors.ts';
import { headers } from './headers.ts';
import { maxKeyBytes, maxTagsPerEntry, maxTtlSeconds } from './keys.ts';
import {
  batchGetRequestSchema,
  batchGetResponseSchema,
  batchSetRequestSchema,
  batchSetResponseSchema,
  flushResponseSchema,
  namespaceStatsSchema,
  namespacesOverviewSchema,
  namespaceVersionInfoSchema,
  purgeRequestSchema,
  purgeResponseSchema,
  putResponseSchema,
  reloadResponseSchema,
} from './schemas.ts';

/**
 * The OpenAPI 3.1 description of the REST API (ARCHITECTURE.md §2), built
 * from the same zod schemas the handlers validate with (`z.toJSONSchema`,
 * JSON Schema 2020-12, which OpenAPI 3.1 uses as is). Served at
 * `/openapi.json` by the edge and the origin; `/docs` renders it.
 * Runtime-free. Schemathesis fuzzes it against running servers
 * (test/integration/openapi-fuzz.test.ts).
 */

type Json = Record<string, unknown>;

/** Version of the REST contract described (the package version). */
export const apiVersion = '0.1.0';

const schema = (s: z.ZodType, io: 'input' | 'output'): Json => {
  const { $schema: _, ...rest } = z.toJSONSchema(s, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Json;
  return rest;
};

const envelope = { $ref: '#/components/schemas/ErrorEnvelope' };
const error = (description: string) => ({
  description,
  content: { 'application/json': { schema: envelope } },
});
const jsonResponse = (description: string, component: string) => ({
  description,
  content: { 'application/json': { schema: { $ref: `#/components/schemas/${component}` } } },
});
const authErrors = {
  '401': error('AUTH_001: missing or invalid credentials (when authentication is on)'),
  '403': error('AUTH_002: insufficient scope or namespace'),
};
const commonErrors = {
  '400': error('CACHE_004: invalid namespace, key, TTL, tags or body; path tricks'),
  ...authErrors,
  '429': error('CACHE_005: edge rate limit per service_id (Retry-After says when to retry)'),
  '503': error('CACHE_005: dependency unavailable'),
  '504': error('CACHE_005: operation timed out'),
};

// Keys in a REST path: the key rule minus what a path cannot carry (`/`, `\`, dot segments; shared/input-guard.ts).
const pathKeyPattern = '^(?!\\.{1,2}$)[^\\u0000-\\u001f\\u007f-\\u009f/\\\\]+$';

const namespaceParam = {
  name: 'namespace',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^[a-z0-9_-]{1,64}$' },
};
const keyParam = {
  name: 'key',
  in: 'path',
  required: true,
  description: `1–${maxKeyBytes} bytes of UTF-8, no control characters; in a path also no \`/\`, \`\\\` or dot segment`,
  schema: { type: 'string', minLength: 1, maxLength: 170, pattern: pathKeyPattern },
};

const readHeaders = {
  [headers.cache]: { schema: { type: 'string', enum: ['HIT', 'MISS', 'STALE'] } },
  [headers.cacheTier]: { schema: { type: 'string' } },
  [headers.etag]: { schema: { type: 'string' } },
  [headers.age]: { schema: { type: 'string' } },
  [headers.requestId]: { schema: { type: 'string' } },
};

/** Builds the OpenAPI 3.1 document (a plain JSON object). */
export function openApiDocument(): Json {
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
  return {
    openapi: '3.1.0',
    info: {
      title: 'Strata cache REST API',
      version: apiVersion,
      description:
        'Edge-tiered cache. The edge and the origin expose the same surface. Errors use one envelope with ICD codes. ' +
        'See docs/security.md for tokens, scopes and limits.',
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
        BatchSetRequest: schema(batchSetRequestSchema, 'input'),
        BatchSetResponse: schema(batchSetResponseSchema, 'output'),
        PurgeRequest: schema(purgeRequestSchema, 'input'),
        PurgeResponse: schema(purgeResponseSchema, 'output'),
        PutResponse: schema(putResponseSchema, 'output'),
        FlushResponse: schema(flushResponseSchema, 'output'),
        NamespaceStats: schema(namespaceStatsSchema, 'output'),
        NamespacesOverview: schema(namespacesOverviewSchema, 'output'),
        NamespaceVersion: schema(namespaceVersionInfoSchema, 'output'),
        ReloadResponse: schema(reloadResponseSchema, 'output'),
      },
    },
    paths: {
      '/health': {
        get: {
          operationId: 'health',
          summary: 'Liveness',
          security: [],
          responses: {
            '200': {
              description: 'alive',
              content: {
                'application/json': { schema: { type: 'object', properties: { status: { const: 'ok' } } } },
              },
            },
          },
        },
      },
      '/api/v1/cache/{namespace}/{key}': {
        parameters: [namespaceParam, keyParam],
        get: {
          operationId: 'getEntry',
          summary: 'Read one entry (cache:read)',
          responses: {
            '200': {
              description: 'the stored bytes with their Content-Type',
              headers: readHeaders,
              content: { '*/*': {} },
            },
            '304': { description: 'If-None-Match matched the ETag' },
            '404': error('CACHE_001: not found'),
            ...commonErrors,
          },
        },
        put: {
          operationId: 'putEntry',
          summary: 'Write one entry (cache:write)',
          parameters: [
            {
              name: 'ttl',
              in: 'query',
              schema: { type: 'integer', minimum: 1, maximum: maxTtlSeconds },
              description: 'seconds; default CACHE_DEFAULT_TTL',
            },
            {
              name: 'tags',
              in: 'query',
              description: `comma list, at most ${maxTagsPerEntry}, each [A-Za-z0-9_:.-]{1,128}`,
              schema: { type: 'string', pattern: '^[A-Za-z0-9_:.-]{1,128}(,[A-Za-z0-9_:.-]{1,128}){0,31}$' },
            },
            {
              name: 'encrypt',
              in: 'query',
              description: 'encrypt at rest (needs ENCRYPTION_KEYS at the origin)',
              schema: { type: 'string', enum: ['true', 'false'] },
            },
          ],
          requestBody: {
            required: true,
            content: {
              'application/octet-stream': { schema: { type: 'string', format: 'binary' } },
              'text/plain': { schema: { type: 'string' } },
            },
          },
          responses: {
            '200': {
              description: 'stored',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/PutResponse' } } },
              links: entryLinks,
            },
            '413': error('CACHE_003: value over MAX_VALUE_BYTES'),
            ...commonErrors,
          },
        },
        delete: {
          operationId: 'deleteEntry',
          summary: 'Delete one entry and purge it at every edge (cache:delete)',
          responses: {
            '200': {
              description: 'deleted (or was absent)',
              content: {
                'application/json': {
                  schema: {
                    type: 'object',
                    properties: {
                      namespace: { type: 'string' },
                      key: { type: 'string' },
                      deleted: { type: 'boolean' },
                      version: { type: 'integer' },
                    },
                    required: ['namespace', 'key', 'deleted', 'version'],
                  },
                },
              },
            },
            ...commonErrors,
          },
        },
      },
      '/api/v1/cache/{namespace}/batch/get': {
        parameters: [namespaceParam],
        post: {
          operationId: 'batchGet',
          summary: 'Read up to 1000 keys (cache:read)',
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/BatchGetRequest' } } },
          },
          responses: {
            '200': {
              description: 'values found and keys missing',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/BatchGetResponse' } } },
            },
            '413': error('CACHE_003: body too large'),
            ...commonErrors,
          },
        },
      },
      '/api/v1/cache/{namespace}/batch/set': {
        parameters: [namespaceParam],
        post: {
          operationId: 'batchSet',
          summary: 'Write up to 1000 entries with one TTL (cache:write)',
          requestBody: {
            required: true,
            content: { 'application/json': { schema: { $ref: '#/components/schemas/BatchSetRequest' } } },
          },
          responses: {
            '200': {
              description: 'stored',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/BatchSetResponse' } } },
            },
            '413': error('CACHE_003: body or a value too large'),
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
            content: { 'application/json': { schema: { $ref: '#/components/schemas/PurgeRequest' } } },
          },
          responses: {
            '200': {
              description: 'purged at the origin and sent to every edge',
              content: { 'application/json': { schema: { $ref: '#/components/schemas/PurgeResponse' } } },
            },
            '413': error('CACHE_003: body too large'),
            ...commonErrors,
          },
        },
      },
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
            ),
          },
        },
      },
    },
  };
}
