import type { FastHit, HitAnswer } from '../../fast-hit.ts';

/**
 * A `Deno.serve` handler (any WHATWG fetch handler) that answers fresh edge
 * hits itself (`edge/fast-hit.ts`: no Hono context, no middleware chain) and
 * hands every other request to `app` untouched. Runtime-free apart from the
 * WHATWG `Request`/`Response` it takes and makes.
 */
export function fastHitHandler(
  fastHit: FastHit | undefined,
  app: (request: Request, info?: unknown) => Response | Promise<Response>,
): (request: Request, info?: unknown) => Response | Promise<Response> {
  if (!fastHit) return app;
  return (request, info) => {
    let answer: HitAnswer | undefined;
    try {
      answer = fastHit(request.method, request.url, request, fetchHeader);
    } catch {
      // The app answers (or envelopes) what the fast path could not.
      answer = undefined;
    }
    if (!answer) return app(request, info);
    return new Response(answer.body as Uint8Array<ArrayBuffer> | null, {
      status: answer.status,
      headers: answer.headers,
    });
  };
}

function fetchHeader(request: Request, name: string): string | null {
  return request.headers.get(name);
}
