import type { Readable } from 'node:stream';
import { Agent } from 'undici';
import type { OriginAnswer, OriginExchange, OriginTransport } from '../../origin-transport.ts';

/**
 * The Node edge's way to the origin: undici's `request` on an `Agent` of its
 * own (keep-alive connections, undici's defaults), with no WHATWG
 * `Request`/`Response` and no web streams. The request body (a PUT's value)
 * is written to the socket as it is; the answer's body is copied once, chunk
 * by chunk as the socket delivers it, into one buffer of its
 * `Content-Length` (RFC 9110 §8.6), or gathered and joined once when the
 * origin sends none. The `fetch`-based transport concatenated the chunks of a
 * stream and copied them again through the web-stream adapters; on the real
 * trace's 36 KB values that was about an eighth of the edge's CPU, and the
 * transient buffers inflated its peak resident memory.
 *
 * Rejects with the signal's reason (`TimeoutError` from
 * `AbortSignal.timeout`) when the call is aborted, headers or body, and with
 * undici's error when the origin cannot be reached or the connection breaks
 * — what the origin client maps to CACHE_005.
 *
 * `options.onBody` is called with each complete body's length (bytes), e.g.
 * `fillCollector` (`./fill-collector.ts`) pacing garbage collections by bytes read.
 */
export function undiciOriginTransport(
  agent: Agent = new Agent(),
  options: { onBody?: (bodyBytes: number) => void } = {},
): OriginTransport {
  const { onBody } = options;
  let lastBase = '';
  let origin = '';
  let prefix = '';
  return async (exchange: OriginExchange): Promise<OriginAnswer> => {
    if (exchange.base !== lastBase) {
      const url = new URL(exchange.base);
      origin = url.origin;
      prefix = url.pathname === '/' ? '' : url.pathname.replace(/\/+$/, '');
      lastBase = exchange.base;
    }
    const { signal } = exchange;
    const res = await agent.request({
      origin,
      path: `${prefix}${exchange.path}`,
      method: exchange.method,
      headers: exchange.headers,
      body: exchange.body ?? null,
      signal,
    });
    const body = await readWhole(res.body, res.headers['content-length'], signal);
    onBody?.(body.byteLength);
    const h = res.headers;
    return {
      status: res.statusCode,
      header: (name) => {
        const v = h[name.toLowerCase()];
        return v === undefined ? null : Array.isArray(v) ? v.join(', ') : v;
      },
      body,
    };
  };
}

/**
 * The body in one buffer of its own (a plain `Uint8Array` over an
 * `ArrayBuffer` of exactly its length, never a slice of a socket buffer):
 * sized by `Content-Length` when given, else the chunks joined once.
 */
function readWhole(
  stream: Readable,
  contentLength: string | string[] | undefined,
  signal: AbortSignal,
): Promise<Uint8Array> {
  const declared = typeof contentLength === 'string' ? Number(contentLength) : Number.NaN;
  return new Promise((resolve, reject) => {
    let whole: Uint8Array | undefined =
      Number.isSafeInteger(declared) && declared >= 0 ? ownBytes(Buffer.allocUnsafeSlow(declared)) : undefined;
    const chunks: Uint8Array[] = [];
    let length = 0;
    const onAbort = () => stream.destroy(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    stream.on('data', (chunk: Buffer) => {
      if (whole && length + chunk.byteLength <= whole.byteLength) {
        whole.set(chunk, length);
        length += chunk.byteLength;
        return;
      }
      if (whole) {
        // More than declared (undici fails such a response first): never write past the buffer.
        chunks.push(whole.subarray(0, length));
        whole = undefined;
      }
      chunks.push(chunk);
      length += chunk.byteLength;
    });
    stream.once('error', (error) => {
      signal.removeEventListener('abort', onAbort);
      reject(error);
    });
    stream.once('end', () => {
      signal.removeEventListener('abort', onAbort);
      if (whole) return resolve(length === whole.byteLength ? whole : whole.slice(0, length));
      const joined = new Uint8Array(length);
      let at = 0;
      for (const chunk of chunks) {
        joined.set(chunk, at);
        at += chunk.byteLength;
      }
      resolve(joined);
    });
  });
}

/** A `Buffer`'s bytes as a plain `Uint8Array` (same memory): the edge's tier holds `Uint8Array`s, not `Buffer`s. */
function ownBytes(buffer: Buffer): Uint8Array {
  return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
}
