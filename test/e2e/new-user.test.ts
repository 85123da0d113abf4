import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type CodeBlock, consoleCommands, readmeBlocks, shellCommands } from '../support/readme.ts';
import { cleanEnv, repoRoot } from '../support/spawn-entry.ts';
import { eventually } from '../support/wait.ts';

/**
 * The first hour of a new user, held to the README itself: `npm start` runs
 * as a child process exactly as the README says (on free ports: the only
 * change, through the documented ORIGIN_PORT / EDGE_PORT), its banner is
 * parsed, and the commands of the README's code blocks and of the banner run
 * in bash with the printed token exported, each checked against what the
 * README shows. A later README edit is tested as it is written.
 */

const readmeOrigin = 'http://127.0.0.1:8080';
const readmeEdge = 'http://127.0.0.1:8787';

interface Ran {
  readonly command: string;
  readonly code: number;
  readonly output: string;
}

/**
 * Runs `commands` in one bash (so variables carry over, as in a terminal); one
 * result per command. With `stdoutOnly`, each command's stderr is dropped, as
 * a terminal shows it: curl prints no progress meter to a terminal, but does
 * into a pipe, where it would interleave with the answer.
 */
function runInShell(
  commands: readonly string[],
  env: Record<string, string>,
  { timeoutMs = 120_000, stdoutOnly = false } = {},
): Promise<Ran[]> {
  const script = commands
    .map(
      (c, i) =>
        `printf '\\n@@begin ${i}\\n'\n${stdoutOnly ? `{\n${c}\n} 2>/dev/null` : c}\nprintf '\\n@@end ${i} %d\\n' "$?"`,
    )
    .join('\n');
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', script], { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve(
        commands.map((command, i) => {
          const match = new RegExp(`@@begin ${i}\\n([\\s\\S]*?)\\n@@end ${i} (\\d+)`).exec(out);
          return { command, code: match ? Number(match[2]) : -1, output: match ? match[1]!.replace(/\r/g, '') : out };
        }),
      );
    });
  });
}

const blocksIn = (blocks: CodeBlock[], section: RegExp, lang: string) =>
  blocks.filter((b) => section.test(b.section) && b.lang === lang);

