import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { Miniflare } from 'miniflare';
import { expect } from 'vitest';
import { bundleForWorkers } from '../../scripts/build-worker.ts';
import { denoBin } from './deno.ts';
import { expectedScenario, type UpstashScenarioInput } from './upstash-scenario.ts';

const root = resolve(import.meta.dirname, '..', '..');

/** Runs the Upstash scenario with the client in a `deno` process; resolves with its record. */
export async function scenarioOnDeno(input: UpstashScenarioInput): Promise<Record<string, unknown>> {
  const { stdout } = await promisify(execFile)(
    denoBin,
    [
      'run',
      '--allow-net',
      `--allow-read=${root}`,
      '--allow-env',
      resolve(root, 'test/support/upstash-deno.ts'),
      JSON.stringify(input),
    ],
    {
      cwd: root,
      env: { PATH: process.env.PATH, HOME: process.env.HOME, UPSTASH_DISABLE_TELEMETRY: '1' },
      timeout: 60_000,
    },
  );
  return JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, unknown>;
}

/** Bundles `upstash-worker.ts` (the client's Cloudflare build) for workerd; resolves with the bundle's path. */
export async function buildUpstashWorker(): Promise<string> {
  return await bundleForWorkers(
    resolve(root, 'test/support/upstash-worker.ts'),
    resolve(root, 'dist', 'upstash-scenario-worker.js'),
  );
}

/** Runs the Upstash scenario with the client inside workerd (Miniflare); resolves with its record. */
export async function scenarioInWorkerd(input: UpstashScenarioInput): Promise<Record<string, unknown>> {
  const mf = new Miniflare({ modules: true, scriptPath: await buildUpstashWorker(), compatibilityDate: '2025-09-01' });
  try {
    const res = await mf.dispatchFetch('http://scenario.test/', { method: 'POST', body: JSON.stringify(input) });
    const text = await res.text();
    if (res.status !== 200) throw new Error(`scenario worker answered ${res.status}: ${text}`);
    return JSON.parse(text) as Record<string, unknown>;
  } finally {
    await mf.dispose();
  }
}

/** Asserts a scenario record field by field, so a failure names the field and what the client returned. */
export function expectScenario(record: Record<string, unknown>): void {
  const expected = expectedScenario();
  const wrong = Object.entries(expected)
    .filter(([field, check]) => !check(record[field]))
    .map(([field]) => ({ field, got: record[field] }));
  expect(wrong).toEqual([]);
  expect(Object.keys(record).sort()).toEqual(Object.keys(expected).sort());
}
