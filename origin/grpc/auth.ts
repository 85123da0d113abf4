import { createContextKey, type HandlerContext, type Interceptor } from '@connectrpc/connect';
import {
  allNamespaces,
  authorize,
  bearerToken,
  type Principal,
  purgeScope,
  type Scope,
  unauthenticated,
  type Verifier,
} from '../../shared/auth.ts';
import { CacheError } from '../../shared/errors.ts';

/**
 * The grant each RPC needs, as on REST (`shared/auth-http.ts`): `Health` is
 * open; `Get`/`BatchGet`/`ListKeys` need `cache:read`, `Set`/`BatchSet` `cache:write`,
 * `Delete` `cache:delete`, `Purge` `cache:delete` (`cache:flush` with a
 * prefix), the lock RPCs `cache:lock`, `FlushNamespace` `cache:flush`,
 * `GetNamespaceVersion`/`GetNamespaceStats` `metrics:read`, each in the
 * request's `namespace`; `ListNamespaceStats` `metrics:read` (any
 * namespace), `Reload` `cache:reload` in every namespace (admin).
 */
function rpcScope(method: string, message: { prefix?: string }): Scope | 'open' {
  switch (method) {
    case 'Health':
      return 'open';
    case 'Get':
    case 'BatchGet':
    case 'ListKeys':
      return 'cache:read';
    case 'Set':
    case 'BatchSet':
      return 'cache:write';
    case 'Delete':
      return 'cache:delete';
    case 'Purge':
      return purgeScope({ prefix: message.prefix });
    case 'AcquireLock':
    case 'RenewLock':
    case 'ReleaseLock':
    case 'GetLock':
      return 'cache:lock';
    case 'FlushNamespace':
      return 'cache:flush';
    case 'GetNamespaceVersion':
    case 'GetNamespaceStats':
    case 'ListNamespaceStats':
      return 'metrics:read';
    case 'Reload':
      return 'cache:reload';
    default:
      // An RPC added later is closed until someone maps it.
      return 'cache:flush';
  }
}

/** The namespace a grant must cover, as on REST (`restAccess`): undefined = the scope alone is checked. */
function rpcNamespace(method: string, message: { namespace?: string }): string | undefined {
  if (method === 'ListNamespaceStats') return undefined;
  if (method === 'Reload') return allNamespaces;
  return message.namespace ?? '';
}

const principalKey = createContextKey<Principal | undefined>(undefined, { description: 'verified caller' });

/** The verified caller of an RPC, or undefined when authentication is off. */
export function principalOfCall(ctx: Pick<HandlerContext, 'values'>): Principal | undefined {
  return ctx.values.get(principalKey);
}

/**
 * Connect interceptor that verifies the `authorization: Bearer <JWT>` header
 * (metadata, in gRPC terms) and checks the RPC's grant. Place it inside the
 * error-mapping interceptor so failures become UNAUTHENTICATED (AUTH_001) and
 * PERMISSION_DENIED (AUTH_002) with the ICD code in `x-cache-error-code`.
 * `onRefused` hears each refusal with the call's metric operation
 * (`grpc_get`, `grpc_batch_set`, …) and its duration in seconds.
 */
export function grpcAuthInterceptor(
  verifier: Verifier,
  onRefused?: (operation: string, code: 'AUTH_001' | 'AUTH_002', seconds: number) => void,
): Interceptor {
  return (next) => async (req) => {
    const message = (req.stream ? {} : req.message) as { namespace?: string; prefix?: string };
    const scope = rpcScope(req.method.name, message);
    if (scope === 'open') return await next(req);
    const started = performance.now();
    try {
      const token = bearerToken(req.header.get('authorization'));
      if (!token) throw unauthenticated();
      const principal = await verifier(token);
      authorize(principal, scope, rpcNamespace(req.method.name, message));
      req.contextValues.set(principalKey, principal);
    } catch (error) {
      if (onRefused && error instanceof CacheError && (error.code === 'AUTH_001' || error.code === 'AUTH_002')) {
        const operation = `grpc_${req.method.name.replace(/([a-z])([A-Z])/g, '$1_$2').toLowerCase()}`;
        onRefused(operation, error.code, (performance.now() - started) / 1000);
      }
      throw error;
    }
    return await next(req);
  };
}