describe('a new user following the README against npm start', () => {
  const blocks = readmeBlocks();
  let npm: ReturnType<typeof spawn>;
  let stdout = '';
  let stderr = '';
  let exited: Promise<unknown>;
  let origin: string;
  let edge: string;
  let token: string;
  let env: Record<string, string>;
  let scratch: string;
  /** The README's URLs pointed at this run's ports. */
  const here = (command: string) => command.replaceAll(readmeOrigin, origin).replaceAll(readmeEdge, edge);

  beforeAll(async () => {
    scratch = mkdtempSync(join(tmpdir(), 'strata-new-user-'));
    const session = blocksIn(blocks, /^A curl session$/, 'console')[0];
    expect(session, 'the README has a console block under "A curl session"').toBeDefined();
    const start = consoleCommands(session!.text)[0]!.command;
    expect(start).toBe('npm start');
    // Its own process group, so the test can stop npm and the node it runs together.
    npm = spawn('bash', ['-c', start], {
      cwd: repoRoot,
      env: cleanEnv({ ORIGIN_PORT: '0', EDGE_PORT: '0', LOG_LEVEL: 'warn' }),
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    npm.stdout!.on('data', (d) => (stdout += d));
    npm.stderr!.on('data', (d) => (stderr += d));
    exited = new Promise((resolve) => npm.on('exit', resolve));
    token = await eventually(
      'the banner of npm start',
      () => /export STRATA_TOKEN=(\S+)/.exec(stdout)?.[1],
      60_000,
      50,
    );
    await eventually('the end of the banner', () => stdout.includes('Press Ctrl-C to stop.'), 10_000, 50);
    origin = /origin:\s+(http:\/\/\S+)/.exec(stdout)![1]!;
    edge = /edge:\s+(http:\/\/\S+)/.exec(stdout)![1]!;
    env = cleanEnv({ STRATA_TOKEN: token, ORIGIN_URL: origin });
  }, 90_000);

  afterAll(async () => {
    if (npm?.pid && npm.exitCode === null) {
      process.kill(-npm.pid, 'SIGTERM');
      await exited;
    }
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('the banner names the API reference and the dashboard, and says development mode loudly', async () => {
    expect(stdout).toContain(`${origin}/docs`);
    expect(stdout).toContain(`${origin}/dashboard`);
    expect(stderr).toContain('AUTH IS IN DEVELOPMENT MODE');
    for (const path of ['/docs', '/dashboard']) {
      const res = await fetch(`${origin}${path}`);
      await res.text();
      expect({ path, status: res.status }).toEqual({ path, status: 200 });
    }
  });

  it('every command the banner prints works as pasted', async () => {
    const tryIt = stdout.split('Try it')[1]!.split('Press Ctrl-C')[0]!;
    const commands = tryIt
      .split('\n')
      .filter((l) => l.startsWith('  '))
      .map((l) => l.trim());
    expect(commands.length).toBeGreaterThanOrEqual(5);
    const results = await runInShell(commands, env);
    for (const r of results) {
      expect({ command: r.command, code: r.code }).toEqual({ command: r.command, code: 0 });
      const status = /^HTTP\/1\.1 (\d{3})/m.exec(r.output)?.[1];
      if (r.command.startsWith('curl -i')) expect({ command: r.command, status }).toMatchObject({ status: /^2/ });
    }
    expect(results.find((r) => r.command.includes('/metrics'))!.output).toContain('strata_requests_total{');
    expect(results.find((r) => r.command.startsWith('npm run invalidate'))!.output).toMatch(/"result":"applied"/);
  });

  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
  /**
   * Runs a README console session's commands in one bash (on this run's
   * ports) and holds each to what the README shows under it: exit code, HTTP
   * status, the `X-Cache*` and `Cache-Tag` headers, a refresh lease shown or
   * not, a token-shaped line, the body's last line, and JSON answers (their
   * fields, or their error code).
   */
  const expectSessionAsShown = async (transcript: ReturnType<typeof consoleCommands>) => {
    const results = await runInShell(
      transcript.map((t) => here(t.command)),
      env,
      { stdoutOnly: true },
    );
    transcript.forEach((t, i) => {
      const r = results[i]!;
      const what = { command: t.command };
      expect({ ...what, code: r.code }).toEqual({ ...what, code: 0 });
      const shownStatus = /^HTTP\/1\.1 (\d{3})/.exec(t.output[0] ?? '')?.[1];
      if (shownStatus)
        expect({ ...what, status: /^HTTP\/1\.1 (\d{3})/m.exec(r.output)?.[1] }).toEqual({
          ...what,
          status: shownStatus,
        });
      // Exactly the readers shown a lease get one.
      if (t.output.some((l) => /^X-Cache: /i.test(l)))
        expect({ ...what, lease: /^x-cache-lease: /im.test(r.output) }).toEqual({
          ...what,
          lease: t.output.some((l) => /^X-Cache-Lease: /i.test(l)),
        });
      const last = t.output.at(-1);
      if (last && !/^(HTTP\/|\{|[\w-]+: )/.test(last) && !uuid.test(last))
        expect({ ...what, body: r.output.trim().split('\n').at(-1) }).toEqual({ ...what, body: last });
      for (const line of t.output) {
        const header = /^(X-Cache|X-Cache-Tier|X-Cache-Stale-Reason|Cache-Tag): (.+)$/i.exec(line);
        if (header)
          expect(r.output.toLowerCase()).toContain(`${header[1]!.toLowerCase()}: ${header[2]!.toLowerCase()}`);
        if (uuid.test(line))
          expect({ ...what, output: r.output.trim() }).toMatchObject({ output: expect.stringMatching(uuid) });
        if (line.startsWith('{')) {
          const shown = JSON.parse(line.replaceAll('…', '')) as Record<string, { code?: string }>;
          const actual = JSON.parse(r.output.trim().split('\n').at(-1)!) as Record<string, { code?: string }>;
          if (shown.error) expect({ ...what, code: actual.error?.code }).toEqual({ ...what, code: shown.error.code });
          else
            expect({ ...what, keys: Object.keys(actual).sort() }).toEqual({ ...what, keys: Object.keys(shown).sort() });
        }
      }
    });
  };

  it('the curl session of the README gives the answers the README shows', async () => {
    const transcript = consoleCommands(blocksIn(blocks, /^A curl session$/, 'console')[0]!.text).filter(
      (t) => t.command !== 'npm start' && !t.command.startsWith('export STRATA_TOKEN='),
    );
    expect(transcript.length).toBeGreaterThanOrEqual(6);
    await expectSessionAsShown(transcript);
  });

  it('the entry lifecycle session of the README (stale, a lease, a refused stale set, a soft purge) answers as shown', async () => {
    const session = blocksIn(blocks, /^Entry lifecycle$/, 'console')[0];
    expect(session, 'the README has a console block under "Entry lifecycle"').toBeDefined();
    const transcript = consoleCommands(session!.text);
    const shown = transcript.flatMap((t) => t.output).join('\n');
    for (const mark of ['X-Cache: STALE', 'X-Cache-Stale-Reason: soft-purge', '"CACHE_006"', '412 Precondition Failed'])
      expect(shown).toContain(mark);
    expect(transcript.some((t) => t.output.some((l) => uuid.test(l)))).toBe(true);
    await expectSessionAsShown(transcript);
  });

  it('npm run token, as the README shows it, mints a token the edge accepts for that namespace only', async () => {
    const command = blocksIn(blocks, /^A curl session$/, 'sh')
      .flatMap((b) => shellCommands(b.text))
      .find((c) => c.startsWith('npm run token'));
    expect(command).toBeDefined();
    const [r] = await runInShell([`${command!.replace('npm run token', 'npm run -s token')}`], env);
    expect(r!.code).toBe(0);
    const minted = r!.output.trim();
    expect(minted).toMatch(/^[\w-]+\.[\w-]+\.[\w-]+$/);
    const ns = /--ns (\S+)/.exec(command!)![1]!;
    const auth = { Authorization: `Bearer ${minted}` };
    const put = await fetch(`${edge}/api/v1/cache/${ns}/from-token`, { method: 'PUT', body: 'v', headers: auth });
    await put.text();
    expect(put.status).toBe(200);
    const elsewhere = await fetch(`${edge}/api/v1/cache/demo/from-token`, { method: 'PUT', body: 'v', headers: auth });
    await elsewhere.text();
    expect(elsewhere.status).toBe(403);
  });

  it('npm run invalidate from the Kafka section works without Kafka, with the exported token', async () => {
    const commands = blocksIn(blocks, /^Kafka invalidation$/, 'sh')
      .flatMap((b) => shellCommands(b.text))
      .filter((c) => c.startsWith('npm run invalidate'));
    expect(commands.length).toBeGreaterThanOrEqual(1);
    for (const r of await runInShell(commands.map(here), env)) {
      expect({ command: r.command, code: r.code }).toEqual({ command: r.command, code: 0 });
      expect(r.output).toMatch(/applied by .*"result":"(applied|duplicate)"/);
    }
  });

  it('npm run replay as the README runs it (with --limit, on a small trace of the same format) has no errors', async () => {
    const shown = blocks
      .filter((b) => /^Running the real trace$/.test(b.section))
      .flatMap((b) => consoleCommands(b.text))
      .find((t) => t.command.startsWith('npm run replay'));
    expect(shown).toBeDefined();
    // The sample trace ships beside the repository, not in it: the same columns, generated here.
    const trace = join(scratch, 'trace.csv');
    const rows = Array.from(
      { length: 300 },
      (_, i) => `1,${i},${i % 3 === 0 ? '2a' : '28'},${512 + (i % 7) * 512},${i % 40}`,
    );
    writeFileSync(trace, `version,time,op,size,lbn\n${rows.join('\n')}\n`);
    const command = `${here(shown!.command).replace(/--trace \S+/, `--trace ${trace}`)} --limit 200`;
    const [r] = await runInShell([command], env);
    expect(r!.code).toBe(0);
    expect(r!.output).toMatch(/^requests\s+200\s*$/m);
    expect(r!.output).toMatch(/^errors\s+0\s*$/m);
  });

  it('the buf curl example of the README answers over gRPC-web with the token', async () => {
    const command = blocksIn(blocks, /^gRPC/, 'sh')
      .flatMap((b) => shellCommands(b.text))
      .find((c) => c.startsWith('npx buf curl'));
    expect(command).toBeDefined();
    const [r] = await runInShell([here(command!)], env);
    expect({ code: r!.code, output: r!.output }).toMatchObject({ code: 0 });
    expect(r!.output).not.toMatch(/unauthenticated/);
  });

  // The snippet passes `token:` to createCacheClient; it runs once the typed client takes that option.
  const clientTakesToken = /readonly token\?:/.test(readFileSync(join(repoRoot, 'client/index.ts'), 'utf8'));
  it.skipIf(!clientTakesToken)('the typed-client snippet of the README runs against npm start', async () => {
    const snippet = blocksIn(blocks, /^gRPC/, 'ts')[0];
    expect(snippet).toBeDefined();
    // The snippet's placeholders for the caller's data, filled in; its import pointed at this checkout.
    const file = join(scratch, 'client-snippet.ts');
    const body = here(snippet!.text).replace("'./client/index.ts'", `'${join(repoRoot, 'client/index.ts')}'`);
    writeFileSync(file, `const data = { hp: 10 }, data1 = 'one', data2 = 'two';\n${body}\n`);
    const [r] = await runInShell([`${JSON.stringify(process.execPath)} ${file}`], env);
    expect({ code: r!.code, output: r!.output }).toEqual({ code: 0, output: '' });
  });
});
