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
import { signServiceToken } from './lib/dev-auth.ts';
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

/** Starts an image command (`node` = the Node running this script) in `cwd` with only `env` and PATH. */
function start(argv: string[], cwd: string, env: Record<string, string>) {
  const [program, ...rest] = argv;
  say(`start ${argv.join(' ')}`);
  const child = spawn(program === 'node' ? process.execPath : program!, rest, {
    cwd,
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return {
    async stop() {
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) fail(`${argv.join(' ')} exited ${code} on SIGTERM`);
    },
  };
}

/** Waits until every path answers 200 on the loopback port. */
async function probe(port: number, paths: string[]): Promise<void> {
  for (const path of paths) {
    await waitFor(
      `GET ${path} = 200`,
      async () => (await fetch(`http://127.0.0.1:${port}${path}`)).status === 200,
      30_000,
    );
  }
}

const steps = instructions(readFileSync(args.dockerfile, 'utf8'));
const env: Record<string, string> = {};
let workdir: string | undefined;
let cmd: string[] | undefined;
let edgeCmd: string[] | undefined;
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
    else if (op === 'LABEL' && arg.startsWith('strata.edge-command=')) {
      edgeCmd = JSON.parse(JSON.parse(arg.slice('strata.edge-command='.length)) as string) as string[];
    } else if (op !== 'USER' && op !== 'EXPOSE') fail(`unknown instruction ${op}`, 2);
  }
  if (!workdir || !cmd) fail('the Dockerfile needs WORKDIR and CMD', 2);

  const secret = Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64url');
  const originPort = await freePort();
  const origin = start(cmd, workdir, {
    ...env,
    ORIGIN_HOST: '127.0.0.1',
    ORIGIN_PORT: String(originPort),
    AUTH_JWT_SECRET: secret,
  });
  try {
    await probe(originPort, ['/health', '/ready']);
    say('the origin starts: /health and /ready answer 200');
    if (edgeCmd) {
      const edgePort = await freePort();
      const edge = start(edgeCmd, workdir, {
        ...env,
        EDGE_HOST: '127.0.0.1',
        EDGE_PORT: String(edgePort),
        ORIGIN_URL: `http://127.0.0.1:${originPort}`,
        AUTH_JWT_SECRET: secret,
        EDGE_ORIGIN_TOKEN: await signServiceToken(secret, { serviceId: 'dry-run-edge' }, 600),
      });
      try {
        await probe(edgePort, ['/health', '/ready']);
        say('the edge starts: /health and /ready answer 200');
      } finally {
        await edge.stop();
      }
    }
  } finally {
    await origin.stop();
  }
  say('stopped cleanly on SIGTERM');
} finally {
  if (!args.keep) rmSync(scratch, { recursive: true, force: true });
  else say(`kept ${scratch}`);
}
