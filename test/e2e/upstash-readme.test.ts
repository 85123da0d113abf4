import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { hs256Issuer, type TokenIssuer } from '../support/jwt.ts';
import { consoleCommands, readmeBlocks } from '../support/readme.ts';
import { repoRoot } from '../support/spawn-entry.ts';
import { edgeFor, originFor } from '../support/stack.ts';

const readmeEdge = 'http://127.0.0.1:8787';
const run = promisify(execFile);

/**
 * The README's "Upstash clients" session, held to the README: its client code
 * runs with the real `@upstash/redis` against a fresh origin (memory store)
 * and edge, and every curl command of its transcript runs after it; each
 * printed line, JSON answer and cache header must be what the README shows.
 */
describe('the README Upstash session gives the answers the README shows', () => {
  const blocks = readmeBlocks().filter((b) => b.section === 'Upstash clients');
  let issuer: TokenIssuer;
  let origin: RunningOrigin;
  let edge: RunningEdge;
  let env: Record<string, string>;

  beforeAll(async () => {
    issuer = hs256Issuer();
    origin = await originFor(issuer.env);
    edge = await edgeFor(origin.url, { ...issuer.env, EDGE_ORIGIN_TOKEN: await issuer.sign({ serviceId: 'edge' }) });
    env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      STRATA_TOKEN: await issuer.sign({ serviceId: 'dev' }),
    };
  });
  afterAll(async () => {
    await edge?.close();
    await origin?.close();
    await issuer?.close();
  });

  it('the client code prints what the transcript shows, then each curl answers as shown', async () => {
    const code = blocks.find((b) => b.lang === 'js');
    const session = blocks.find((b) => b.lang === 'console');
    expect(code, 'a js block under "Upstash clients"').toBeDefined();
    expect(session, 'a console block under "Upstash clients"').toBeDefined();
    const [demo, ...curls] = consoleCommands(session!.text);
    expect(demo!.command).toBe('node upstash-demo.mjs');

    // Inside the repository, so `@upstash/redis` resolves from its node_modules.
    const dir = join(repoRoot, 'dist', 'readme-upstash');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'upstash-demo.mjs'), code!.text.replaceAll(readmeEdge, edge.url));
    const node = join(repoRoot, 'node_modules', '.bin', 'node');
    const printed = await run(node, [join(dir, 'upstash-demo.mjs')], { cwd: dir, env });
    const shownLines = demo!.output.filter((l) => l !== '');
    const printedLines = printed.stdout.trimEnd().split('\n');
    expect(printedLines.length).toBe(shownLines.length);
    shownLines.forEach((shown, i) => {
      // A TTL in seconds (the one number of 3+ digits) may have ticked down while the session ran.
      if (/^\d{3,}$/.test(shown)) expect(Number(shown) - Number(printedLines[i])).toBeOneOf([0, 1, 2, 3, 4, 5]);
      else expect(printedLines[i]).toBe(shown);
    });

    expect(curls.length).toBeGreaterThanOrEqual(4);
    for (const { command, output } of curls) {
      const { stdout } = await run('bash', ['-c', command.replaceAll(readmeEdge, edge.url)], { env });
      const lines = stdout.replace(/\r/g, '').split('\n');
      for (const shown of output.filter((l) => l !== '')) {
        if (/^(X-Cache|X-Cache-Tier): /.test(shown) || /^HTTP\/1\.1 /.test(shown)) {
          expect({ command, line: lines.find((l) => l.toLowerCase() === shown.toLowerCase()) }).toEqual({
            command,
            line: shown,
          });
        } else if (shown.startsWith('{') || shown.startsWith('[')) {
          expect({ command, answer: lines.at(-1) === '' ? lines.at(-2) : lines.at(-1) }).toEqual({
            command,
            answer: shown,
          });
        }
      }
    }
  });
});
