import { ExponentialBackoff, handleWhen, retry } from 'cockatiel';
import { CacheError } from '../../shared/errors.ts';

/**
 * Fetching warm values from a data source by URL template, only from the
 * origins on `WARM_ALLOWED_ORIGINS` (exact `scheme://host[:port]` match, as
 * the WHATWG URL Standard serializes an origin), so a warm job cannot be
 * turned against internal services: a template or redirect to any other
 * origin is refused before a request is sent there.
 */

/** Refused before any request: the URL's origin is not on the allow-list. */
export class OriginNotAllowed extends Error {}

/** A fetch worth retrying: network error, 5xx, 408 or 429. */
class RetryableFetch extends Error {}

const maxRedirects = 5;

/** The URL of `key` in `template` (`{key}` replaced by the percent-encoded key). */
export function urlFor(template: string, key: string): URL {
  return new URL(template.replaceAll('{key}', encodeURIComponent(key)));
}

/**
 * Checks a template before a job starts: it parses, is http(s), `{key}` is
 * not in the origin part, and the origin is allowed.
 * @throws CacheError CACHE_004 naming what is wrong.
 */
export function checkTemplate(template: string, allowedOrigins: ReadonlySet<string>): void {
  let a: URL;
  let b: URL;
  try {
    a = urlFor(template, 'k');
    b = urlFor(template, 'other-key');
  } catch {
    throw new CacheError('CACHE_004', 'url_template is not a URL', { details: { url_template: template } });
  }
  if (a.protocol !== 'https:' && a.protocol !== 'http:')
    throw new CacheError('CACHE_004', 'url_template must be http or https', { details: { url_template: template } });
  if (a.origin !== b.origin)
    throw new CacheError('CACHE_004', 'url_template must not put {key} in the host', {
      details: { url_template: template },
    });
  if (!allowedOrigins.has(a.origin))
    throw new CacheError('CACHE_004', `origin ${a.origin} is not on WARM_ALLOWED_ORIGINS`, {
      details: { url_template: template, origin: a.origin, allowed: [...allowedOrigins] },
    });
}

/** A fetched value. */
export interface Fetched {
  readonly value: Uint8Array;
  readonly contentType: string;
}

/** How values are fetched. */
export interface UrlFetchOptions {
  readonly allowedOrigins: ReadonlySet<string>;
  /** Retries after the first attempt. */
  readonly retries: number;
  /** First back-off, ms; it doubles per retry (with jitter, cockatiel's decorrelated exponential back-off), capped at `maxDelayMs`. */
  readonly initialDelayMs: number;
  readonly maxDelayMs: number;
  /** Largest value, bytes (`MAX_VALUE_BYTES`). */
  readonly maxValueBytes: number;
  /** Per attempt, ms. */
  readonly timeoutMs: number;
}

/**
 * Fetches one URL with retries and exponential back-off (cockatiel), following
 * at most five redirects, each only to an allowed origin.
 * @throws OriginNotAllowed, or Error with the last failure (`HTTP 404`, `HTTP 503 after 4 attempts`, …).
 */
export async function fetchValue(url: URL, options: UrlFetchOptions, signal: AbortSignal): Promise<Fetched> {
  const policy = retry(
    handleWhen((e) => e instanceof RetryableFetch),
    {
      maxAttempts: options.retries,
      backoff: new ExponentialBackoff({ initialDelay: options.initialDelayMs, maxDelay: options.maxDelayMs }),
    },
  );
  let attempts = 0;
  try {
    return await policy.execute(() => {
      attempts++;
      return fetchOnce(url, options, signal);
    }, signal);
  } catch (error) {
    if (error instanceof RetryableFetch) throw new Error(`${error.message} after ${attempts} attempts`);
    throw error;
  }
}

async function fetchOnce(start: URL, options: UrlFetchOptions, signal: AbortSignal): Promise<Fetched> {
  let url = start;
  for (let hop = 0; ; hop++) {
    if (!options.allowedOrigins.has(url.origin))
      throw new OriginNotAllowed(`origin ${url.origin} is not on WARM_ALLOWED_ORIGINS`);
    let res: Response;
    try {
      res = await fetch(url, {
        redirect: 'manual',
        signal: AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs)]),
      });
    } catch (error) {
      if (signal.aborted) throw error;
      throw new RetryableFetch(error instanceof Error ? `${error.message}` : String(error));
    }
    if (res.status >= 300 && res.status < 400) {
      await res.body?.cancel();
      const location = res.headers.get('location');
      if (!location) throw new Error(`HTTP ${res.status} without Location`);
      if (hop >= maxRedirects) throw new Error(`more than ${maxRedirects} redirects`);
      url = new URL(location, url);
      continue;
    }
    if (!res.ok) {
      await res.body?.cancel();
      const message = `HTTP ${res.status}`;
      if (res.status >= 500 || res.status === 408 || res.status === 429) throw new RetryableFetch(message);
      throw new Error(message);
    }
    const declared = Number(res.headers.get('content-length') ?? 0);
    if (declared > options.maxValueBytes) {
      await res.body?.cancel();
      throw new Error(`value of ${declared} bytes is larger than MAX_VALUE_BYTES (${options.maxValueBytes})`);
    }
    const value = new Uint8Array(await res.arrayBuffer());
    if (value.byteLength > options.maxValueBytes)
      throw new Error(`value of ${value.byteLength} bytes is larger than MAX_VALUE_BYTES (${options.maxValueBytes})`);
    return { value, contentType: res.headers.get('content-type') ?? 'application/octet-stream' };
  }
}
