import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { launchChromium } from '../support/chromium.ts';
import { hs256Issuer } from '../support/jwt.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const artifacts = resolve(import.meta.dirname, '../../test-artifacts');

const panels = ['hit-ratio', 'latency', 'rps', 'purge-lag', 'breaker', 'edges'];

/** A page in Debian's headless Chromium; the browser is closed by `cleanups`. */
async function openBrowser(cleanups: (() => Promise<void> | void)[]) {
  const browser = await launchChromium();
  cleanups.push(() => browser.close());
  return await browser.context.newPage();
}

/** Resolves once every chart holds data points (the page sets data-samples from the series it plots). */
async function chartsFilled(page: Page) {
  await page.waitForFunction(
    (ids) => ids.every((id) => Number(document.getElementById(id)?.dataset.samples ?? 0) > 0),
    panels,
    { timeout: 20_000, polling: 200 },
  );
  for (const id of panels) expect(await page.locator(`#${id} canvas`).count()).toBeGreaterThan(0);
}

/**
 * Issue 7: the live dashboard in a real browser (Debian's Chromium, driven
 * by playwright-core), over an origin on real Redis and two edges that
 * report their numbers.
 */
describe('dashboard', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  it('loads in headless Chromium and shows non-empty charts after traffic; a screenshot is saved', async () => {
    const origin = await originFor({ REDIS_URL: inject('redisUrl'), STATS_SAMPLE_SECONDS: '1' });
    cleanups.push(() => origin.close());
    const edges = [
      await edgeFor(origin.url, { EDGE_STATS_INTERVAL_SECONDS: '1', EDGE_ID: 'edge-a', EDGE_MAX_TTL_SECONDS: '60' }),
      await edgeFor(origin.url, { EDGE_STATS_INTERVAL_SECONDS: '1', EDGE_ID: 'edge-b', EDGE_MAX_TTL_SECONDS: '60' }),
    ];
    for (const e of edges) cleanups.push(() => e.close());

    // Traffic until the origin's stats hold points with reads at both layers and applied purges.
    const ns = `dash-${crypto.randomUUID().slice(0, 8)}`;
    let i = 0;
    let stop = false;
    const traffic = (async () => {
      while (!stop) {
        const key = `k${i++ % 20}`;
        await (
          await fetch(`${origin.url}/api/v1/cache/${ns}/${key}?ttl=60`, { method: 'PUT', body: 'v' })
        ).arrayBuffer();
        for (const e of edges) {
          for (let r = 0; r < 5; r++) await (await fetch(`${e.url}/api/v1/cache/${ns}/${key}`)).arrayBuffer();
          await (await fetch(`${e.url}/api/v1/cache/${ns}/absent-${i}`)).arrayBuffer();
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    cleanups.push(async () => {
      stop = true;
      await traffic;
    });
    type Stats = { edges: { edge_id: string }[]; points: Record<string, unknown>[] };
    const stats = await eventually(
      'stats with edge reads, origin reads and purge lag',
      async () => {
        const s = (await (await fetch(`${origin.url}/api/v1/stats`)).json()) as Stats;
        const ready =
          s.edges.length === 2 &&
          s.points.some((p) => (p.edgeRps as number) > 0) &&
          s.points.some((p) => p.purgeLagP99 !== null) &&
          s.points.filter((p) => (p.hitRatio as Record<string, unknown>).edge !== null).length >= 2;
        return ready ? s : undefined;
      },
      30_000,
      250,
    );
    expect(stats.edges.map((e) => e.edge_id).sort()).toEqual(['edge-a', 'edge-b']);

    const page = await openBrowser(cleanups);
    const failures: string[] = [];
    page.on('pageerror', (e) => failures.push(e.message));
    page.on('requestfailed', (r) => failures.push(`${r.url()} ${r.failure()?.errorText}`));
    const res = await page.goto(`${origin.url}/dashboard`);
    expect(res?.status()).toBe(200);

    await chartsFilled(page);
    const status = await page.locator('#status').textContent();
    expect(status).toContain('breaker closed');
    expect(status).toContain('eviction s3fifo');
    expect(status).toMatch(/hit ratio: .*\d+\.\d%/);
    expect(status).toContain('edge-a');
    expect(failures).toEqual([]);

    mkdirSync(artifacts, { recursive: true });
    const shot = join(artifacts, 'dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    expect(statSync(shot).size).toBeGreaterThan(10_000);
  });

  it('with authentication on, asks for a metrics:read token and then draws the charts', async () => {
    const issuer = hs256Issuer();
    const origin = await originFor({ ...issuer.env, REDIS_URL: inject('redisUrl'), STATS_SAMPLE_SECONDS: '1' });
    cleanups.push(() => origin.close());
    const edgeToken = await issuer.sign({ serviceId: 'edge-auth' });
    const edge = await edgeFor(origin.url, {
      EDGE_ORIGIN_TOKEN: edgeToken,
      EDGE_STATS_INTERVAL_SECONDS: '1',
      EDGE_ID: 'edge-auth',
    });
    cleanups.push(() => edge.close());
    const auth = { Authorization: `Bearer ${edgeToken}` };
    const ns = `dash-${crypto.randomUUID().slice(0, 8)}`;
    let stop = false;
    const traffic = (async () => {
      for (let i = 0; !stop; i++) {
        await (
          await fetch(`${origin.url}/api/v1/cache/${ns}/k${i % 5}?ttl=60`, { method: 'PUT', body: 'v', headers: auth })
        ).arrayBuffer();
        for (let r = 0; r < 3; r++)
          await (await fetch(`${edge.url}/api/v1/cache/${ns}/k${i % 5}`, { headers: auth })).arrayBuffer();
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    cleanups.push(async () => {
      stop = true;
      await traffic;
    });
    expect((await fetch(`${origin.url}/api/v1/stats`)).status).toBe(401);
    await eventually(
      'the edge reporting with its token',
      async () => {
        const res = await fetch(`${origin.url}/api/v1/stats`, { headers: auth });
        const s = (await res.json()) as { edges: unknown[]; points: { purgeLagP99: number | null }[] };
        return s.edges.length === 1 && s.points.some((p) => p.purgeLagP99 !== null);
      },
      30_000,
      250,
    );

    const page = await openBrowser(cleanups);
    await page.goto(`${origin.url}/dashboard`);
    await page.locator('#auth').waitFor({ state: 'visible' });
    expect(await page.locator('#status').textContent()).toBe('authentication required');
    // Without a token the page says where one comes from.
    const help = await page.locator('#token-help').textContent();
    expect(help).toContain('npm start');
    expect(help).toContain('npm run token -- --scope metrics:read');
    await page.fill('#token', await issuer.sign({ serviceId: 'operator', scope: ['metrics:read'] }));
    await page.click('#auth button');
    await chartsFilled(page);
    expect(await page.locator('#status').textContent()).toContain('edge-auth');
    mkdirSync(artifacts, { recursive: true });
    await page.screenshot({ path: join(artifacts, 'dashboard-auth.png'), fullPage: true });
  });
});
