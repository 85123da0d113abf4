import { mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { launchChromium } from '../support/chromium.ts';
import { hs256Issuer } from '../support/jwt.ts';
import { edgeFor, originFor } from '../support/stack.ts';

const artifacts = resolve(import.meta.dirname, '../../test-artifacts');

/**
 * `/openapi.json` and `/docs`: open even with auth on, and the
 * reference page renders every operation in Debian's headless Chromium.
 */
describe('API reference', () => {
  let origin: RunningOrigin;
  let edge: RunningEdge;
  const issuer = hs256Issuer();
  beforeAll(async () => {
    origin = await originFor(issuer.env);
    edge = await edgeFor(origin.url, { ...issuer.env, EDGE_ORIGIN_TOKEN: await issuer.sign({ ns: ['*'] }) });
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
  });

  it('both tiers serve an OpenAPI 3.1 document without a token, describing the same cache API', async () => {
    const fromEdge = await (await fetch(`${edge.url}/openapi.json`)).json();
    const fromOrigin = await (await fetch(`${origin.url}/openapi.json`)).json();
    expect(fromEdge.openapi).toBe('3.1.0');
    expect(fromOrigin.openapi).toBe('3.1.0');
    // Same operations everywhere; only what "ready" means differs between the sides.
    for (const path of Object.keys(fromEdge.paths).filter((p) => p !== '/ready')) {
      expect(fromOrigin.paths[path]).toEqual(fromEdge.paths[path]);
    }
    expect(Object.keys(fromEdge.paths)).toContain('/api/v1/cache/{namespace}/{key}');
    // The origin adds its own endpoints.
    expect(Object.keys(fromOrigin.paths)).toContain('/api/v1/purge/stream');
  });

  it('/docs renders every operation in headless Chromium; a screenshot is saved', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.context.newPage();
      const external: string[] = [];
      page.on('request', (r) => {
        if (!r.url().startsWith(edge.url)) external.push(r.url());
      });
      await page.goto(`${edge.url}/docs`);
      await page.waitForFunction(() => Number(document.body.dataset.rendered ?? 0) > 0, undefined, {
        timeout: 20_000,
        polling: 100,
      });
      const spec = await (await fetch(`${edge.url}/openapi.json`)).json();
      const operations = Object.values(spec.paths as Record<string, Record<string, unknown>>).flatMap((item) =>
        ['get', 'put', 'post', 'delete'].filter((m) => m in item),
      );
      expect(await page.locator('section.op').count()).toBe(operations.length);
      expect(await page.locator('#title').textContent()).toBe(spec.info.title);
      await expect(page.locator('#putEntry').textContent()).resolves.toContain('/api/v1/cache/{namespace}/{key}');
      // Every operation shows an example request, with the token as npm start prints it.
      expect(await page.locator('pre.example').count()).toBe(operations.length);
      await expect(page.locator('#putEntry pre.example').textContent()).resolves.toContain(
        '-H "Authorization: Bearer $STRATA_TOKEN"',
      );
      await expect(page.locator('#putEntry').textContent()).resolves.toContain('hello, strata');
      expect(external).toEqual([]);
      mkdirSync(artifacts, { recursive: true });
      const shot = join(artifacts, 'api-docs.png');
      await page.screenshot({ path: shot, fullPage: true });
      expect(statSync(shot).size).toBeGreaterThan(10_000);
    } finally {
      await browser.close();
    }
  });
});
