import { z } from 'zod';
import { namespaceSchema } from './keys.ts';
import { queryParameters } from './query-guard.ts';

/**
 * Wire shapes of key listing: `GET /api/v1/namespaces/{namespace}/keys`
 * and its first-page alias `GET /api/v1/cache/{namespace}/pattern/{pattern}`.
 */

/** Largest `count` of one listing call; a larger one is capped to it. */
export const maxListCount = 1000;

/** `count` when the caller gives none. */
export const defaultListCount = 100;

/** Longest glob, in bytes of UTF-8 (twice the longest key). */
export const maxGlobBytes = 1024;

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

type Json = Record<string, unknown>;

const controls = String.raw`\u0000-\u001f\u007f-\u009f`;

/**
 * A regular expression (ECMA-262, for JSON Schema) of exactly the globs the
 * server accepts (`origin/listing/glob.ts`): escaped characters, plain
 * characters, and classes of escaped characters, single characters and
 * ranges; a `^` right after `[` negates, and a character followed by `-`
 * and another character starts a range. In a class, a character of more
 * than one UTF-8 byte is never followed by `-` (the server reads classes
 * byte by byte, as Redis does, and refuses what would be a range from its
 * last byte). Byte length (at most 1,024 bytes of UTF-8) is stated beside
 * it as `x-max-utf8-bytes`.
 */
export const globJsonPattern = globPattern(true);

/**
 * {@link globJsonPattern} for a path segment (the pattern alias): the server
 * refuses `/`, `\` and dot segments in any path, so no escapes there.
 */
export const globPathJsonPattern = globPattern(false);

function globPattern(inQuery: boolean): string {
  const banned = inQuery ? controls : `/${controls}`;
  // After '-' in a class any character ends a range; in a path a backslash never arrives.
  const any = inQuery ? `[^${controls}]` : String.raw`[^\\${banned}]`;
  const escaped = inQuery ? String.raw`\\[^${controls}]|` : '';
  const plain = String.raw`[^\\\[${banned}]`;
  // One-byte characters in a class: any as a range's end, and as a start all but ']' and '\'.
  const narrow = inQuery ? String.raw`[\u0020-\u007e]` : String.raw`(?![\\/])[\u0020-\u007e]`;
  const start = inQuery ? String.raw`(?![\]\\])[\u0020-\u007e]` : String.raw`(?![\]\\/])[\u0020-\u007e]`;
  // Characters of more than one UTF-8 byte (U+0080 to U+009F are controls, refused anyway): never before '-'.
  const wide = String.raw`[^\u0000-\u009f](?!-)`;
  const classEscaped = inQuery ? String.raw`\\${narrow}|\\${wide}|` : '';
  const item = `(?:${classEscaped}${start}-(?:${narrow}|${wide})|${start}(?!-${any})|${wide})`;
  const head = inQuery ? '^' : String.raw`^(?!\.{1,2}$)`;
  return String.raw`${head}(?:${escaped}${plain}|\[(?:\^${item}+|(?!\^)${item}+)\])+$`;
}

/**
 * The OpenAPI paths of key listing (both sides: edges relay them uncached),
 * from the same schemas and limits the handlers use; `shared/openapi.ts`
 * passes its shared parts in.
 */
export function listingOpenApiPaths(parts: {
  readonly commonErrors: Json;
  readonly namespaceParam: Json;
  readonly schema: (s: z.ZodType, io: 'input' | 'output') => Json;
}): Json {
  const { commonErrors, namespaceParam } = parts;
  const page = (description: string) => ({
    description,
    content: { 'application/json': { schema: parts.schema(keyPageSchema, 'output') } },
  });
  const count = {
    name: queryParameters.listKeys[2],
    in: 'query',
    description: `work bound of the call, as SCAN's COUNT: about this many stored keys are examined (default ${defaultListCount}; larger than ${maxListCount} is capped to ${maxListCount}), so a page may hold fewer keys, even none, while \`cursor\` is not null`,
    schema: { type: 'integer', minimum: 1, maximum: 999_999_999 },
  };
  const glob =
    'glob with Redis SCAN MATCH semantics on the UTF-8 bytes of the key: `*` any run, `?` one byte, `[abc]`, `[a-z]`, `[^a]`, `\\` escapes; an unclosed `[`, an empty class or a trailing `\\` is a 400 CACHE_004';
  return {
    '/api/v1/namespaces/{namespace}/keys': {
      parameters: [namespaceParam],
      get: {
        operationId: 'listKeys',
        summary:
          "One page of the namespace's keys matching a glob, with size, TTL left, version and tags; follow `cursor` until it is null. Entries of a flushed namespace version are never listed (cache:read)",
        parameters: [
          {
            name: queryParameters.listKeys[0],
            in: 'query',
            description: `${glob} (default \`*\`)`,
            schema: {
              type: 'string',
              minLength: 1,
              maxLength: maxGlobBytes,
              pattern: globJsonPattern,
              'x-max-utf8-bytes': maxGlobBytes,
            },
          },
          {
            name: queryParameters.listKeys[1],
            in: 'query',
            description:
              'opaque cursor of the previous page, for the same namespace and glob; a malformed one is a 400 CACHE_004. On Redis Cluster a 503 CACHE_005 means the topology changed: start again without a cursor',
            schema: { type: 'string', minLength: 1, maxLength: maxCursorLength },
          },
          count,
        ],
        responses: { '200': page('a page of keys'), ...commonErrors },
      },
    },
    '/api/v1/cache/{namespace}/pattern/{pattern}': {
      parameters: [
        namespaceParam,
        {
          name: 'pattern',
          in: 'path',
          required: true,
          description: `${glob}; in the path no \`/\`, \`\\\` or dot segment (percent-encode \`?\`), so use the query form for escapes`,
          schema: {
            type: 'string',
            minLength: 1,
            maxLength: maxGlobBytes,
            pattern: globPathJsonPattern,
            'x-max-utf8-bytes': maxGlobBytes,
          },
        },
      ],
      get: {
        operationId: 'listKeysByPattern',
        summary:
          'The first page of `GET /api/v1/namespaces/{namespace}/keys?match={pattern}` (the pattern endpoint of the interface control document; cache:read)',
        parameters: [{ ...count, name: queryParameters.listPattern[0] }],
        responses: { '200': page('the first page of keys'), ...commonErrors },
      },
    },
  };
}
