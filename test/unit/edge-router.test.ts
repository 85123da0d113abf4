import { describe, expect, it } from 'vitest';
import { buildEdge } from '../../edge/build-edge.ts';
import { edgeConfigSchema, parseConfig } from '../../shared/config.ts';

/**
 * Hono's SmartRouter picks RegExpRouter (one regular expression per method)
 * unless some pair of routes is beyond it, and then falls back to TrieRouter
 * for every request, which costs the hit path several µs of CPU. The edge's
 * routes must stay within RegExpRouter.
 */
describe('edge routing', () => {
  const edge = () =>
    buildEdge(parseConfig(edgeConfigSchema, { EDGE_PORT: '0', ORIGIN_URL: 'http://127.0.0.1:9' }), {
      purgeSource: 'poll',
    });

  it('uses RegExpRouter', async () => {
    const built = edge();
    try {
      await built.app.request('/health');
      const router = built.app.router as unknown as { activeRouter?: { name: string } };
      expect(router.activeRouter?.name).toBe('RegExpRouter');
    } finally {
      built.close();
    }
  });

  it('still answers the pattern alias and 404 for other three-segment paths', async () => {
    const built = edge();
    try {
      // The origin is unreachable here, so the alias answers the origin-failure error, not 404.
      const alias = await built.app.request('/api/v1/cache/ns/pattern/a*');
      expect(alias.status).not.toBe(404);
      const other = await built.app.request('/api/v1/cache/ns/other/a');
      expect(other.status).toBe(404);
    } finally {
      built.close();
    }
  });
});
