import { Code, ConnectError } from '@connectrpc/connect';
import { describe, expect, it } from 'vitest';
import { errorCodeMetadata, toConnectError, untilAborted } from '../../origin/grpc/errors.ts';
import { CacheError, type ErrorCode, errorCodes } from '../../shared/errors.ts';

describe('gRPC error mapping (ARCHITECTURE.md §2 table)', () => {
  const expected: Record<ErrorCode, Code> = {
    CACHE_001: Code.NotFound,
    CACHE_002: Code.NotFound,
    CACHE_003: Code.ResourceExhausted,
    CACHE_004: Code.InvalidArgument,
    CACHE_005: Code.Unavailable,
    CACHE_006: Code.FailedPrecondition,
    AUTH_001: Code.Unauthenticated,
    AUTH_002: Code.PermissionDenied,
    LOCK_001: Code.Aborted,
  };

  it.each([...errorCodes])('%s maps to its gRPC code and carries the ICD code in metadata', (code) => {
    const mapped = toConnectError(new CacheError(code, 'why'));
    expect(mapped.code).toBe(expected[code]);
    expect(mapped.rawMessage).toBe('why');
    expect(mapped.metadata.get(errorCodeMetadata)).toBe(code);
  });

  it('CACHE_005 with HTTP 504 (a timeout) maps to DEADLINE_EXCEEDED, and CACHE_003 413 stays RESOURCE_EXHAUSTED', () => {
    expect(toConnectError(new CacheError('CACHE_005', 'slow', { status: 504 })).code).toBe(Code.DeadlineExceeded);
    expect(toConnectError(new CacheError('CACHE_003', 'big', { status: 413 })).code).toBe(Code.ResourceExhausted);
  });

  it('an unexpected error is reported and answers UNAVAILABLE (CACHE_005), as REST answers 503', () => {
    const seen: unknown[] = [];
    const mapped = toConnectError(new TypeError('bug'), (e) => seen.push(e));
    expect(mapped.code).toBe(Code.Unavailable);
    expect(mapped.metadata.get(errorCodeMetadata)).toBe('CACHE_005');
    expect(seen).toHaveLength(1);
  });

  it('a ConnectError raised by Connect itself passes unchanged', () => {
    const deadline = new ConnectError('the operation timed out', Code.DeadlineExceeded);
    expect(toConnectError(deadline)).toBe(deadline);
  });

  it('untilAborted never starts work once the signal fired, and stops waiting when it fires', async () => {
    const fired = AbortSignal.abort(new ConnectError('late', Code.DeadlineExceeded));
    let started = false;
    await expect(
      untilAborted(fired, async () => {
        started = true;
      }),
    ).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    expect(started).toBe(false);

    const controller = new AbortController();
    const never = untilAborted(controller.signal, () => new Promise<void>(() => {}));
    controller.abort(new ConnectError('timed out', Code.DeadlineExceeded));
    await expect(never).rejects.toMatchObject({ code: Code.DeadlineExceeded });
  });
});
