import { Code, ConnectError } from '@connectrpc/connect';
import { CacheError, type GrpcCode } from '../../shared/errors.ts';

/** Trailer (gRPC) or header (Connect unary) that carries the ICD code of a failed call, e.g. `CACHE_004`. */
export const errorCodeMetadata = 'x-cache-error-code';

/** Connect's codes for the gRPC names of ARCHITECTURE.md §2 (`CacheError.grpcCode`). */
const connectCodes: Record<GrpcCode, Code> = {
  not_found: Code.NotFound,
  resource_exhausted: Code.ResourceExhausted,
  invalid_argument: Code.InvalidArgument,
  unavailable: Code.Unavailable,
  deadline_exceeded: Code.DeadlineExceeded,
  unauthenticated: Code.Unauthenticated,
  permission_denied: Code.PermissionDenied,
  aborted: Code.Aborted,
  failed_precondition: Code.FailedPrecondition,
};

/**
 * Turns anything a handler threw into the status a gRPC client sees, by the
 * one table in `shared/errors.ts`: a {@link CacheError} keeps its message and
 * gets its `grpcCode` plus the ICD code in {@link errorCodeMetadata}; a
 * ConnectError (deadline, cancel, protocol errors raised by Connect itself)
 * passes unchanged; anything else is an unexpected failure and answers as
 * REST does, CACHE_005 → UNAVAILABLE.
 */
export function toConnectError(error: unknown, onUnexpected?: (error: unknown) => void): ConnectError {
  if (error instanceof ConnectError) return error;
  let cacheError: CacheError;
  if (error instanceof CacheError) cacheError = error;
  else {
    onUnexpected?.(error);
    cacheError = new CacheError('CACHE_005', 'Internal error', { cause: error });
  }
  return new ConnectError(
    cacheError.message,
    connectCodes[cacheError.grpcCode],
    { [errorCodeMetadata]: cacheError.code },
    undefined,
    cacheError,
  );
}

/**
 * Runs `work` unless `signal` (Connect's per-call signal: the client's
 * deadline, a cancel or a disconnect) has fired, and stops waiting for it as
 * soon as the signal fires: the call then fails with the signal's reason,
 * DEADLINE_EXCEEDED for a passed deadline. A store call already sent is not
 * rolled back (its purge still reaches the edges); one not yet started never runs.
 */
export async function untilAborted<T>(signal: AbortSignal, work: () => Promise<T>): Promise<T> {
  signal.throwIfAborted();
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  const running = work();
  // Once the deadline won, a late store failure has no caller left to tell.
  running.catch(() => {});
  try {
    return await Promise.race([running, aborted]);
  } finally {
    signal.removeEventListener('abort', onAbort!);
  }
}
