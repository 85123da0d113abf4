import pino, { type Logger } from 'pino';
import { type RunningEdge, startEdge } from '../../edge/adapters/node/server.ts';
import { type RunningOrigin, startOrigin } from '../../origin/server.ts';
import { edgeConfigSchema, originConfigSchema, parseConfig } from '../../shared/config.ts';

const quiet = pino({ level: 'silent' });

let purgeLogs = 0;
/** A purge log key no other origin of this test run uses (one `{hash tag}`, as on Cluster). */
export const ownPurgeLogKey = (): string => `{test-purge-log-${process.pid}-${++purgeLogs}}`;

/**
 * Starts an origin on a free port with `env` over the defaults (memory store
 * unless REDIS_URL is given); silent unless a `logger` is given.
 */
export async function originFor(
  env: Record<string, string> = {},
  options: { logger?: Logger } = {},
): Promise<RunningOrigin> {
  // A purge log of its own unless the test shares one on purpose: test files run in parallel on one Redis.
  const config = parseConfig(originConfigSchema, { ORIGIN_PORT: '0', PURGE_LOG_KEY: ownPurgeLogKey(), ...env });
  return await startOrigin(config, { logger: options.logger ?? quiet });
}

/** Starts an edge on a free port pointing at `originUrl`; resolves once its purge stream is up. */
export async function edgeFor(
  originUrl: string,
  env: Record<string, string> = {},
  options: { logger?: Logger } = {},
): Promise<RunningEdge> {
  const config = parseConfig(edgeConfigSchema, { EDGE_PORT: '0', ORIGIN_URL: originUrl, ...env });
  const edge = await startEdge(config, { logger: options.logger ?? quiet });
  const deadline = Date.now() + 10_000;
  while (!edge.subscription.connected) {
    if (Date.now() > deadline) throw new Error('edge did not connect to the purge stream');
    await new Promise((r) => setTimeout(r, 10));
  }
  return edge;
}
