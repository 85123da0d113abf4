/**
 * How an edge's origin client puts one request on the wire and reads the
 * answer back whole. Runtime-free: the default goes through the runtime's
 * `fetch` (Deno, Workers); the Node adapter injects a transport on undici's
 * dispatcher API (`edge/adapters/node/origin-transport.ts`) that has no
 * WHATWG `Request`/`Response` or web streams between the socket and the value.
 */

/** One request to the origin. */
export interface OriginExchange {
  /** HTTP method, upper case. */
  readonly method: 'GET' | 'PUT' | 'POST' | 'DELETE';
  /** The origin's base URL, e.g. `http://127.0.0.1:8080` (no trailing slash; may carry a path prefix). */
  readonly base: string;
  /** Path and query under `base`, e.g. `/api/v1/cache/ns/k`. */
  readonly path: string;
  /** Request headers (names as written; HTTP header names are case-insensitive). */
  readonly headers: Readonly<Record<string, string>>;
  /** Request body, sent as it is (no copy where the runtime allows). */
  readonly body?: Uint8Array<ArrayBuffer>;
  /** Aborts the call: headers and body must arrive before it fires. */
  readonly signal: AbortSignal;
}

/** The origin's answer, body read whole. */
export interface OriginAnswer {
  /** HTTP status code. */
  readonly status: number;
  /** One response header's value (case-insensitive name), null when absent. */
  header(name: string): string | null;
  /** The whole body, one buffer (bytes). */
  readonly body: Uint8Array;
}

/**
 * Sends one exchange and resolves with the answer once its body is complete.
 * Rejects as `fetch` does: with the signal's reason (`TimeoutError` /
 * `AbortError`) when aborted, with another error when the origin cannot be
 * reached or the connection breaks.
 */
export type OriginTransport = (exchange: OriginExchange) => Promise<OriginAnswer>;

/** The transport over a `fetch` (default: the runtime's global one). */
export function fetchTransport(fetchFn: typeof fetch = (input, init) => fetch(input, init)): OriginTransport {
  return async ({ method, base, path, headers, body, signal }) => {
    const res = await fetchFn(`${base}${path}`, { method, headers, ...(body ? { body } : {}), signal });
    const bytes = new Uint8Array(await res.arrayBuffer());
    return { status: res.status, header: (name) => res.headers.get(name), body: bytes };
  };
}
