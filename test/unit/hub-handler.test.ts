import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { CacheService } from '../../origin/cache-service.ts';
import { type HubDedup, memoryDedup } from '../../origin/hub/dedup.ts';
import { type HubOutcome, type HubRoute, hubHandler, hubRoutes } from '../../origin/hub/handler.ts';
import { restEquivalent } from '../../origin/hub/operations.ts';
import { NamespaceReports } from '../../origin/namespaces/report.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import { authOptionsFromConfig, createVerifier } from '../../shared/auth.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';
import { hubEventVersion, hubRequestSchema } from '../../shared/hub.ts';
import { hs256Issuer } from '../support/jwt.ts';

/** The hub's request handling over a real service on the embedded store, Kafka aside. */
function setup(options: { dedup?: HubDedup; routes?: ReadonlyMap<string, HubRoute> } = {}) {
  const issuer = hs256Issuer();
  let clock = Date.now();
  // The store keeps its idempotency records on the same clock as the handler's.
  const memory = memoryStore({ maxBytes: 1 << 24, now: () => clock });
  const bus = new InProcessPurgeBus({ retainedEntries: 16 });
  const service = new CacheService({
    now: () => clock,
    store: passThroughStore(memory, memory),
    bus,
    defaultTtlSeconds: 60,
    maxValueBytes: 1 << 20,
  });
  const reports = new NamespaceReports(service, async () => ({
    kind: 'memory',
    memory_bytes: 0,
    memory_limit_bytes: null,
    keys: 0,
    evictions: 0,
  }));
  const dedup = options.dedup ?? memoryDedup(() => clock);
  const handle = hubHandler({
    routes: options.routes ?? hubRoutes(),
    service,
    reports,
    verifier: createVerifier(
      authOptionsFromConfig({
        AUTH_JWT_SECRET: issuer.env.AUTH_JWT_SECRET,
        AUTH_ISSUER: issuer.env.AUTH_ISSUER,
        AUTH_AUDIENCE: issuer.env.AUTH_AUDIENCE,
      }),
    ),
    dedup,
    originId: 'origin-test',
    replyTopics: new Set(['cache.operation.response', 'replies']),
    redeliveryMs: 1_000,
    clockSkewMs: 30_000,
    now: () => clock,
  });
  const send = async (
    data: Record<string, unknown>,
    headers: Record<string, string> = {},
    topic = 'cache.operation.request',
  ): Promise<HubOutcome> =>
    await handle({
      topic,
      key: Buffer.from('k'),
      value: Buffer.from(
        JSON.stringify({
          event: topic,
          version: hubEventVersion,
          data: {
            service: 'svc',
            correlation_id: randomUUID(),
            timestamp: new Date(clock).toISOString(),
            request_ttl_ms: 5_000,
            ...data,
          },
        }),
      ),
      headers,
    });
  const auth = async (claims = {}) => ({ authorization: `Bearer ${await issuer.sign(claims)}` });
  return { send, handle, auth, service, advance: (ms: number) => (clock += ms), now: () => clock };
}

const answer = (outcome: HubOutcome) => {
  if (outcome.kind !== 'answer') throw new Error(`expected an answer, got ${JSON.stringify(outcome)}`);
  return outcome;
};
const codeOf = (outcome: HubOutcome) => answer(outcome).response.data.error?.code;

