/**
 * The Python (pytest) and Go (`go test`) client suites, run as child
 * processes against real servers started here (clients-stack.ts), plus the
 * cross-language check: a binary value (not UTF-8) written by each of
 * TypeScript, Python and Go is read byte-exact by the other two.
 *
 * Order: TS writes; Go writes and reads TS; Python writes and reads TS and
 * Go; Go reads Python; TS reads Python and Go. The Go test binary is built
 * once and run twice; the Python venv is the one `npm run test:prereqs` made.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createCacheClient } from '../../client/index.ts';
import { compressedContentType } from '../../origin/compression.ts';
import { type ClientsStack, clientsStack, crossLanguagePayload } from './clients-stack.ts';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const python = join(root, '.cache/clients-venv/bin/python');
const goTests = [
  'TestEveryCall',
  'TestEncryptAndTokenProvider',
  'TestAuthErrors',
  'TestErrorCodes',
  'TestTimeoutAndRefusedConnection',
  'TestRetryAfter503',
  'TestBreakerOpensAndHalfOpens',
  'TestCrossLanguage',
  'TestCompressOption',
  'TestBreakerDefaults',
  'TestBreakerHalfOpen',
  'TestEntryLifecycle',
  'TestGetOrSetLoadsOnce',
];

interface Outcome {
  code: number;
  output: string;
}

/** Runs a child process to completion without blocking the event loop (the origins live in this process). */
async function child(
  file: string,
  args: string[],
  options: { cwd: string; env: Record<string, string> },
): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(file, args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      maxBuffer: 16 * 1024 * 1024,
      timeout: 240_000,
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === 'number' ? e.code : 1,
      output: `${e.stdout ?? ''}${e.stderr ?? ''}\n${e.message}`,
    };
  }
}

describe('Python and Go clients against a real origin (auth on, real Redis)', () => {
  let stack: ClientsStack;
  let dir: string;
  let goBinary: string;

  beforeAll(async () => {
    if (!existsSync(python)) {
      throw new Error(`the Python client's venv is missing (${python}). Run: npm run test:prereqs`);
    }
    dir = mkdtempSync(join(tmpdir(), 'strata-clients-'));
    goBinary = join(dir, 'cache.test');
    const build = await child('go', ['test', '-c', '-o', goBinary, '.'], { cwd: join(root, 'clients/go'), env: {} });
    if (build.code !== 0) throw new Error(`go test -c failed (run: npm run test:prereqs):\n${build.output}`);
    stack = await clientsStack(inject('redisUrl'));
  }, 300_000);
  afterAll(async () => {
    await stack?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const ts = () => createCacheClient({ baseUrl: stack.origin.url, namespace: stack.namespace, token: stack.token });

  const compressible = Buffer.from('strata compresses this '.repeat(150));

  it('TypeScript writes its binary value, and a compressible one with compress on and off', async () => {
    const client = ts();
    await client.set('xlang:ts', crossLanguagePayload('ts'), { contentType: 'application/octet-stream' });
    await client.set('compress:ts:on', compressible, { compress: true });
    await client.set('compress:ts:off', compressible, { compress: false });
    await client.setMany({ 'compress:ts:many': compressible }, { compress: true });
    for (const k of ['on', 'off', 'many']) {
      expect(Buffer.from((await client.get(`compress:ts:${k}`))!.value)).toEqual(compressible);
    }
  });

  it('the Go suite passes: every call, auth, each reachable error code, timeouts, retry after a 503, breaker; writes go, reads ts', async () => {
    const go = await child(goBinary, ['-test.v', '-test.count=1'], {
      cwd: join(root, 'clients/go'),
      env: { ...stack.env, STRATA_XLANG_WRITE: 'go', STRATA_XLANG_READ: 'ts' },
    });
    expect(go.code, go.output).toBe(0);
    for (const name of goTests) expect(go.output).toContain(`--- PASS: ${name} `);
    expect(go.output).not.toContain('--- SKIP');
  }, 120_000);

  it('the pytest suite passes (sync and async clients); writes py, reads ts and go', async () => {
    const py = await child(python, ['-m', 'pytest', '-q', '-p', 'no:cacheprovider', 'tests'], {
      cwd: join(root, 'clients/python'),
      env: {
        ...stack.env,
        PYTHONPATH: join(root, 'clients/python/src'),
        STRATA_XLANG_WRITE: 'py',
        STRATA_XLANG_READ: 'ts,go',
      },
    });
    expect(py.code, py.output).toBe(0);
    expect(py.output).toMatch(/\b17 passed\b/);
    expect(py.output).not.toMatch(/skipped|xfail|deselected/);
  }, 120_000);

  it('Go reads the value Python wrote', async () => {
    const go = await child(goBinary, ['-test.v', '-test.count=1', '-test.run', '^TestCrossLanguage$'], {
      cwd: join(root, 'clients/go'),
      env: { ...stack.env, STRATA_XLANG_READ: 'py' },
    });
    expect(go.code, go.output).toBe(0);
    expect(go.output).toContain('--- PASS: TestCrossLanguage ');
  });

  it('TypeScript reads the values Python and Go wrote, byte-exact', async () => {
    const client = ts();
    for (const lang of ['py', 'go']) {
      const entry = await client.get(`xlang:${lang}`);
      expect(entry?.value, lang).toEqual(crossLanguagePayload(lang));
    }
  });

  it("each client's per-write compress option is kept in the store as asked", async () => {
    for (const lang of ['ts', 'py', 'go']) {
      for (const [k, compressed] of [
        ['on', true],
        ['many', true],
        ['off', false],
      ] as const) {
        const stored = await stack.origin.store.get(stack.namespace, `compress:${lang}:${k}`);
        expect(stored, `${lang} ${k}`).not.toBeNull();
        expect(stored!.contentType === compressedContentType, `${lang} ${k}`).toBe(compressed);
        if (compressed) expect(stored!.value.byteLength).toBeLessThan(compressible.byteLength);
        else expect(Buffer.from(stored!.value)).toEqual(compressible);
      }
    }
  });
});
