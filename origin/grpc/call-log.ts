import { Code, ConnectError, type Interceptor } from '@connectrpc/connect';
import { type ErrorCode, errorTable } from '../../shared/errors.ts';
import type { RequestLog } from '../../shared/http.ts';
import { errorCodeMetadata } from './errors.ts';

const requestIdPattern = /^[A-Za-z0-9._:-]{1,128}$/;

/**
 * One {@link RequestLog} record per RPC, as REST writes per request:
 * `request_id` (the `x-request-id` metadata when well-formed, else
 * generated), `operation` (`rpc_get`, `rpc_batch_set`, …), the request's
 * namespace, `result` `ok`, `error` or `refused` (AUTH_001/AUTH_002), the HTTP status REST would have
 * answered (from the ICD code of the error; 200 on success), `duration_ms`
 * and `error_code`. Mount outermost, so it sees the mapped error. Never logs
 * keys' values or credentials.
 */
export function callLogInterceptor(log: RequestLog): Interceptor {
  return (next) => async (req) => {
    const started = performance.now();
    const given = req.header.get('x-request-id');
    const requestId = given && requestIdPattern.test(given) ? given : crypto.randomUUID();
    const operation = `rpc_${req.method.name.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase()}`;
    const message = 'message' in req ? (req.message as { namespace?: unknown }) : undefined;
    const namespace =
      typeof message?.namespace === 'string' && message.namespace !== '' ? message.namespace : undefined;
    try {
      const res = await next(req);
      log({
        request_id: requestId,
        operation,
        namespace,
        tier: 'none',
        result: 'ok',
        status: 200,
        duration_ms: performance.now() - started,
      });
      return res;
    } catch (error) {
      const connectError = ConnectError.from(error);
      const code = connectError.metadata.get(errorCodeMetadata) as ErrorCode | null;
      log({
        request_id: requestId,
        operation,
        namespace,
        tier: 'none',
        // As on REST: a call turned away for its token is `refused`, not an error of the cache.
        result: code === 'AUTH_001' || code === 'AUTH_002' ? 'refused' : 'error',
        status: code && code in errorTable ? errorTable[code].http : connectError.code === Code.Canceled ? 499 : 500,
        duration_ms: performance.now() - started,
        error_code: code ?? `grpc_${Code[connectError.code]?.toLowerCase() ?? 'unknown'}`,
      });
      throw error;
    }
  };
}
