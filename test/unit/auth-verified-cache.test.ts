import { SignJWT } from 'jose';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { createVerifier } from '../../shared/auth.ts';
import { CacheError } from '../../shared/errors.ts';

/** jose's `jwtVerify` wrapped in a spy, to count signature checks (the one fake here). */
const calls = vi.hoisted(() => ({ verify: 0 }));
vi.mock('jose', async (importOriginal) => {
  const jose = await importOriginal<typeof import('jose')>();
  return {
    ...jose,
    jwtVerify: (...args: Parameters<typeof jose.jwtVerify>) => {
      calls.verify += 1;
      return jose.jwtVerify(...args);
    },
  };
});

const secret = 'a-test-secret-of-at-least-32-bytes!!';
const start = 1_800_000_000_000;

async function token(claims: Record<string, unknown>, expInSeconds: number, key = secret): Promise<string> {
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: 'HS256' })
    .setExpirationTime(Math.floor(Date.now() / 1000) + expInSeconds)
    .sign(new TextEncoder().encode(key));
}

async function codeOf(run: Promise<unknown>): Promise<string> {
  return await run.then(
    () => 'ok',
    (e: unknown) => (e instanceof CacheError ? e.code : String(e)),
  );
}

describe('verified-token cache', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: start });
    calls.verify = 0;
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('checks a token signature once, and another token on its own', async () => {
    const verify = createVerifier({ secret })!;
    const a = await token({ sub: 'a' }, 60);
    const b = await token({ sub: 'b' }, 60);
    expect((await verify(a)).serviceId).toBe('a');
    expect((await verify(a)).serviceId).toBe('a');
    expect(calls.verify).toBe(1);
    expect((await verify(b)).serviceId).toBe('b');
    expect(calls.verify).toBe(2);
  });

  it('stops answering from memory exactly when jose would refuse the token: exp plus the skew allowance', async () => {
    const verify = createVerifier({ secret, clockSkewSeconds: 30 })!;
    const t = await token({ sub: 's' }, 60);
    expect(await codeOf(verify(t))).toBe('ok');
    vi.setSystemTime(start + 89_999);
    expect(await codeOf(verify(t))).toBe('ok');
    expect(calls.verify).toBe(1);
    vi.setSystemTime(start + 90_000);
    expect(await codeOf(verify(t))).toBe('AUTH_001');
    expect(calls.verify).toBe(2);
    expect(await codeOf(verify(t))).toBe('AUTH_001');
  });

  it('never remembers a refusal, and verifiedTokens: 0 checks every call', async () => {
    const verify = createVerifier({ secret })!;
    const forged = await token({ sub: 'f' }, 60, `${secret}-other`);
    expect(await codeOf(verify(forged))).toBe('AUTH_001');
    expect(await codeOf(verify(forged))).toBe('AUTH_001');
    expect(calls.verify).toBe(2);
    const uncached = createVerifier({ secret, verifiedTokens: 0 })!;
    const t = await token({ sub: 'u' }, 60);
    await uncached(t);
    await uncached(t);
    expect(calls.verify).toBe(4);
  });

  it('keeps at most verifiedTokens tokens', async () => {
    const verify = createVerifier({ secret, verifiedTokens: 2 })!;
    const [a, b, c] = await Promise.all(['a', 'b', 'c'].map((sub) => token({ sub }, 60)));
    for (const t of [a, b, c, a]) await verify(t!);
    expect(calls.verify).toBe(4); // a was evicted by c
    await verify(a!);
    expect(calls.verify).toBe(4);
  });

  it('peek answers only what a call would answer from memory, and never verifies', async () => {
    const verify = createVerifier({ secret, clockSkewSeconds: 30 })!;
    const t = await token({ sub: 'p' }, 60);
    expect(verify.peek?.(t)).toBeUndefined();
    expect(calls.verify).toBe(0);
    await verify(t);
    expect(verify.peek?.(t)?.serviceId).toBe('p');
    expect(verify.peek?.(`${t}x`)).toBeUndefined();
    vi.setSystemTime(start + 90_000);
    expect(verify.peek?.(t)).toBeUndefined();
    expect(calls.verify).toBe(1);
    expect(createVerifier({ secret, verifiedTokens: 0 })!.peek).toBeUndefined();
  });
});
