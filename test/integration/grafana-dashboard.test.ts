import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { edgeFor, originFor } from '../support/stack.ts';

const dashboard = JSON.parse(
  readFileSync(resolve(import.meta.dirname, '../../docs/grafana-dashboard.json'), 'utf8'),
) as {
  panels: { type: string; targets?: { expr: string }[] }[];
};

/** docs/grafana-dashboard.json only queries metrics Strata really exports (names drift silently otherwise). */
describe('Grafana dashboard', () => {
  const cleanups: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('every metric its queries name is exported by an origin (Redis or embedded store) or an edge', async () => {
    const redisOrigin = await originFor({ REDIS_URL: inject('redisUrl') });
    cleanups.push(() => redisOrigin.close());
    const memoryOrigin = await originFor();
    cleanups.push(() => memoryOrigin.close());
    const edge = await edgeFor(redisOrigin.url);
    cleanups.push(() => edge.close());

    const exported = new Set<string>();
    for (const base of [redisOrigin.url, memoryOrigin.url, edge.url]) {
      const text = await (await fetch(`${base}/metrics`)).text();
      for (const m of text.matchAll(/^# TYPE (\S+) (\S+)/gm)) {
        exported.add(m[1]!);
        if (m[2] === 'histogram') for (const s of ['_bucket', '_sum', '_count']) exported.add(`${m[1]}${s}`);
      }
    }
    const queried = new Set<string>();
    for (const panel of dashboard.panels) {
      for (const t of panel.targets ?? [])
        for (const m of t.expr.matchAll(/\b(strata_\w+|process_\w+)/g)) queried.add(m[1]!);
    }
    expect(queried.size).toBeGreaterThan(10);
    expect([...queried].filter((name) => !exported.has(name))).toEqual([]);
  });
});
