import type { RequestLog, RequestRecord } from './http.ts';

/** The part of a pino logger the request log needs. */
export interface InfoLogger {
  isLevelEnabled(level: string): boolean;
  info(record: object, message: string): void;
  warn(record: object, message: string): void;
}

/**
 * One structured line per request (issue: observability): request id,
 * namespace, operation, tier, status and duration, errors with their ICD
 * code at `warn`. Returns undefined when `info` is off, so the hot path pays
 * nothing. Values, bodies and credentials are never in a record.
 */
export function pinoRequestLog(logger: InfoLogger): RequestLog | undefined {
  if (!logger.isLevelEnabled('info')) return undefined;
  return (record: RequestRecord) => {
    if (record.status >= 500) logger.warn(record, 'request failed');
    else logger.info(record, 'request');
  };
}
