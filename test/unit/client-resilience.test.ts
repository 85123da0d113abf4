import { Code, ConnectError } from '@connectrpc/connect';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { CacheClientError, CircuitOpenError, ClientPolicies } from '../../client/resilience.ts';

const unavailable = () => Promise.reject(new ConnectError('store down', Code.Unavailable));
const ok = () => Promise.resolve('ok');

async function settle(p: Promise<unknown>): Promise<unknown> {
  return await p.then(
    (v) => v,
    (e: unknown) => e,
  );
}

describe('client breaker with the ICD defaults (0.5, 60 s, 20 calls)', () => {
  beforeEach(() => {
    vi.useFakeTimers({ now: 1_000_000 });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('stays closed below 20 calls and opens at the 20th failure; an open breaker refuses without calling', async () => {
    const p = new ClientPolicies({}, { retries: 0 });
    for (let i = 0; i < 19; i++) await settle(p.run(false, unavailable));
    expect(p.state).toBe('closed');
    await settle(p.run(false, unavailable));
    expect(p.state).toBe('open');
    const attempt = vi.fn(ok);
    const refused = await settle(p.run(false, attempt));
    expect(refused).toBeInstanceOf(CircuitOpenError);
    expect(attempt).not.toHaveBeenCalled();
  });

  it('opens at a failure ratio of exactly 0.5, not at 0.45', async () => {
    const half = new ClientPolicies({}, { retries: 0 });
    for (let i = 0; i < 10; i++) {
      await settle(half.run(false, ok));
      await settle(half.run(false, unavailable));
    }
    expect(half.state).toBe('open');
    const below = new ClientPolicies({}, { retries: 0 });
    for (let i = 0; i < 11; i++) await settle(below.run(false, ok));
    for (let i = 0; i < 9; i++) await settle(below.run(false, unavailable));
    expect(below.state).toBe('closed');
  });

  it('forgets calls older than the window and does not count client errors', async () => {
    const p = new ClientPolicies({}, { retries: 0 });
    for (let i = 0; i < 19; i++) await settle(p.run(false, unavailable));
    vi.setSystemTime(Date.now() + 61_000);
    await settle(p.run(false, unavailable));
    expect(p.state).toBe('closed');
    const invalid = () => Promise.reject(new ConnectError('bad key', Code.InvalidArgument));
    for (let i = 0; i < 30; i++) await settle(p.run(false, invalid));
    expect(p.state).toBe('closed');
  });

  it('half-opens after the cool-down: a failed trial reopens, a good one closes', async () => {
    const p = new ClientPolicies({ halfOpenAfterMs: 30_000 }, { retries: 0 });
    for (let i = 0; i < 20; i++) await settle(p.run(false, unavailable));
    vi.setSystemTime(Date.now() + 29_000);
    expect(await settle(p.run(false, ok))).toBeInstanceOf(CircuitOpenError);
    vi.setSystemTime(Date.now() + 1_000);
    expect(await settle(p.run(false, unavailable))).toMatchObject({ code: Code.Unavailable });
    expect(p.state).toBe('open');
    vi.setSystemTime(Date.now() + 30_000);
    expect(await p.run(false, ok)).toBe('ok');
    expect(p.state).toBe('closed');
  });
});

describe('client retries', () => {
  it('retries an idempotent call after UNAVAILABLE, up to 3 times, and reports the attempts', async () => {
    const p = new ClientPolicies(false, { initialDelayMs: 1, maxDelayMs: 2 });
    let calls = 0;
    expect(await p.run(true, () => (++calls < 3 ? unavailable() : ok()))).toBe('ok');
    expect(calls).toBe(3);
    const failed = await settle(p.run(true, unavailable));
    expect(failed).toBeInstanceOf(CacheClientError);
    expect(failed).toMatchObject({ attempts: 4, errorCode: 'CACHE_005' });
  });

  it('never retries a non-idempotent call, nor an error other than UNAVAILABLE', async () => {
    const p = new ClientPolicies(false, { initialDelayMs: 1, maxDelayMs: 2 });
    expect(await settle(p.run(false, unavailable))).toMatchObject({ attempts: 1 });
    const denied = () => Promise.reject(new ConnectError('no', Code.PermissionDenied));
    expect(await settle(p.run(true, denied))).toMatchObject({ attempts: 1, errorCode: 'AUTH_002' });
  });
});
