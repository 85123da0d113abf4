/**
 * Toxiproxy (https://github.com/Shopify/toxiproxy), a TCP proxy whose
 * latency, cuts and other faults are set through an HTTP API: the network
 * between regions in the multi-region rig and its tests. This kernel has no
 * netem, so delays and partitions happen in user space, per proxy.
 *
 * The server is built from the Go module with the machine's `go` into
 * `.cache/go-bin/toxiproxy-<version>/server` once (as
 * `scripts/ensure-test-prereqs.sh` does), and driven with
 * `toxiproxy-node-client`.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Proxy as ToxicProxy, Toxiproxy } from 'toxiproxy-node-client';
import { freePort } from '../lib/ports.ts';
import { hasCommand, spawnServer, stopPid, waitFor } from '../lib/proc.ts';
import type { RunningService, StartOptions } from './types.ts';

/** The Toxiproxy release installed (the newest the Go module proxy serves as `github.com/Shopify/toxiproxy/v2`). */
export const TOXIPROXY_VERSION = 'v2.5.0';

const root = resolve(import.meta.dirname, '../..');

/** Where the server binary of `version` lives. */
export function toxiproxyBinary(version = TOXIPROXY_VERSION): string {
  return join(root, '.cache', 'go-bin', `toxiproxy-${version}`, 'server');
}

/**
 * Makes sure the Toxiproxy server is built, with `go install` of
 * `github.com/Shopify/toxiproxy/v2/cmd/server@<version>` (from the Go module proxy).
 * @returns the binary's path.
 * @throws with the command to run by hand when `go` is missing or the build fails.
 */
export function ensureToxiproxy(version = TOXIPROXY_VERSION): string {
  const binary = toxiproxyBinary(version);
  if (existsSync(binary)) return binary;
  const gobin = resolve(binary, '..');
  const command = `GOBIN=${gobin} go install github.com/Shopify/toxiproxy/v2/cmd/server@${version}`;
  if (!hasCommand('go')) throw new Error(`toxiproxy needs go (>= 1.22). Install it, then run: ${command}`);
  mkdirSync(gobin, { recursive: true });
  process.stderr.write(`strata: building toxiproxy ${version} with go install (once)\n`);
  try {
    execFileSync('go', ['install', `github.com/Shopify/toxiproxy/v2/cmd/server@${version}`], {
      env: { ...process.env, GOBIN: gobin },
      stdio: ['ignore', 2, 2],
    });
  } catch (error) {
    throw new Error(`could not build toxiproxy (${(error as Error).message}). Run: ${command}`);
  }
  return binary;
}

export interface RunningToxiproxy extends RunningService {
  /** The HTTP API, `http://127.0.0.1:PORT`. */
  readonly url: string;
  /** A client of that API. */
  readonly client: Toxiproxy;
}

/** Starts a Toxiproxy server on a free loopback port and waits until its API answers. */
export async function startToxiproxy(options: StartOptions): Promise<RunningToxiproxy> {
  const binary = ensureToxiproxy();
  mkdirSync(options.dir, { recursive: true });
  const port = await freePort();
  const server = spawnServer(binary, ['-host', '127.0.0.1', '-port', String(port)], {
    logFile: join(options.dir, 'toxiproxy.log'),
    detached: options.detached,
  });
  const url = `http://127.0.0.1:${port}`;
  const client = new Toxiproxy(url);
  await waitFor(`toxiproxy on port ${port}`, async () => Boolean(await client.getVersion().catch(() => '')), 15_000);
  return {
    name: 'toxiproxy',
    env: { TOXIPROXY_URL: url },
    pids: [server.pid],
    dir: options.dir,
    url,
    client,
    stop: () => stopPid(server.pid),
  };
}

/**
 * Creates a proxy `listen → upstream` that adds `latencyMs` in each
 * direction (two `latency` toxics, upstream and downstream).
 */
export async function latencyProxy(
  client: Toxiproxy,
  name: string,
  listen: string,
  upstream: string,
  latencyMs: number,
): Promise<ToxicProxy> {
  const proxy = await client.createProxy({ name, listen, upstream });
  for (const stream of ['upstream', 'downstream'] as const) {
    await proxy.addToxic({
      name: `latency-${stream}`,
      type: 'latency',
      stream,
      toxicity: 1,
      attributes: { latency: latencyMs, jitter: 0 },
    });
  }
  return proxy;
}

/** Cuts (`enabled: false`: closes its connections and refuses new ones) or restores a proxy. */
export async function setProxyEnabled(client: Toxiproxy, name: string, enabled: boolean): Promise<void> {
  const proxy = await client.get(name);
  await proxy.update({ enabled, listen: proxy.listen, upstream: proxy.upstream });
}
