import { Redis } from '@upstash/redis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningEdge } from '../../edge/adapters/node/server.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import { type EdgeUnderTest, edgeRuntimes } from '../support/edge-runtimes.ts';
import { hs256Issuer, type TokenIssuer } from '../support/jwt.ts';
import { edgeFor, originFor } from '../support/stack.ts';
import { expectScenario, scenarioInWorkerd, scenarioOnDeno } from '../support/upstash-runtimes.ts';
import { type UpstashScenarioInput, upstashScenario } from '../support/upstash-scenario.ts';
import { eventually } from '../support/wait.ts';

const ns = 'upstash-rt';

/**
 * The Upstash protocol on every edge runtime: the real `@upstash/redis`
 * client on Node against the edge on Node, Deno and workerd; the client
 * itself inside a `deno` process against the Deno edge and inside workerd
 * against the Workers edge; and a write through Upstash at one edge purged
 * from another.
 */
describe.each(edgeRuntimes)('Upstash clients and the edge on $name', (runtime) => {
  let issuer: TokenIssuer;
  let origin: RunningOrigin;
  let edge: EdgeUnderTest;
  let other: RunningEdge;
  let input: Omit<UpstashScenarioInput, 'baseUrl' | 'prefix'>;
  let run = 0;
  const prefix = () => `${runtime.name}-${Date.now().toString(36)}-${++run}`;

  beforeAll(async () => {
    issuer = hs256Issuer();
    origin = await originFor({ ...issuer.env, PURGE_HEARTBEAT_MS: '250' });
    const env = {
      ...issuer.env,
      EDGE_ORIGIN_TOKEN: await issuer.sign({ serviceId: 'edge' }),
      EDGE_PURGE_POLL_MS: '200',
    };
    edge = await runtime.start(origin.url, env);
    other = await edgeFor(origin.url, { ...env, EDGE_STATS_INTERVAL_SECONDS: '0' });
    input = {
      namespace: ns,
      token: await issuer.sign({ serviceId: 'app', ns: [ns] }),
      readOnlyToken: await issuer.sign({ serviceId: 'reader', scope: ['cache:read'], ns: [ns] }),
      otherNamespaceToken: await issuer.sign({ serviceId: 'other', ns: ['elsewhere'] }),
    };
  }, 60_000);
  afterAll(async () => {
    await edge?.close();
    await other?.close();
    await origin?.close();
    await issuer?.close();
  });

  it('the client on Node gets what it expects from this edge', async () => {
    expectScenario(await upstashScenario(Redis, { ...input, baseUrl: edge.url, prefix: prefix() }));
  });

  if (runtime.name === 'deno') {
    it('the client running on Deno gets what it expects from this edge', async () => {
      expectScenario(await scenarioOnDeno({ ...input, baseUrl: edge.url, prefix: prefix() }));
    }, 60_000);
  }

  if (runtime.name === 'workerd') {
    it('the client running inside workerd gets what it expects from this edge', async () => {
      expectScenario(await scenarioInWorkerd({ ...input, baseUrl: edge.url, prefix: prefix() }));
    }, 60_000);
  }

  it('a write through Upstash at one edge is purged from the other, both ways', async () => {
    const key = `${prefix()}:shared`;
    const here = new Redis({ url: `${edge.url}/upstash/${ns}`, token: input.token, enableTelemetry: false });
    const there = new Redis({ url: `${other.url}/upstash/${ns}`, token: input.token, enableTelemetry: false });
    await here.set(key, 'v1');
    expect(await there.get(key)).toBe('v1');
    expect(await here.get(key)).toBe('v1');
    await there.set(key, 'v2');
    await eventually(`the ${runtime.name} edge to serve v2`, async () => (await here.get(key)) === 'v2', 10_000);
    await here.set(key, 'v3');
    await eventually('the Node edge to serve v3', async () => (await there.get(key)) === 'v3', 10_000);
  });
});
