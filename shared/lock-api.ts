import { z } from 'zod';
import { headers } from './headers.ts';
import { queryParameters } from './query-guard.ts';

/*
 * Wire shapes of the lock REST API (docs/locks.md) and its OpenAPI paths.
 * Runtime-free, like the rest of `shared/`.
 */

/** A grant or the current holder: `POST`, `PUT …/renew` and `GET /api/v1/locks/{namespace}/{name}`. */
export const lockGrantResponseSchema = z.object({
  namespace: z.string(),
  name: z.string(),
  /** Fencing token: larger than every earlier grant's token of this lock. */
  token: z.number().int().positive(),
  /** Unix milliseconds, store clock. */
  expires_at_ms: z.number().int(),
});
export type LockGrantResponse = z.infer<typeof lockGrantResponseSchema>;

/** `DELETE /api/v1/locks/{namespace}/{name}`. */
export const lockReleaseResponseSchema = z.object({
  namespace: z.string(),
  name: z.string(),
  released: z.literal(true),
});
export type LockReleaseResponse = z.infer<typeof lockReleaseResponseSchema>;

type Json = Record<string, unknown>;

/**
 * The OpenAPI path items of the lock API, built with the document's own
 * helpers (`shared/openapi.ts`) so errors and parameters read the same.
 */
export function lockOpenApiPaths(parts: {
  readonly error: (description: string, code: string, message: string) => Json;
  readonly commonErrors: Json;
  readonly namespaceParam: Json;
  /** The `{key}` path parameter; a lock's name follows the key rules. */
  readonly keyParam: Json;
  readonly schema: (s: z.ZodType, io: 'input' | 'output') => Json;
}): Json {
  const { error, commonErrors, namespaceParam } = parts;
  const nameParam = { ...parts.keyParam, name: 'name' };
  const grant = (description: string) => ({
    description,
    content: { 'application/json': { schema: parts.schema(lockGrantResponseSchema, 'output') } },
  });
  const ttl = (description: string) => ({
    name: queryParameters.lockRenew[0],
    in: 'query',
    required: true,
    description,
    schema: { type: 'integer', minimum: 1, maximum: 86_400 },
  });
  const token = {
    name: headers.lockToken,
    in: 'header',
    required: true,
    description: 'The fencing token of the grant',
    schema: { type: 'string', pattern: '^[1-9][0-9]{0,15}$' },
  };
  const held = error('LOCK_001: the lock is held, or the token does not hold it', 'LOCK_001', 'Lock is held');
  return {
    '/api/v1/locks/{namespace}/{name}': {
      parameters: [namespaceParam, nameParam],
      post: {
        operationId: 'acquireLock',
        summary: 'Acquire a lock and get its fencing token (cache:lock)',
        parameters: [
          ttl('Lease, whole seconds'),
          {
            name: queryParameters.lockAcquire[1],
            in: 'query',
            required: false,
            description: 'Seconds to wait for a held lock (fractions allowed); values above 30 count as 30',
            schema: { type: 'number', minimum: 0 },
          },
        ],
        responses: { '200': grant('granted'), '409': held, ...commonErrors },
      },
      get: {
        operationId: 'getLock',
        summary: 'The holder of a lock (cache:lock)',
        responses: {
          '200': grant('held'),
          '404': error('CACHE_001: the lock is free', 'CACHE_001', 'Lock not held'),
          ...commonErrors,
        },
      },
      delete: {
        operationId: 'releaseLock',
        summary: 'Release the lock held by the token (cache:lock)',
        parameters: [token],
        responses: {
          '200': {
            description: 'released',
            content: { 'application/json': { schema: parts.schema(lockReleaseResponseSchema, 'output') } },
          },
          '409': held,
          ...commonErrors,
        },
      },
    },
    '/api/v1/locks/{namespace}/{name}/renew': {
      parameters: [namespaceParam, nameParam],
      put: {
        operationId: 'renewLock',
        summary: 'Extend the lease of the grant holding the token (cache:lock)',
        parameters: [ttl('New lease from now, whole seconds'), token],
        responses: { '200': grant('renewed'), '409': held, ...commonErrors },
      },
    },
  };
}
