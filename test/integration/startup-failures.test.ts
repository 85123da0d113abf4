import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanEnv, spawnEntry } from '../support/spawn-entry.ts';
import { eventually } from '../support/wait.ts';

/** A loopback port held by a plain TCP server, so a Strata process cannot bind it. */
async function holdPort(): Promise<Server> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}
const portOf = (server: Server) => (server.address() as { port: number }).port;

/** Runs an entry point to its exit; returns the exit code and its stderr, trimmed. */
async function runToExit(file: string, env: Record<string, string>): Promise<{ code: number | null; stderr: string }> {
  const run = spawnEntry(file, cleanEnv(env));
  const code = await run.exited;
  return { code, stderr: run.stderr().trim() };
}

/** One line, no stack frames. */
function expectOneLine(stderr: string): void {
  expect(stderr.split('\n')).toHaveLength(1);
  expect(stderr).not.toMatch(/^\s+at /m);
}

describe('start-up failures are one line naming the variable, with a non-zero exit', () => {
  let held: Server;
  let closedPort: number;
  beforeAll(async () => {
    held = await holdPort();
    // A port that was free a moment ago and has nothing listening: an unreachable Redis.
    const probe = await holdPort();
    closedPort = portOf(probe);
    await new Promise((r) => probe.close(r));
  });
  afterAll(async () => {
    await new Promise((r) => held.close(r));
  });

  it('ENCRYPTION_KEYS with a key that is not base64 names the variable (no DOMException stack)', async () => {
    const { code, stderr } = await runToExit('origin/main.ts', { ORIGIN_PORT: '0', ENCRYPTION_KEYS: 'k1:notbase64' });
    expect(code).not.toBe(0);
    expectOneLine(stderr);
    expect(stderr).toMatch(/ENCRYPTION_KEYS/);
  });

  it('NODE_ENV=production without auth names the variables to set', async () => {
    const { code, stderr } = await runToExit('origin/main.ts', { ORIGIN_PORT: '0', NODE_ENV: 'production' });
    expect(code).not.toBe(0);
    expectOneLine(stderr);
    expect(stderr).toMatch(/NODE_ENV=production needs AUTH_JWT_SECRET or AUTH_JWKS_URL/);
  });

  it('REDIS_URL without a scheme is a configuration error (exit 2)', async () => {
    const { code, stderr } = await runToExit('origin/main.ts', { ORIGIN_PORT: '0', REDIS_URL: 'localhost:6379' });
    expect(code).toBe(2);
    expectOneLine(stderr);
    expect(stderr).toMatch(/REDIS_URL: expected redis:\/\/host:port/);
  });

  it('an origin port in use names ORIGIN_PORT and what to do', async () => {
    const port = String(portOf(held));
    const { code, stderr } = await runToExit('origin/main.ts', { ORIGIN_PORT: port, LOG_LEVEL: 'silent' });
    expect(code).toBe(1);
    expectOneLine(stderr);
    expect(stderr).toContain(`ORIGIN_PORT=${port}`);
    expect(stderr).toMatch(/already in use; stop the process holding it or set ORIGIN_PORT/);
  });

  it('an edge port in use names EDGE_PORT', async () => {
    const port = String(portOf(held));
    const { code, stderr } = await runToExit('edge/adapters/node/main.ts', {
      EDGE_PORT: port,
      LOG_LEVEL: 'silent',
      EDGE_STATS_INTERVAL_SECONDS: '0',
    });
    expect(code).toBe(1);
    expectOneLine(stderr);
    expect(stderr).toContain(`EDGE_PORT=${port}`);
  });

  it('npm start with its edge port in use names EDGE_PORT and stops the origin it started', async () => {
    const port = String(portOf(held));
    const { code, stderr } = await runToExit('scripts/start.ts', {
      ORIGIN_PORT: '0',
      EDGE_PORT: port,
      LOG_LEVEL: 'silent',
    });
    expect(code).toBe(1);
    // The development-mode notice is not printed before both sides are up; the failure is the only line.
    expectOneLine(stderr);
    expect(stderr).toContain(`EDGE_PORT=${port}`);
  });

  it('REDIS_REQUIRED_AT_START=true with an unreachable Redis refuses to start, naming REDIS_URL', async () => {
    const { code, stderr } = await runToExit('origin/main.ts', {
      ORIGIN_PORT: '0',
      LOG_LEVEL: 'silent',
      REDIS_URL: `redis://127.0.0.1:${closedPort}`,
      REDIS_REQUIRED_AT_START: 'true',
    });
    expect(code).toBe(1);
    expectOneLine(stderr);
    expect(stderr).toMatch(/^strata-origin: REDIS_URL: the redis store did not answer at start-up/);
  });

  it('an unreachable Redis by default: one loud error line at start-up, then the origin serves degraded', async () => {
    const origin = spawnEntry(
      'origin/main.ts',
      cleanEnv({ ORIGIN_PORT: '0', REDIS_URL: `redis://127.0.0.1:${closedPort}` }),
    );
    try {
      const url = await eventually(
        'origin listening',
        () => /"url":"(http:\/\/[^"]+)".*"msg":"origin listening"/.exec(origin.stdout())?.[1],
        20_000,
      );
      const loud = origin
        .stdout()
        .split('\n')
        .filter((line) => line.includes('STORE UNREACHABLE'));
      expect(loud).toHaveLength(1);
      expect(JSON.parse(loud[0]!)).toMatchObject({ level: 50, variable: 'REDIS_URL' });
      const ready = await fetch(`${url}/ready`);
      expect(ready.status).toBe(503);
      expect(((await ready.json()) as { error: { code: string } }).error.code).toBe('CACHE_005');
    } finally {
      await origin.stop();
    }
  });
});
