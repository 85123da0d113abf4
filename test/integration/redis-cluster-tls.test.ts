import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningOrigin } from '../../origin/server.ts';
import { hasCommand } from '../../scripts/lib/proc.ts';
import { type RunningRedisCluster, startRedisCluster } from '../../scripts/services/redis-cluster.ts';
import { originFor } from '../support/stack.ts';

/**
 * The origin on a real 6-node Redis Cluster that speaks only TLS to clients
 * (bus and replication over TLS too), verifying the nodes' certificate
 * against REDIS_TLS_CA_FILE.
 */
describe('origin on a TLS Redis Cluster', () => {
  let dir: string;
  let cluster: RunningRedisCluster;
  let certFile: string;
  const origins: RunningOrigin[] = [];

  beforeAll(async () => {
    if (!hasCommand('openssl')) throw new Error("openssl is required: run 'sudo apt-get install -y openssl'");
    dir = mkdtempSync(join(tmpdir(), 'strata-tls-cluster-'));
    certFile = join(dir, 'cert.pem');
    const keyFile = join(dir, 'key.pem');
    // A self-signed certificate for 127.0.0.1 that is its own CA.
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-keyout',
        keyFile,
        '-out',
        certFile,
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    cluster = await startRedisCluster({ dir: join(dir, 'cluster'), tls: { certFile, keyFile, caFile: certFile } });
  });
  afterAll(async () => {
    for (const origin of origins) await origin.close();
    await cluster?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('writes and reads across hash slots over TLS, certificate verified', async () => {
    const origin = await originFor({
      REDIS_CLUSTER_NODES: cluster.env.REDIS_CLUSTER_NODES!,
      REDIS_TLS: 'true',
      REDIS_TLS_CA_FILE: certFile,
    });
    origins.push(origin);
    for (let i = 0; i < 30; i++) {
      const put = await fetch(`${origin.url}/api/v1/cache/tls/key-${i}?ttl=60`, { method: 'PUT', body: `value-${i}` });
      expect(put.status).toBe(200);
    }
    for (let i = 0; i < 30; i++) {
      const res = await fetch(`${origin.url}/api/v1/cache/tls/key-${i}`);
      expect(res.headers.get('X-Cache-Tier')).toBe('redis');
      expect(await res.text()).toBe(`value-${i}`);
    }
    expect((await fetch(`${origin.url}/ready`)).status).toBe(200);
  });

  it('refuses a cluster whose certificate it cannot verify: nothing is written to Redis, reads of unknown keys fail', async () => {
    const origin = await originFor({ REDIS_CLUSTER_NODES: cluster.env.REDIS_CLUSTER_NODES!, REDIS_TLS: 'true' });
    origins.push(origin);
    const res = await fetch(`${origin.url}/api/v1/cache/tls/never-written`);
    expect(res.status).toBe(503);
    expect(((await res.json()) as { error: { code: string } }).error.code).toBe('CACHE_005');
  });
});