describe('hub request handling', () => {
  it('a token that expired while the request was queued is accepted within the request TTL only', async () => {
    const { send, auth, now } = setup();
    const token = await auth({ expiresIn: -60 });
    const sent = new Date(now() - 120_000).toISOString();
    const set = { operation: 'set', namespace: 'ns', key: 'k', value: 'dg==' };
    expect(answer(await send({ ...set, timestamp: sent, request_ttl_ms: 200_000 }, token)).response.data.status).toBe(
      'success',
    );
    // Sent after the token had expired: no grace at all.
    expect(codeOf(await send(set, token))).toBe('AUTH_001');
    expect(codeOf(await send({ ...set, timestamp: sent, request_ttl_ms: 100_000 }, token))).toBe('CACHE_005');
  });

  it('a request past its TTL is answered CACHE_005 and never runs', async () => {
    const { send, auth, service, now } = setup();
    const outcome = await send(
      {
        operation: 'set',
        namespace: 'ns',
        key: 'late',
        value: 'dg==',
        timestamp: now() - 2_000,
        request_ttl_ms: 1_000,
      },
      await auth(),
    );
    expect(codeOf(outcome)).toBe('CACHE_005');
    expect((await service.get('ns', 'late')).entry).toBeNull();
  });

  it('a change redelivered before its response was recorded (a crash right after the store write) is answered from the store records, not applied again', async () => {
    // Response records that never land: as if the process died between the store write and recording the answer.
    const { send, auth, service } = setup({ dedup: { get: async () => null, put: async () => {} } });
    const token = await auth();
    const batch = { operation: 'set_many', namespace: 'ns', entries: { a: 'QQ==', b: 'Qg==' }, correlation_id: 'c-9' };
    const first = answer(await send(batch, token));
    const again = answer(await send(batch, token));
    expect(again.replayed).toBe(false);
    expect(again.response.data.versions).toEqual(first.response.data.versions);
    expect((await service.get('ns', 'a')).entry?.version).toBe(first.response.data.versions!.a);
    const del = { operation: 'delete', namespace: 'ns', key: 'b', correlation_id: 'c-10' };
    const removed = answer(await send(del, token));
    expect(answer(await send(del, token)).response.data).toMatchObject({
      deleted: true,
      version: removed.response.data.version,
    });
    // The same id on the same key for another request: refused, the key untouched.
    const rewritten = await service.set('ns', 'b', { value: new Uint8Array([1]), contentType: 'text/plain' });
    expect(codeOf(await send({ ...del, service: 'svc-other' }, token))).toBe('CACHE_004');
    expect((await service.get('ns', 'b')).entry?.version).toBe(rewritten.version);
  });

  it('a redelivered change gets the recorded answer until its record expires, and is then applied anew', async () => {
    const { send, auth, service, advance } = setup();
    const token = await auth();
    const set = { operation: 'set', namespace: 'ns', key: 'k', value: 'dg==', correlation_id: 'c-1' };
    const first = answer(await send(set, token));
    const again = answer(await send(set, token));
    expect(again.replayed).toBe(true);
    expect(again.response.data).toEqual(first.response.data);
    expect((await service.get('ns', 'k')).entry?.version).toBe(first.response.data.version);
    expect(codeOf(await send({ ...set, value: 'eA==' }, token))).toBe('CACHE_004');
    // Kept for request_ttl_ms (5 s) + redeliveryMs (1 s), and no longer.
    advance(6_001);
    const later = answer(await send(set, token));
    expect(later.replayed).toBe(false);
    expect(later.response.data.version).toBeGreaterThan(first.response.data.version!);
  });

  it('reads are not recorded: the same get twice reads twice', async () => {
    const { send, auth } = setup();
    const token = await auth();
    const get = { operation: 'get', namespace: 'ns', key: 'none', correlation_id: 'g-1' };
    expect(answer(await send(get, token)).replayed).toBe(false);
    expect(answer(await send(get, token)).replayed).toBe(false);
  });

  it("get_many judges freshness on the handler's clock: a value past its TTL within stale-while-revalidate is named stale", async () => {
    const { send, auth, service, advance } = setup();
    const token = await auth();
    await service.set('ns', 'old', {
      value: new TextEncoder().encode('v'),
      contentType: 'text/plain',
      ttlSeconds: 1,
      grace: { staleWhileRevalidateMs: 60_000, staleIfErrorMs: 0 },
    });
    const getMany = { operation: 'get_many', namespace: 'ns', keys: ['old'], encoding: 'utf8' };
    expect(answer(await send(getMany, token)).response.data).not.toHaveProperty('stale_reasons');
    advance(2_000);
    const later = answer(await send(getMany, token)).response.data;
    expect(later).toMatchObject({ values: { old: 'v' }, stale_reasons: { old: 'revalidating' } });
  });

  it('nothing to answer to goes to the dead-letter topic; a bad reply-to is refused on the default topic', async () => {
    const { send, auth } = setup();
    expect(await send({ correlation_id: 42 })).toEqual({
      kind: 'dead-letter',
      reason: 'data.correlation_id is missing or not a string of 1-128 characters',
    });
    const refused = answer(
      await send({ operation: 'get', namespace: 'ns', key: 'k' }, { ...(await auth()), 'reply-to': 'control' }),
    );
    expect(refused.topic).toBe('cache.operation.response');
    expect(refused.response.data.error?.code).toBe('CACHE_004');
    const allowed = answer(
      await send({ operation: 'get', namespace: 'ns', key: 'k' }, { ...(await auth()), 'reply-to': 'replies' }),
    );
    expect(allowed.topic).toBe('replies');
  });

  it('a management event on the operation topic is refused', async () => {
    const { send, auth } = setup();
    const outcome = await send({ operation: 'stats' }, await auth());
    expect(codeOf(outcome)).toBe('CACHE_004');
  });

  it('each request needs the grant of its REST twin', () => {
    const parse = (event: string, data: Record<string, unknown>) =>
      hubRequestSchema.parse({
        event,
        version: 1,
        data: { service: 's', correlation_id: 'c', timestamp: 0, request_ttl_ms: 1, ...data },
      });
    expect(
      restEquivalent(parse('cache.operation.request', { operation: 'get_many', namespace: 'a', keys: ['x'] })),
    ).toEqual({ method: 'POST', path: '/api/v1/cache/a/batch/get' });
    expect(restEquivalent(parse('cache.management.request', { operation: 'reload' }))).toEqual({
      method: 'POST',
      path: '/api/v1/reload',
    });
    expect(restEquivalent(parse('cache.management.request', { operation: 'stats' }))).toEqual({
      method: 'GET',
      path: '/api/v1/namespaces',
    });
  });

  it('HUB_ENABLED without KAFKA_BROKERS is refused in one line naming the variable; HUB_REPLY_TOPICS takes topic names', () => {
    expect(() => parseConfig(originConfigSchema, { HUB_ENABLED: 'true' })).toThrow(
      'invalid configuration: HUB_ENABLED: needs KAFKA_BROKERS',
    );
    const config = parseConfig(originConfigSchema, {
      HUB_ENABLED: 'true',
      KAFKA_BROKERS: '127.0.0.1:9092',
      HUB_REPLY_TOPICS: 'cache.operation.response, team.replies',
    });
    expect(config.HUB_REPLY_TOPICS).toEqual(['cache.operation.response', 'team.replies']);
    expect(() => parseConfig(originConfigSchema, { HUB_REPLY_TOPICS: 'bad topic' })).toThrow(/HUB_REPLY_TOPICS/);
  });

  it('HUB_ALIASES maps per-service topics to an operation and namespace; anything else is refused naming the variable', () => {
    const config = parseConfig(originConfigSchema, {
      HUB_ALIASES: 'cache.char.get=get:character, cache.campaign.invalidate=delete:campaign',
    });
    expect(config.HUB_ALIASES).toEqual([
      { topic: 'cache.char.get', operation: 'get', namespace: 'character' },
      { topic: 'cache.campaign.invalidate', operation: 'delete', namespace: 'campaign' },
    ]);
    for (const bad of ['cache.char.get', 'cache.char.get=flush:character', 'cache.char.get=get:', 'bad topic=get:x']) {
      expect(() => parseConfig(originConfigSchema, { HUB_ALIASES: bad })).toThrow(/HUB_ALIASES/);
    }
  });

  it('on an alias topic a request without operation and namespace runs as the alias; other ones are refused', async () => {
    const { handle, auth } = setup({
      routes: hubRoutes('', [{ topic: 'cache.char.set', operation: 'set', namespace: 'character' }]),
    });
    const token = await auth();
    const envelope = (event: string, data: Record<string, unknown>) => ({
      topic: 'cache.char.set',
      key: Buffer.from('character:c1'),
      value: Buffer.from(
        JSON.stringify({
          event,
          version: hubEventVersion,
          data: {
            service: 'svc',
            correlation_id: randomUUID(),
            timestamp: new Date().toISOString(),
            request_ttl_ms: 5_000,
            ...data,
          },
        }),
      ),
      headers: token,
    });
    const done = answer(await handle(envelope('cache.char.set', { key: 'c1', value: 'dg==' })));
    expect(done.topic).toBe('cache.operation.response');
    expect(done.response.data).toMatchObject({ status: 'success', operation: 'set', namespace: 'character' });
    const other = answer(await handle(envelope('cache.char.set', { key: 'c1', value: 'dg==', operation: 'delete' })));
    expect(other.response.data.error?.code).toBe('CACHE_004');
    const wrongEvent = answer(await handle(envelope('cache.image.set', { key: 'c1', value: 'dg==' })));
    expect(wrongEvent.response.data.error?.code).toBe('CACHE_004');
  });
});
