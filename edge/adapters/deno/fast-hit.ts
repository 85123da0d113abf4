import { headers as headerNames } from '../../../shared/headers.ts';
import type { FastHit, HitAnswer } from '../../fast-hit.ts';

/**
 * A `Deno.serve` handler (any WHATWG fetch handler) that answers fresh edge
 * hits itself (`edge/fast-hit.ts`: no Hono context, no middleware chain) and
 * hands every other request to `app` untouched. Runtime-free apart from the
 * WHATWG `Request`/`Response` it takes and makes.
 *
 * A hit's `Response` is not built from its header object: Deno's
 * `new Response(body, { headers })` converts every header (WebIDL
 * `ByteString`, value trimming, a lower-casing duplicate scan per header, so
 * quadratic in the header count) and copies the body
 * (`ext/fetch/23_response.js`, `ext/fetch/22_body.js`). Instead a response is
 * prebuilt once per tier entry and answer (status, every header but
 * `X-Request-Id`, body) and each hit answers with its `clone()`, which copies
 * the header list as it is and shares the body bytes, plus the request's
 * `X-Request-Id`. The prebuilt response is used only while the fast path's
 * answer is the same in every header and byte (`Age` and `Cache-Control`
 * change by the second, so a second later it is rebuilt); the answer is
 * therefore exactly the one built from the header object. The prebuilt
 * responses hold a copy of their bodies (the constructor copies), so they
 * are kept for the most recently prebuilt entries only, up to
 * {@link prebuiltBytes} in all (bodies, and {@link overheadBytes} for each
 * response); an entry pushed out is prebuilt again on its next hit. They are
 * found by entry through a `WeakMap`, so they never keep an entry the tier
 * dropped alive.
 */
export function fastHitHandler(
  fastHit: FastHit | undefined,
  app: (request: Request, info?: unknown) => Response | Promise<Response>,
): (request: Request, info?: unknown) => Response | Promise<Response> {
  if (!fastHit) return app;
  const prebuilt: PrebuiltSet = { byEntry: new WeakMap(), order: new Set(), bytes: 0 };
  return (request, info) => {
    let answer: HitAnswer | undefined;
    try {
      answer = fastHit(request.method, request.url, request, fetchHeader);
    } catch {
      // The app answers (or envelopes) what the fast path could not.
      answer = undefined;
    }
    if (!answer) return app(request, info);
    return respond(prebuilt, answer);
  };
}

/** One answer of one entry as a `Response` (all but `X-Request-Id`), and what it was built from. */
interface Prebuilt {
  readonly status: number;
  readonly body: Uint8Array | null;
  /** Header names and values in the answer's order, `X-Request-Id` left out. */
  readonly names: readonly string[];
  readonly values: readonly string[];
  readonly response: Response;
}

/** Prebuilt responses by tier entry; one slot per status (200 and 304 alternate without rebuilding). */
interface PrebuiltSet {
  readonly byEntry: WeakMap<object, Prebuilt[]>;
  /** The entries' slots that hold prebuilt responses, least recently (re)built first. */
  readonly order: Set<Prebuilt[]>;
  /** What the prebuilt responses hold, counted as {@link held} (bytes). */
  bytes: number;
}

/** The most the prebuilt responses hold in all (bytes); past it the oldest entries' are dropped. */
export const prebuiltBytes = 1024 * 1024;
/** What one prebuilt response counts for besides its body (bytes): its objects and header list, roughly. */
export const overheadBytes = 512;

const held = (p: { readonly body: Uint8Array | null }) => (p.body?.byteLength ?? 0) + overheadBytes;

const requestId = headerNames.requestId;
const requestIdLower = requestId.toLowerCase();

function respond(prebuilt: PrebuiltSet, answer: HitAnswer): Response {
  let slots = prebuilt.byEntry.get(answer.entry);
  let p: Prebuilt | undefined;
  for (const s of slots ?? []) if (s.status === answer.status) p = s;
  if (!p || !matches(p, answer)) {
    // A body alone over the bound is not prebuilt: answered from its header object.
    if (held(answer) > prebuiltBytes) return plain(answer);
    if (!slots) {
      slots = [];
      prebuilt.byEntry.set(answer.entry, slots);
    }
    // Newest last: the entry rebuilt now is the last to be dropped.
    prebuilt.order.delete(slots);
    prebuilt.order.add(slots);
    if (p) {
      slots.splice(slots.indexOf(p), 1);
      prebuilt.bytes -= held(p);
    }
    p = build(answer);
    slots.push(p);
    prebuilt.bytes += held(p);
    trim(prebuilt, slots);
  }
  const response = p.response.clone();
  const id = answer.headers[requestId];
  if (id !== undefined) response.headers.append(requestIdLower, id);
  return response;
}

/** Whether `p` answers exactly as `answer` (status, body bytes by identity, every header but the request id, in order). */
function matches(p: Prebuilt, answer: HitAnswer): boolean {
  if (p.body !== answer.body) return false;
  const { names, values } = p;
  let i = 0;
  for (const name in answer.headers) {
    if (name === requestId) continue;
    if (names[i] !== name || values[i] !== answer.headers[name]) return false;
    i++;
  }
  return i === names.length;
}

/** Drops the oldest entries' prebuilt responses until they fit {@link prebuiltBytes}, never `keep`'s. */
function trim(prebuilt: PrebuiltSet, keep: Prebuilt[]): void {
  for (const slots of prebuilt.order) {
    if (prebuilt.bytes <= prebuiltBytes) return;
    if (slots === keep) continue;
    prebuilt.order.delete(slots);
    for (const s of slots) prebuilt.bytes -= held(s);
    // The entry keeps its (now empty) slot list in the WeakMap until the entry itself goes.
    slots.length = 0;
  }
}

/** The answer as a `Response` built from its header object. */
function plain(answer: HitAnswer): Response {
  return new Response(answer.body as Uint8Array<ArrayBuffer> | null, {
    status: answer.status,
    headers: answer.headers,
  });
}

function build(answer: HitAnswer): Prebuilt {
  const names: string[] = [];
  const values: string[] = [];
  for (const name in answer.headers) {
    if (name === requestId) continue;
    names.push(name);
    values.push(answer.headers[name]!);
  }
  const response = new Response(answer.body as Uint8Array<ArrayBuffer> | null, {
    status: answer.status,
    // Lower-case names (as they go on the wire): Deno lower-cases every listed name on each append, and an
    // already lower-case one is returned as it is rather than copied.
    headers: names.map((name, i): [string, string] => [name.toLowerCase(), values[i]!]),
  });
  return { status: answer.status, body: answer.body, names, values, response };
}

function fetchHeader(request: Request, name: string): string | null {
  return request.headers.get(name);
}
