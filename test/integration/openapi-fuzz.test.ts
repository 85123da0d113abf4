import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { hs256Issuer } from '../support/jwt.ts';
import { edgeFor, originFor } from '../support/stack.ts';

const root = resolve(import.meta.dirname, '../..');
/** Installed by scripts/ensure-test-prereqs.sh into a venv (PyPI `schemathesis`, 4.x). */
const schemathesis = resolve(root, '.cache/schemathesis-venv/bin/schemathesis');
const workDir = resolve(root, '.cache/schemathesis-run');
const config = resolve(root, 'test/support/schemathesis.toml');

/**
 * Checks that fail the run: any 5xx, undocumented status, wrong content type,
 * headers or body off the schema; data the description allows that the
 * server refuses (positive), and data it forbids that the server accepts
 * (negative).
 */
const checks = [
  'not_a_server_error',
  'status_code_conformance',
  'content_type_conformance',
  'response_headers_conformance',
  'response_schema_conformance',
  'positive_data_acceptance',
  'negative_data_rejection',
].join(',');

function run(args: string[], timeoutMs: number): Promise<{ code: number; output: string }> {
  return new Promise((resolvePromise) => {
    execFile(
      schemathesis,
      args,
      { cwd: workDir, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolvePromise({ code, output: `${stdout}\n${stderr}` });
      },
    );
  });
}

/**
 * Schemathesis, a fuzzer nobody here wrote, against `/openapi.json` of a
 * running edge + origin with auth on: examples, coverage, fuzzing and the
 * stateful phase (links PUT → GET/DELETE), bounded by examples and time.
 */
describe('OpenAPI contract fuzzed by Schemathesis', () => {
  let origin: RunningOrigin;
  let edge: RunningEdge;
  let token: string;
  beforeAll(async () => {
    if (!existsSync(schemathesis)) {
      throw new Error(
        `${schemathesis} not found: run 'npm run test:prereqs' (installs schemathesis from PyPI into a venv)`,
      );
    }
    mkdirSync(workDir, { recursive: true });
    const issuer = hs256Issuer();
    // Keys configured, so `?encrypt=true`, which the description allows, is accepted.
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64');
    // A lock acquire may wait for a held lock; the fuzzer's request timeout (10 s) must not cut it off.
    origin = await originFor({
      ...issuer.env,
      MAX_VALUE_BYTES: '65536',
      ENCRYPTION_KEYS: `fuzz:${key}`,
      LOCK_MAX_WAIT_SECONDS: '1',
    });
    edge = await edgeFor(origin.url, {
      ...issuer.env,
      EDGE_ORIGIN_TOKEN: await issuer.sign({ ns: ['*'] }),
      MAX_VALUE_BYTES: '65536',
    });
    token = await issuer.sign({ ns: ['*'], expiresIn: 3600 });
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
  });

  for (const side of ['edge', 'origin'] as const) {
    it(`${side}: no 5xx, crash, hang or schema violation`, { timeout: 240_000 }, async () => {
      const base = side === 'edge' ? edge.url : origin.url;
      const { code, output } = await run(
        [
          '--config-file',
          config,
          'run',
          `${base}/openapi.json`,
          '--checks',
          checks,
          '--phases',
          'examples,coverage,fuzzing,stateful',
          '--max-examples',
          '10',
          '--max-time',
          '30',
          '--request-timeout',
          '10',
          '--seed',
          '1',
          '--workers',
          '1',
          '--no-color',
          // JSON Schema's maxLength counts characters, the server UTF-8 bytes: they agree on ASCII.
          '--generation-codec',
          'ascii',
          // An endless event stream: nothing to fuzz, and every request would run into the time-out.
          '--exclude-path',
          '/api/v1/purge/stream',
          '-H',
          `Authorization: Bearer ${token}`,
        ],
        200_000,
      );
      if (code !== 0) console.error(output);
      expect(output).toMatch(/Stateful/);
      expect(code).toBe(0);
      // Both servers still answer after the run.
      expect((await fetch(`${base}/health`)).status).toBe(200);
    });
  }
});
