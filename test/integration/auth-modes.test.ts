import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));

describe('auth modes', () => {
  it('the origin refuses to start in production without auth configured', async () => {
    await expect(originFor({ NODE_ENV: 'production' })).rejects.toThrow(/AUTH_JWT_SECRET or AUTH_JWKS_URL/);
  });

  it('npm start without auth config is dev mode: says so loudly, prints a token that works, and rejects no token', async () => {
    const env: Record<string, string> = { ...(process.env as Record<string, string>) };
    for (const name of ['AUTH_JWT_SECRET', 'AUTH_JWKS_URL', 'AUTH_ISSUER', 'AUTH_AUDIENCE', 'EDGE_ORIGIN_TOKEN']) {
      delete env[name];
    }
    Object.assign(env, { ORIGIN_PORT: '0', EDGE_PORT: '0', LOG_LEVEL: 'silent', NODE_ENV: 'development' });
    const child = spawn(process.execPath, ['scripts/start.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', resolve));
    try {
      const token = await eventually('the dev token', () => /export STRATA_TOKEN=(\S+)/.exec(stdout)?.[1], 30_000);
      const edge = /edge:\s+(http:\/\/\S+)/.exec(stdout)![1]!;
      expect(stderr).toMatch(/AUTH IS IN DEVELOPMENT MODE/);
      const anonymous = await fetch(`${edge}/api/v1/cache/demo/greeting`);
      expect(anonymous.status).toBe(401);
      await anonymous.text();
      const put = await fetch(`${edge}/api/v1/cache/demo/greeting?ttl=60`, {
        method: 'PUT',
        body: 'hello',
        headers: { Authorization: `Bearer ${token}` },
      });
      expect(put.status).toBe(200);
      const get = await fetch(`${edge}/api/v1/cache/demo/greeting`, { headers: { Authorization: `Bearer ${token}` } });
      expect(await get.text()).toBe('hello');
    } finally {
      child.kill('SIGTERM');
      await exited;
    }
  });
});
