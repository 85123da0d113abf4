import type { Cluster, Redis } from 'ioredis';
import { type AcquireOutcome, type LockStore, lockHistoryRetentionMs } from './lock-store.ts';

/*
 * Keys of one lock, sharing one hash slot through the `{namespace:name}` hash
 * tag (Redis Cluster specification, "Hash tags"): a name holding `}` ends the
 * tag early, but both keys then still share the same text up to it.
 * - `strata:l:{ns:name}`: the holder's token, a string expiring at the lease's end (PXAT);
 * - `strata:l:{ns:name}:n`: hash `t` last token granted, `r` 1 when it was
 *   released. It expires {@link lockHistoryRetentionMs} after the last
 *   grant's lease would end: tokens also grow with Redis's clock (`TIME`,
 *   µs), so the history only has to outlive any step back of that clock (a
 *   failover to a replica whose clock is behind), not the lock name forever.
 */

/** The holder key and the history key of a lock. */
export function lockKeys(namespace: string, name: string): [string, string] {
  const holder = `strata:l:{${namespace}:${name}}`;
  return [holder, `${holder}:n`];
}

// Each script reads Redis's own TIME; numbers stored as `%.0f` so µs tokens never turn into exponent notation.
// Expiry is absolute (PXAT / PEXPIREAT, read back with PEXPIRETIME, Redis ≥ 7.0), so every answer names the
// same expires_at_ms for one grant; `nowms + PTTL` could differ by a millisecond between calls.
const clock = `
local t = redis.call('TIME')
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowms = math.floor(nowus / 1000)
`;

/** KEYS holder, history; ARGV ttl ms. Returns {1, token, expiresMs, nowUs, expired} or {0, holderToken, expiresMs, nowUs, 0}. */
export const acquireLockScript = `${clock}
local held = redis.call('GET', KEYS[1])
if held then
  return {0, tonumber(held), redis.call('PEXPIRETIME', KEYS[1]), nowus, 0}
end
local last = tonumber(redis.call('HGET', KEYS[2], 't') or '0')
local expired = 0
if last > 0 and redis.call('HGET', KEYS[2], 'r') ~= '1' then expired = 1 end
local token = math.max(last + 1, nowus)
local ttl = tonumber(ARGV[1])
redis.call('SET', KEYS[1], string.format('%.0f', token), 'PXAT', nowms + ttl)
redis.call('HSET', KEYS[2], 't', string.format('%.0f', token), 'r', '0')
redis.call('PEXPIREAT', KEYS[2], nowms + ttl + ${lockHistoryRetentionMs})
return {1, token, nowms + ttl, nowus, expired}
`;

/** KEYS holder; ARGV token, ttl ms. Returns {1, expiresMs, nowUs} or {0, 0, nowUs}. */
export const renewLockScript = `${clock}
local held = redis.call('GET', KEYS[1])
if not held or tonumber(held) ~= tonumber(ARGV[1]) then return {0, 0, nowus} end
local ttl = tonumber(ARGV[2])
redis.call('PEXPIREAT', KEYS[1], nowms + ttl)
return {1, nowms + ttl, nowus}
`;

/** KEYS holder, history; ARGV token. Returns {1, nowUs} or {0, nowUs}. */
export const releaseLockScript = `${clock}
local held = redis.call('GET', KEYS[1])
if not held or tonumber(held) ~= tonumber(ARGV[1]) then return {0, nowus} end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[2], 'r', '1')
redis.call('PEXPIREAT', KEYS[2], nowms + ${lockHistoryRetentionMs})
return {1, nowus}
`;

/** KEYS holder. Returns {token, expiresMs} or {0, 0} when free. */
export const inspectLockScript = `${clock}
local held = redis.call('GET', KEYS[1])
if not held then return {0, 0} end
return {tonumber(held), redis.call('PEXPIRETIME', KEYS[1])}
`;

interface LockCommands {
  strataLockAcquire(holder: string, history: string, ttlMs: number): Promise<number[]>;
  strataLockRenew(holder: string, token: string, ttlMs: number): Promise<number[]>;
  strataLockRelease(holder: string, history: string, token: string): Promise<number[]>;
  strataLockInspect(holder: string): Promise<number[]>;
}

/**
 * The {@link LockStore} on Redis standalone or Redis Cluster (ioredis): each
 * operation is one Lua script over the lock's two keys, which share a slot,
 * so it runs atomically on the one master that owns the lock.
 *
 * Guarantee: as strong as one Redis primary. Replication is asynchronous, so
 * a failover can lose a grant and hand the lock out again; the fencing token
 * of the second grant is still larger (the promoted replica's history, or
 * its clock), which lets the protected resource refuse the first holder.
 *
 * Errors: rejects with ioredis errors; the breaker facade (`guarded.ts`) maps
 * them to CACHE_005.
 */
export function redisLockStore(client: Redis | Cluster): LockStore {
  client.defineCommand('strataLockAcquire', { numberOfKeys: 2, lua: acquireLockScript });
  client.defineCommand('strataLockRenew', { numberOfKeys: 1, lua: renewLockScript });
  client.defineCommand('strataLockRelease', { numberOfKeys: 2, lua: releaseLockScript });
  client.defineCommand('strataLockInspect', { numberOfKeys: 1, lua: inspectLockScript });
  const commands = client as unknown as LockCommands;

  return {
    async acquire(namespace, name, ttlMs): Promise<AcquireOutcome> {
      const [holder, history] = lockKeys(namespace, name);
      const [ok, token, expiresAtMs, atUs, expired] = (await commands.strataLockAcquire(holder, history, ttlMs)).map(
        Number,
      ) as [number, number, number, number, number];
      if (ok !== 1) return { acquired: false, holder: { token, expiresAtMs } };
      return { acquired: true, grant: { token, expiresAtMs, atUs }, previousExpired: expired === 1 };
    },
    async renew(namespace, name, token, ttlMs) {
      const [holder] = lockKeys(namespace, name);
      const [ok, expiresAtMs, atUs] = (await commands.strataLockRenew(holder, String(token), ttlMs)).map(Number) as [
        number,
        number,
        number,
      ];
      return ok === 1 ? { token, expiresAtMs, atUs } : null;
    },
    async release(namespace, name, token) {
      const [holder, history] = lockKeys(namespace, name);
      const [ok, atUs] = (await commands.strataLockRelease(holder, history, String(token))).map(Number) as [
        number,
        number,
      ];
      return { released: ok === 1, atUs };
    },
    async inspect(namespace, name) {
      const [token, expiresAtMs] = (await commands.strataLockInspect(lockKeys(namespace, name)[0])).map(Number) as [
        number,
        number,
      ];
      return token === 0 ? null : { token, expiresAtMs };
    },
  };
}
