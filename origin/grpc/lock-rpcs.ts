import type { MessageInitShape } from '@bufbuild/protobuf';
import type { HandlerContext, ServiceImpl } from '@connectrpc/connect';
import type { CacheService as CacheServiceDesc, GetLockResponseSchema } from '../../gen/strata/cache/v1/cache_pb.js';
import { CacheError } from '../../shared/errors.ts';
import {
  type LockService,
  lockParam,
  lockTtlSecondsSchema,
  lockWaitSecondsSchema,
  validLockAddress,
} from '../locks/lock-service.ts';
import { untilAborted } from './errors.ts';

type LockRpcs = Pick<ServiceImpl<typeof CacheServiceDesc>, 'acquireLock' | 'renewLock' | 'releaseLock' | 'getLock'>;
type Timed = <T>(operation: string, run: () => Promise<{ out: T; tier: string; result: string }>) => Promise<T>;

/**
 * A token from the wire: a positive int64, else CACHE_004. One above 2^53 − 1
 * holds no grant (see `lockTokenSchema`), so it answers LOCK_001 as in REST.
 */
function tokenOf(token: bigint, operation: string): number {
  if (token <= 0n) {
    throw new CacheError('CACHE_004', 'token must be a positive integer', {
      details: { token: String(token), operation },
    });
  }
  return Number(token);
}

/**
 * The lock RPCs of `strata.cache.v1.CacheService` (docs/locks.md), over the
 * same {@link LockService} as REST: same rules, same codes (LOCK_001 is
 * ABORTED). A waiting `AcquireLock` stops at the client's deadline.
 */
export function grpcLockRpcs(locks: LockService, timed: Timed, tier: string): LockRpcs {
  return {
    acquireLock: (req, ctx: HandlerContext) =>
      timed('lock_acquire', async () => {
        validLockAddress(req.namespace, req.name, 'lock_acquire');
        const ttl = lockParam(lockTtlSecondsSchema, Number(req.ttlSeconds), 'ttl', 'lock_acquire');
        const wait = lockParam(lockWaitSecondsSchema, req.waitSeconds, 'wait', 'lock_acquire');
        const grant = await untilAborted(ctx.signal, () =>
          locks.acquire(req.namespace, req.name, ttl, wait, ctx.signal),
        );
        return { out: { token: BigInt(grant.token), expiresAtMs: BigInt(grant.expiresAtMs) }, tier, result: 'ok' };
      }),
    renewLock: (req, ctx) =>
      timed('lock_renew', async () => {
        validLockAddress(req.namespace, req.name, 'lock_renew');
        const ttl = lockParam(lockTtlSecondsSchema, Number(req.ttlSeconds), 'ttl', 'lock_renew');
        const token = tokenOf(req.token, 'lock_renew');
        const grant = await untilAborted(ctx.signal, () => locks.renew(req.namespace, req.name, token, ttl));
        return { out: { token: BigInt(grant.token), expiresAtMs: BigInt(grant.expiresAtMs) }, tier, result: 'ok' };
      }),
    releaseLock: (req, ctx) =>
      timed('lock_release', async () => {
        validLockAddress(req.namespace, req.name, 'lock_release');
        const token = tokenOf(req.token, 'lock_release');
        await untilAborted(ctx.signal, () => locks.release(req.namespace, req.name, token));
        return { out: { released: true }, tier, result: 'ok' };
      }),
    getLock: (req, ctx) =>
      timed<MessageInitShape<typeof GetLockResponseSchema>>('lock_get', async () => {
        validLockAddress(req.namespace, req.name, 'lock_get');
        try {
          const holder = await untilAborted(ctx.signal, () => locks.inspect(req.namespace, req.name));
          return {
            out: { held: true, token: BigInt(holder.token), expiresAtMs: BigInt(holder.expiresAtMs) },
            tier,
            result: 'hit',
          };
        } catch (error) {
          if (error instanceof CacheError && error.code === 'CACHE_001')
            return { out: { held: false }, tier, result: 'miss' };
          throw error;
        }
      }),
  };
}
