import { z } from 'zod';

/**
 * Error codes of the cache service's interface control document (ICD §8.1),
 * as listed in ARCHITECTURE.md §2.
 */
export const errorCodes = [
  'CACHE_001',
  'CACHE_002',
  'CACHE_003',
  'CACHE_004',
  'CACHE_005',
  'CACHE_006',
  'AUTH_001',
  'AUTH_002',
  'LOCK_001',
] as const;
export type ErrorCode = (typeof errorCodes)[number];

/** gRPC status names used by the origin's Connect handler (lower-case Connect spelling). */
export type GrpcCode =
  | 'not_found'
  | 'resource_exhausted'
  | 'invalid_argument'
  | 'unavailable'
  | 'deadline_exceeded'
  | 'unauthenticated'
  | 'permission_denied'
  | 'aborted'
  | 'failed_precondition';

/**
 * The one table that maps an ICD code to HTTP status and gRPC code. Where a
 * code has two statuses (CACHE_003 413 vs 507, CACHE_005 503 vs 504), the
 * thrower picks the variant with `CacheError`'s `status` option.
 */
export const errorTable: Record<ErrorCode, { http: number; grpc: GrpcCode; message: string }> = {
  CACHE_001: { http: 404, grpc: 'not_found', message: 'Key not found' },
  CACHE_002: { http: 404, grpc: 'not_found', message: 'Key expired' },
  CACHE_003: { http: 507, grpc: 'resource_exhausted', message: 'Storage full' },
  CACHE_004: { http: 400, grpc: 'invalid_argument', message: 'Invalid key format' },
  CACHE_005: { http: 503, grpc: 'unavailable', message: 'Operation timeout' },
  // A write carrying a refresh lease that no longer holds (expired, or a newer version was written): the
  // precondition of the write failed (RFC 9110 §15.5.13), and gRPC's FAILED_PRECONDITION says "do not retry as is".
  CACHE_006: { http: 412, grpc: 'failed_precondition', message: 'Refresh lease lost' },
  AUTH_001: { http: 401, grpc: 'unauthenticated', message: 'Invalid credentials' },
  AUTH_002: { http: 403, grpc: 'permission_denied', message: 'Insufficient permissions' },
  // ABORTED, not FAILED_PRECONDITION: gRPC's status guide gives ABORTED to a lost test-and-set or sequencer check,
  // which the caller retries at a higher level (acquire again); FAILED_PRECONDITION means "do not retry as is".
  LOCK_001: { http: 409, grpc: 'aborted', message: 'Lock held by another token' },
};

/** Alternative HTTP statuses allowed per code (ARCHITECTURE.md §2). */
const allowedStatuses: Record<ErrorCode, readonly number[]> = {
  CACHE_001: [404],
  CACHE_002: [404],
  CACHE_003: [507, 413],
  // 431: request headers too large, answered by the HTTP parser hook (platform/node/request-timeouts.ts).
  CACHE_004: [400, 431],
  // 429: the edge's rate limit (docs/security.md); 408: a request not received in time. The ICD has no codes of their own.
  CACHE_005: [503, 504, 429, 408],
  CACHE_006: [412],
  AUTH_001: [401],
  AUTH_002: [403],
  LOCK_001: [409],
};

/** `details` of the error envelope: free-form, but `key`, `operation` and `timestamp` are conventional. */
export type ErrorDetails = Record<string, unknown>;

/**
 * The single error class of Strata. Carries an ICD code; the HTTP status and
 * gRPC code come from {@link errorTable}, never from the thrower.
 */
export class CacheError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly details: ErrorDetails;

  /**
   * @param code ICD code.
   * @param message human-readable message; defaults to the ICD's.
   * @param options `details` for the envelope; `status` picks an allowed variant (413 for CACHE_003, 504 for CACHE_005).
   * @throws Error when `status` is not allowed for `code` (a programming error).
   */
  constructor(
    code: ErrorCode,
    message?: string,
    options: { details?: ErrorDetails; status?: number; cause?: unknown } = {},
  ) {
    super(message ?? errorTable[code].message, { cause: options.cause });
    this.name = 'CacheError';
    this.code = code;
    const status = options.status ?? errorTable[code].http;
    if (!allowedStatuses[code].includes(status)) throw new Error(`HTTP ${status} is not allowed for ${code}`);
    this.status = status;
    this.details = options.details ?? {};
  }

  /** The gRPC code for this error (ARCHITECTURE.md §2); 504 maps to deadline_exceeded, 429 to resource_exhausted. */
  get grpcCode(): GrpcCode {
    if (this.code === 'CACHE_005' && this.status === 504) return 'deadline_exceeded';
    if (this.code === 'CACHE_005' && this.status === 429) return 'resource_exhausted';
    return errorTable[this.code].grpc;
  }

  /** The documented JSON envelope, with a `timestamp` added to `details` if absent. */
  toEnvelope(): ErrorEnvelope {
    return {
      error: {
        code: this.code,
        message: this.message,
        details: { timestamp: new Date().toISOString(), ...this.details },
      },
    };
  }
}

/** The error envelope every REST error uses (ARCHITECTURE.md §2, ICD §8.2). */
export const errorEnvelopeSchema = z.object({
  error: z.object({
    code: z.enum(errorCodes),
    message: z.string(),
    details: z.record(z.string(), z.unknown()).optional(),
  }),
});
export type ErrorEnvelope = z.infer<typeof errorEnvelopeSchema>;

/** Turns a zod failure into a CACHE_004 with the first issue's path and message. */
export function invalidInput(error: z.ZodError, details: ErrorDetails = {}): CacheError {
  const issue = error.issues[0];
  const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
  return new CacheError('CACHE_004', `${where}${issue?.message ?? 'invalid input'}`, { details });
}
