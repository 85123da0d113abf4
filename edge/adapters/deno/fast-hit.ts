import type { FastHit } from '../../fast-hit.ts';

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
    const answer = fastHit(request.method, request.url, request, fetchHeader);
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
