import { execFile } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AdminClientError, createAdminClient } from '../../client/index.ts';
import { freePort } from '../../scripts/lib/ports.ts';
import { type SpawnedProcess, spawnServer, stopPid } from '../../scripts/lib/proc.ts';
import { flushResponseSchema, namespaceStatsSchema, reloadResponseSchema } from '../../shared/schemas.ts';
import { hs256Issuer, type TokenIssuer } from '../support/jwt.ts';
import { eventually } from '../support/wait.ts';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');

/** A real origin process (`origin/main.ts`) with authentication on and a config file, for the CLI, the client and SIGHUP. */
describe('admin CLI, typed client and SIGHUP against an origin process', () => {
  let origin: SpawnedProcess;
  let url: string;
  let file: string;
  let issuer: TokenIssuer;
  let admin: string;

  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'strata-admin-'));
    file = join(dir, 'strata.env');
    await writeFile(file, 'MAX_VALUE_BYTES=1000\n');
    issuer = hs256Issuer();
    admin = await issuer.sign({
      serviceId: 'ops-cli',
      scope: ['cache:read', 'cache:write', 'cache:flush', 'cache:reload', 'metrics:read'],
      ns: ['*'],
    });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    origin = spawnServer(process.execPath, [join(root, 'origin/main.ts')], {
      logFile: join(dir, 'origin.log'),
      cwd: root,
      env: {
        PATH: process.env.PATH,
        ORIGIN_PORT: String(port),
        ORIGIN_HOST: '127.0.0.1',
        LOG_LEVEL: 'silent',
        STRATA_CONFIG_FILE: file,
        ...issuer.env,
      },
    });
    await eventually('origin up', async () => (await fetch(`${url}/health`)).ok, 20_000, 50);
  });
  afterAll(async () => {
    if (origin) await stopPid(origin.pid);
  });

  const put = (body: string) =>
    fetch(`${url}/api/v1/cache/admin/k`, { method: 'PUT', body, headers: { Authorization: `Bearer ${admin}` } });
  const cli = (...args: string[]) =>
    run(process.execPath, [join(root, 'scripts/admin.ts'), ...args], {
      cwd: root,
      env: { PATH: process.env.PATH, ORIGIN_URL: url, STRATA_TOKEN: admin },
    });

  it('the CLI flushes and reads stats with the token from STRATA_TOKEN', async () => {
    expect((await put('v')).status).toBe(200);
    const flushed = flushResponseSchema.parse(JSON.parse((await cli('flush', 'admin')).stdout));
    expect(flushed.namespace).toBe('admin');
    expect(flushed.service_id).toBe('ops-cli');
    const stats = namespaceStatsSchema.parse(JSON.parse((await cli('stats', 'admin')).stdout));
    expect(stats).toMatchObject({ version: flushed.version, entries: 0, writes: 1 });
    await expect(cli('flush')).rejects.toMatchObject({ code: 2 });
  });

  it('the typed client needs the scopes: a reader cannot flush (AUTH_002), a bad namespace is CACHE_004', async () => {
    const reader = createAdminClient({
      baseUrl: url,
      token: await issuer.sign({ scope: ['metrics:read'], ns: ['admin'] }),
    });
    expect((await reader.stats('admin')).namespace).toBe('admin');
    await expect(reader.flush('admin')).rejects.toMatchObject({ status: 403, code: 'AUTH_002' });
    await expect(reader.reload()).rejects.toBeInstanceOf(AdminClientError);
    const client = createAdminClient({ baseUrl: url, token: admin });
    await expect(client.stats('Not Valid')).rejects.toMatchObject({ status: 400, code: 'CACHE_004' });
  });

  it('SIGHUP re-reads the config file; an invalid file is refused and the old limit stays', async () => {
    expect((await put('x'.repeat(1500))).status).toBe(413);
    await writeFile(file, 'MAX_VALUE_BYTES=2000\n');
    process.kill(origin.pid, 'SIGHUP');
    await eventually('new limit in force', async () => (await put('x'.repeat(1500))).status === 200, 10_000, 50);

    await writeFile(file, 'MAX_VALUE_BYTES=zero\n');
    process.kill(origin.pid, 'SIGHUP');
    const refused = await createAdminClient({ baseUrl: url, token: admin })
      .reload()
      .catch((e: unknown) => e);
    expect(refused).toMatchObject({ code: 'CACHE_004' });
    expect((refused as Error).message).toMatch(/^invalid configuration: MAX_VALUE_BYTES/);
    expect((await put('x'.repeat(1500))).status).toBe(200);

    await writeFile(file, 'MAX_VALUE_BYTES=3000\n');
    const { stdout } = await cli('reload');
    expect(reloadResponseSchema.parse(JSON.parse(stdout)).applied).toEqual(['MAX_VALUE_BYTES']);
    expect((await put('x'.repeat(2500))).status).toBe(200);
  });
});
