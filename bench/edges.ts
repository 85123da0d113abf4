import type { Logger } from 'pino';
import { type RunningEdge, startEdge } from '../edge/adapters/node/server.ts';
import { edgeConfigSchema, parseConfig } from '../shared/config.ts';

/**
 * Starts `count` edges on free loopback ports in front of `originUrl`, each
 * logging to `logger`; each edge's `close` goes first in `cleanups`, so a
 * bench tears edges down before their origin.
 */
export async function benchEdges(
  originUrl: string,
  count: number,
  logger: Logger,
  cleanups: (() => Promise<void>)[],
): Promise<RunningEdge[]> {
  const edges: RunningEdge[] = [];
  for (let i = 0; i < count; i++) {
    const edge = await startEdge(
      parseConfig(edgeConfigSchema, { EDGE_PORT: '0', ORIGIN_URL: originUrl, LOG_LEVEL: 'silent' }),
      { logger },
    );
    cleanups.unshift(() => edge.close());
    edges.push(edge);
  }
  return edges;
}
