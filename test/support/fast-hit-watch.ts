import type { FastHit } from '../../edge/fast-hit.ts';

/**
 * The edge's hit fast path, wrapped so a test learns who answered each
 * request: `taken('fast')` when the fast path answered, `taken('app')` when it
 * declined and the app answers. Throws when the edge built no fast path.
 * Runtime-free (the Deno twin imports it too).
 */
export function watchFastHit(inner: FastHit | undefined, taken: (side: 'fast' | 'app') => void): FastHit {
  if (!inner) throw new Error('no fast path built');
  return (method, target, request, header) => {
    const answer = inner(method, target, request, header);
    taken(answer ? 'fast' : 'app');
    return answer;
  };
}
