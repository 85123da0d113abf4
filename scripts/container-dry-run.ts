/**
 * `node scripts/container-dry-run.ts [--dockerfile deploy/container/Dockerfile] [--keep]`
 *
 * Runs the build and start steps of the container recipe on this machine,
 * for hosts without Docker (CI here): reads the Dockerfile itself, so the
 * recipe and what is checked cannot drift. `FROM node:<major>…` must match
 * the Node major running this script; `WORKDIR` becomes a fresh temporary
 * directory; `COPY src… dest` copies from the repository; `RUN` runs in bash
 * there; `ENV` is applied; `CMD` is started with the image's environment plus
 * the variables this script needs to reach it (a free loopback port and an
 * HS256 secret, since the image sets NODE_ENV=production), and must answer
 * `GET /health` and `GET /ready` with 200 and stop cleanly on SIGTERM.
 * `USER` and `EXPOSE` have no meaning outside a container and are skipped.
 *
 * Exit codes: 0 the recipe builds and starts; 1 a step failed; 2 bad usage
 * or a Dockerfile instruction this script does not know.
 */
import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { logicalLines } from './lib/logical-lines.ts';
import { waitFor } from './lib/proc.ts';

const root = resolve(import.meta.dirname, '..');
const { values: args } = parseArgs({
  options: {
    dockerfile: { type: 'string', default: join(root, 'deploy/container/Dockerfile') },
    keep: { type: 'boolean', default: false },
  },
});

function fail(message: string, code = 1): never {
  process.stderr.write(`container-dry-run: ${message}\n`);
  process.exit(code);
}
const say = (message: string) => process.stdout.write(`container-dry-run: ${message}\n`);

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function instructions(text: string): { op: string; arg: string }[] {
  return logicalLines(text).map((line) => {
    const space = line.indexOf(' ');
    return { op: line.slice(0, space).toUpperCase(), arg: line.slice(space + 1).trim() };
  });
}

/** `KEY=value KEY2=value2` of an ENV line (no quoting in our recipe). */
const envPairs = (arg: string) =>
  Object.fromEntries(
    arg.split(/\s+/).map((pair) => [pair.slice(0, pair.indexOf('=')), pair.slice(pair.indexOf('=') + 1)]),
  );

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

const steps = instructions(readFileSync(args.dockerfile, 'utf8'));
const env: Record<string, string> = {};
let workdir: string | undefined;
let cmd: string[] | undefined;
const scratch = mkdtempSync(join(tmpdir(), 'strata-image-'));
try {
  for (const { op, arg } of steps) {
    if (op === 'FROM') {
      const major = /^node:(\d+)/.exec(arg)?.[1];
      if (!major) fail(`FROM ${arg}: expected a node:<major> image`, 2);
      if (major !== process.versions.node.split('.')[0]) {
        fail(`FROM ${arg}: the image runs Node ${major}, this script Node ${process.versions.node}`);
      }
    } else if (op === 'WORKDIR') {
      workdir = join(scratch, arg);
      mkdirSync(workdir, { recursive: true });
    } else if (op === 'COPY') {
      if (!workdir) fail('COPY before WORKDIR', 2);
      const parts = arg.split(/\s+/);
      const dest = resolve(workdir, parts.pop()!);
      for (const src of parts) {
        const target = parts.length > 1 || dest.endsWith('/') ? join(dest, src) : dest;
        cpSync(join(root, src), target, { recursive: true });
      }
    } else if (op === 'RUN') {
      say(`RUN ${arg}`);
      const run = spawnSync('bash', ['-c', arg], { cwd: workdir, stdio: 'inherit', env: { ...process.env, ...env } });
      if (run.status !== 0) fail(`RUN ${arg}: exit ${run.status}`);
    } else if (op === 'ENV') Object.assign(env, envPairs(arg));
    else if (op === 'CMD') cmd = JSON.parse(arg) as string[];
    else if (op !== 'USER' && op !== 'EXPOSE') fail(`unknown instruction ${op}`, 2);
  }
  if (!workdir || !cmd) fail('the Dockerfile needs WORKDIR and CMD', 2);

  const port = await freePort();
  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
  const runEnv = {
    PATH: process.env.PATH ?? '',
    ...env,
    ORIGIN_HOST: '127.0.0.1',
    ORIGIN_PORT: String(port),
    AUTH_JWT_SECRET: secret,
  };
  // `node` in the CMD is the image's Node: here, the one running this script.
  const [program, ...rest] = cmd;
  say(`CMD ${cmd.join(' ')} (port ${port})`);
  const child = spawn(program === 'node' ? process.execPath : program!, rest, {
    cwd: workdir,
    env: runEnv,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  try {
    for (const path of ['/health', '/ready']) {
      await waitFor(
        `GET ${path} = 200`,
        async () => (await fetch(`http://127.0.0.1:${port}${path}`)).status === 200,
        30_000,
      );
    }
    say('the image starts: /health and /ready answer 200');
  } finally {
    child.kill('SIGTERM');
  }
  const code = await exited;
  if (code !== 0) fail(`the server exited ${code} on SIGTERM`);
  say('stopped cleanly on SIGTERM');
} finally {
  if (!args.keep) rmSync(scratch, { recursive: true, force: true });
  else say(`kept ${scratch}`);
}
