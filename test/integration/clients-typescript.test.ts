/**
 * The TypeScript client's parity with the Python and Go clients, on the same
 * servers (clients-stack.ts): token and token provider, encrypt, each
 * reachable ICD code as a CacheClientError, a retry that succeeds after an
 * injected 503 (idempotent calls only), and the client-side breaker opening
 * after failures and half-opening.
 */
import { Code, ConnectError } from '@connectrpc/connect';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import {
  CacheClientError,
  type CacheClientOptions,
  CircuitOpenError,
  type ClientBreakerState,
  createCacheClient,
} from '../../client/index.ts';
import { type ClientsStack, clientsStack, crossLanguagePayload } from './clients-stack.ts';

async function failure(call: Promise<unknown>): Promise<CacheClientError> {
  try {
    await call;
  } catch (error) {
    expect(error).toBeInstanceOf(CacheClientError);
    return error as CacheClientError;
  }
  throw new Error('expected the call to fail');
}

describe('TypeScript client: token, encrypt, ICD errors, retries, breaker (auth on, real Redis)', () => {
  let stack: ClientsStack;
  const fast = { retries: 3, initialDelayMs: 5, maxDelayMs: 50 };
  const client = (o: Partial<CacheClientOptions> = {}) =>
    createCacheClient({ baseUrl: stack.origin.url, namespace: stack.namespace, token: stack.token, retry: fast, ...o });
  const key = (name: string) => `ts:${name}:${Date.now()}:${Math.random()}`;

  beforeAll(async () => {
    stack = await clientsStack(inject('redisUrl'));
  });
  afterAll(async () => {
    await stack?.close();
  });

  it('every call with a fixed token; a token provider is asked before every attempt', async () => {
    const c = client();
    const k = key('all');
    expect(await c.get(k)).toBeNull();
    const written = await c.set(k, 'v', { ttlSeconds: 60, tags: ['ts-tag'] });
    expect((await c.get(k))?.version).toBe(written.version);
    expect((await c.setMany({ [`${k}:a`]: 'A' })).storedCount).toBe(1);
    expect((await c.getMany([`${k}:a`, `${k}:b`])).missingKeys).toEqual([`${k}:b`]);
    expect((await c.purge({ tags: ['ts-tag'] })).purgedCount).toBe(1);
    expect((await c.delete(`${k}:a`)).deleted).toBe(true);
    expect((await c.health()).healthy).toBe(true);

    let asked = 0;
    const rotating = client({
      token: async () => {
        asked++;
        return stack.token;
      },
    });
    await rotating.set(k, 'x');
    await rotating.get(k);
    expect(asked).toBe(2);
  });

  it('encrypt: a value encrypted at rest reads back byte-exact', async () => {
    const k = key('enc');
    await client({ encrypt: true }).set(k, crossLanguagePayload('enc'));
    expect((await client().get(k))?.value).toEqual(crossLanguagePayload('enc'));
    await client().set(`${k}:2`, 'per call', { encrypt: true });
    expect((await client().get(`${k}:2`))?.value).toEqual(new TextEncoder().encode('per call'));
  });

  it('AUTH_001 for a missing or forged token, AUTH_002 for a namespace the token lacks; not retried', async () => {
    const missing = await failure(client({ token: undefined }).get(key('a')));
    expect([missing.code, missing.errorCode, missing.attempts]).toEqual([Code.Unauthenticated, 'AUTH_001', 1]);
    expect((await failure(client({ token: stack.forgedToken }).get(key('a')))).errorCode).toBe('AUTH_001');
    const denied = await failure(client({ namespace: stack.otherNamespace }).get(key('a')));
    expect([denied.code, denied.errorCode]).toEqual([Code.PermissionDenied, 'AUTH_002']);
  });

  it('CACHE_004, CACHE_003 and CACHE_005 (retried 3 times); errors stay ConnectErrors', async () => {
    const bad = await failure(client().get('bad\u0000key'));
    expect([bad.code, bad.errorCode]).toEqual([Code.InvalidArgument, 'CACHE_004']);
    expect(bad).toBeInstanceOf(ConnectError);
    expect(ConnectError.from(bad)).toBe(bad);
    expect(bad.metadata.get('x-cache-error-code')).toBe('CACHE_004');
    const big = await failure(client().set(key('big'), new Uint8Array(stack.maxValueBytes + 1)));
    expect([big.code, big.errorCode]).toEqual([Code.ResourceExhausted, 'CACHE_003']);
    const down = await failure(client({ baseUrl: stack.down.url }).get(key('down')));
    expect([down.code, down.errorCode, down.attempts]).toEqual([Code.Unavailable, 'CACHE_005', 4]);
    expect(down).not.toBeInstanceOf(CircuitOpenError);
  });

  it('a deadline per attempt (CACHE_005, DEADLINE_EXCEEDED, not retried); a refused connection is UNAVAILABLE and retried', async () => {
    stack.delay(2_000);
    const late = await failure(client({ baseUrl: stack.flakyUrl, timeoutMs: 200 }).get(key('slow')));
    expect([late.code, late.errorCode, late.attempts]).toEqual([Code.DeadlineExceeded, 'CACHE_005', 1]);
    const refused = await failure(client({ baseUrl: stack.closedUrl }).get(key('refused')));
    expect([refused.code, refused.errorCode, refused.attempts]).toEqual([Code.Unavailable, 'CACHE_005', 4]);
  });

  it('an idempotent call succeeds after an injected 503; a write is not retried', async () => {
    const k = key('retry');
    await client().set(k, 'after-503');
    const flaky = client({ baseUrl: stack.flakyUrl });
    stack.arm(1);
    expect(new TextDecoder().decode((await flaky.get(k))?.value)).toBe('after-503');
    stack.arm(1);
    const write = await failure(flaky.set(k, 'x'));
    expect([write.code, write.errorCode, write.attempts]).toEqual([Code.Unavailable, 'CACHE_005', 1]);
    stack.arm(0);
  });

  it('the breaker opens after failures (not before the minimum), refuses calls, then half-opens and closes', async () => {
    const states: ClientBreakerState[] = [];
    const c = client({
      baseUrl: stack.flakyUrl,
      retry: { retries: 0 },
      breaker: { threshold: 0.5, windowMs: 60_000, minRequests: 4, halfOpenAfterMs: 300 },
    });
    c.onBreakerStateChange((s) => states.push(s));
    const k = key('breaker');
    stack.arm(1000);
    for (let i = 0; i < 4; i++) {
      const e = await failure(c.get(k));
      expect(e).not.toBeInstanceOf(CircuitOpenError);
      expect(e.errorCode).toBe('CACHE_005');
    }
    expect(c.breakerState).toBe('open');
    const refused = await failure(c.get(k));
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect([refused.code, refused.errorCode]).toEqual([Code.Unavailable, 'CACHE_005']);
    stack.arm(0);
    // The breaker half-opens on the first call after the cool-down: poll with calls until one goes through.
    const deadline = Date.now() + 10_000;
    for (;;) {
      try {
        expect(await c.get(k)).toBeNull();
        break;
      } catch (error) {
        if (!(error instanceof CircuitOpenError) || Date.now() > deadline) throw error;
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    expect(states).toEqual(['open', 'half-open', 'closed']);
    expect(c.breakerState).toBe('closed');
  });
});
