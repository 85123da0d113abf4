import type { MiddlewareHandler } from 'hono';
import { CacheError } from './errors.ts';
import { isValidKey, isValidNamespace } from './keys.ts';

/**
 * Guards for hostile input that the zod schemas cannot see because they run
 * after decoding: path tricks in the raw request target and JSON nesting.
 * Runtime-free. Limits are listed in docs/security.md.
 */

/** Deepest JSON nesting accepted in a request body (objects and arrays). */
export const maxJsonDepth = 32;

/**
 * Why a raw path is refused, or null when it is fine. Checked per segment of
 * the undecoded path (RFC 3986 §3.3):
 * - an encoded `/` or `\` (`%2F`, `%5C`): a key may not smuggle a path separator;
 * - a dot segment, plain or encoded (`..`, `%2E%2E`, `.`): no traversal, even
 *   though URL parsers would resolve it (RFC 3986 §5.2.4) into another key;
 * - an encoded NUL (`%00`);
 * - a malformed escape or bytes that are not shortest-form UTF-8 (overlong
 *   `%C0%AF`, surrogates), which `decodeURIComponent` rejects (RFC 3629 §3).
 */
export function pathTrick(rawPath: string): string | null {
  // Fast path for the hot read: with no escape and no dot segment there is nothing to decode or refuse.
  if (!rawPath.includes('%') && !/\/\.\.?(?:\/|$)/.test(rawPath)) return null;
  for (const segment of rawPath.split('/')) {
    if (/%(2f|5c)/i.test(segment)) return 'encoded path separator';
    if (/%00/.test(segment)) return 'NUL byte';
    let decoded: string;
    try {
      decoded = decodeURIComponent(segment);
    } catch {
      return 'malformed percent-encoding or invalid UTF-8';
    }
    if (decoded === '.' || decoded === '..') return 'dot segment';
  }
  return null;
}

const cachePrefix = '/api/v1/cache/';
/** Two segments of path characters no URL parser rewrites and no router decodes: unreserved and sub-delims but `%` (RFC 3986 §3.3). */
const plainSegments = /^[A-Za-z0-9\-._~!$&'()*+,;=:@]+\/[A-Za-z0-9\-._~!$&'()*+,;=:@]+$/;

/**
 * `[namespace, key]` of a plain cache read target, an origin-form
 * `/api/v1/cache/{namespace}/{key}` that every URL parser and router reads
 * the same way, or null: the hit fast paths (`edge/fast-hit.ts`,
 * `origin/fast-read.ts`) take the first and leave the rest to the full path
 * (which answers it, or refuses it with {@link rejectPathTricks}). Null for
 * any query (even an empty `?`), fragment, percent-escape, `\`, dot segment
 * (`.`, `..`), empty or extra segment, any character outside RFC 3986's
 * unreserved and sub-delimiters (and `:`, `@`), and a namespace or key the
 * key rules refuse (`shared/keys.ts`).
 */
export function plainCacheTarget(path: string): [namespace: string, key: string] | null {
  if (!path.startsWith(cachePrefix)) return null;
  const rest = path.slice(cachePrefix.length);
  if (!plainSegments.test(rest)) return null;
  const slash = rest.indexOf('/');
  const namespace = rest.slice(0, slash);
  const key = rest.slice(slash + 1);
  if (key === '.' || key === '..' || !isValidNamespace(namespace) || !isValidKey(key)) return null;
  return [namespace, key];
}

/** The request target as the client sent it: the Node request's raw URL when there is one. */
function rawPathOf(url: string, env: unknown): string {
  const incoming = (env as { incoming?: { url?: string } } | undefined)?.incoming;
  const raw = typeof incoming?.url === 'string' ? incoming.url : url;
  const path = raw.startsWith('/') ? raw : raw.replace(/^[a-z]+:\/\/[^/]*/i, '');
  return path.split('?', 1)[0] ?? '';
}

/**
 * Middleware refusing {@link pathTrick}s with 400 CACHE_004 before routing
 * decodes the path. Mount on `/api/*`.
 */
export const rejectPathTricks: MiddlewareHandler = async (c, next) => {
  const reason = pathTrick(rawPathOf(c.req.url, c.env));
  if (reason) throw new CacheError('CACHE_004', `Invalid request path: ${reason}`, { details: { reason } });
  return next();
};

/**
 * Nesting depth of a JSON text, counted over `{` and `[` outside strings, in
 * one linear pass so a hostile body is measured before it is parsed.
 */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++;
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x7b || ch === 0x5b) {
      depth++;
      if (depth > max) max = depth;
    } else if (ch === 0x7d || ch === 0x5d) depth--;
  }
  return max;
}

/**
 * Parses a JSON request body with the depth limit.
 * @throws CacheError CACHE_004 for malformed JSON or nesting deeper than {@link maxJsonDepth}.
 */
export function parseJsonBody(text: string, operation: string): unknown {
  if (jsonDepth(text) > maxJsonDepth) {
    throw new CacheError('CACHE_004', `JSON nested deeper than ${maxJsonDepth}`, { details: { operation } });
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new CacheError('CACHE_004', 'Malformed JSON body', { details: { operation } });
  }
}
