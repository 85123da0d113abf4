import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'vitest';
import { type WarmJob, warmJobSchema, warmStartedSchema } from '../../shared/warm.ts';
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
