import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import type { RunningOrigin } from '../../origin/server.ts';
import { type WarmJob, warmJobSchema, warmStartedSchema } from '../../shared/warm.ts';
import { originFor } from './stack.ts';
import { eventually } from './wait.ts';

/** A data source on loopback: `handle` answers each `GET /items/{key}`; every request path is recorded. */
export interface DataSource {
  readonly origin: string;
  readonly requests: string[];
  close(): Promise<void>;
}

export async function dataSource(
  handle: (key: string, req: IncomingMessage, res: ServerResponse) => void,
): Promise<DataSource> {
  const requests: string[] = [];
  const server: Server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://x').pathname;
    requests.push(path);
    const key = decodeURIComponent(path.replace(/^\/items\//, ''));
    handle(key, req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** `POST /api/v1/jobs/warm` with `query` and the source as the body. */
export const startWarm = (base: string, query: Record<string, string>, body: string | Uint8Array<ArrayBuffer>) =>
  fetch(`${base}/api/v1/jobs/warm?${new URLSearchParams(query)}`, { method: 'POST', body });

/** The id of a job the origin accepted (202). */
export const started = async (res: Response): Promise<string> => {
  expect(res.status, await res.clone().text()).toBe(202);
  return warmStartedSchema.parse(await res.json()).id;
};

/** `GET /api/v1/jobs/{id}`, expected to answer 200. */
export const job = async (base: string, id: string): Promise<WarmJob> => {
  const res = await fetch(`${base}/api/v1/jobs/${id}`);
  expect(res.status).toBe(200);
  return warmJobSchema.parse(await res.json());
};

/** Polls the job until it is no longer running. */
export const finished = (base: string, id: string, timeoutMs = 60_000): Promise<WarmJob> =>
  eventually(
    `job ${id} to finish`,
    async () => {
      const j = await job(base, id);
      return j.state !== 'running' ? j : null;
    },
    timeoutMs,
    100,
  );

/** The value of entry `i` of {@link jsonlEntries}. */
export const entryValue = (i: number): string => `value-${i}-${'x'.repeat(i % 50)}`;

/** `count` JSON Lines entries `item:<i>` (TTL 600 s, odd ones tagged `odd`), and their value bytes. */
export function jsonlEntries(count: number): { lines: string[]; valueBytes: number } {
  const lines: string[] = [];
  let valueBytes = 0;
  for (let i = 0; i < count; i++) {
    const value = entryValue(i);
    valueBytes += Buffer.byteLength(value);
    lines.push(JSON.stringify({ key: `item:${i}`, value, ttl: 600, tags: i % 2 ? ['odd'] : [] }));
  }
  return { lines, valueBytes };
}

/** Polls the job every 50 ms until it is no longer running; answers every state read on the way and the last. */
export async function watched(
  base: string,
  id: string,
  what: string,
  timeoutMs = 120_000,
): Promise<{ seen: WarmJob[]; last: WarmJob }> {
  const seen: WarmJob[] = [];
  const last = await eventually(
    what,
    async () => {
      const j = await job(base, id);
      seen.push(j);
      return j.state !== 'running' ? j : null;
    },
    timeoutMs,
    50,
  );
  return { seen, last };
}

/** A URL job whose fetches its data source holds unanswered, on an origin of its own. */
export interface HeldUrlJob {
  readonly id: string;
  readonly namespace: string;
  readonly runner: RunningOrigin;
  readonly source: DataSource;
  /** The held responses: destroy them once the job is over. */
  readonly held: ServerResponse[];
}

/**
 * Starts a data source that never answers, an origin over `env` allowed to
 * fetch from it, and a URL job of `keys` keys at `concurrency`; resolves once
 * `concurrency` fetches are in flight. Both servers are closed through
 * `cleanups`, the origin first.
 */
export async function heldUrlJob(
  env: Record<string, string>,
  cleanups: (() => Promise<unknown>)[],
  { keys, concurrency, namespace }: { keys: number; concurrency: number; namespace: string },
): Promise<HeldUrlJob> {
  const held: ServerResponse[] = [];
  const source = await dataSource((_key, _req, res) => held.push(res));
  cleanups.push(() => source.close());
  const runner = await originFor({ ...env, WARM_ALLOWED_ORIGINS: source.origin });
  cleanups.push(() => runner.close());
  const id = await started(
    await startWarm(
      runner.url,
      {
        namespace,
        format: 'keys',
        url_template: `${source.origin}/items/{key}`,
        concurrency: String(concurrency),
      },
      Array.from({ length: keys }, (_, i) => `k${i}`).join('\n'),
    ),
  );
  await eventually(`${concurrency} fetches in flight`, () => source.requests.length === concurrency);
  return { id, namespace, runner, source, held };
}

/** Two replicas of one region warming at start-up from a data source that holds every fetch. */
export interface StartupWarming {
  readonly first: RunningOrigin;
  readonly second: RunningOrigin;
  readonly source: DataSource;
  /** Answers every held fetch with `warm <key>`, then waits until both replicas answer `/ready` with 200. */
  release(): Promise<void>;
}

/**
 * Starts a data source that holds each fetch, then two origins over `env`
 * in a region of their own whose `WARM_ON_START` warms `keys` of
 * `namespace` from it; resolves once every key is being fetched (by
 * whichever replica took the region's start-up lease). Everything is closed
 * through `cleanups`.
 */
export async function startupWarming(
  env: Record<string, string>,
  cleanups: (() => Promise<unknown>)[],
  { namespace, keys }: { namespace: string; keys: string[] },
): Promise<StartupWarming> {
  const held: { key: string; res: ServerResponse }[] = [];
  const source = await dataSource((key, _req, res) => held.push({ key, res }));
  cleanups.push(() => source.close());
  const replicaEnv = {
    ...env,
    STRATA_REGION: `r${Date.now().toString(36)}`,
    WARM_ALLOWED_ORIGINS: source.origin,
    WARM_ON_START: JSON.stringify([{ namespace, format: 'keys', keys, url_template: `${source.origin}/items/{key}` }]),
  };
  const first = await originFor(replicaEnv);
  cleanups.push(() => first.close());
  const second = await originFor(replicaEnv);
  cleanups.push(() => second.close());
  await eventually('the warming to fetch', () => held.length === keys.length);
  return {
    first,
    second,
    source,
    async release() {
      for (const { key, res } of held) res.writeHead(200).end(`warm ${key}`);
      for (const o of [first, second]) {
        await eventually(
          'ready after the warming',
          async () => {
            const res = await fetch(`${o.url}/ready`);
            if (res.status !== 200) throw new Error(await res.text());
            return true;
          },
          10_000,
        );
      }
    },
  };
}
