/**
 * Lua scripts shared by the Redis standalone and Cluster drivers. Each touches
 * one key (one hash slot), so it runs unchanged on a Cluster.
 *
 * An entry is one hash: `v` version, `d` bytes, `ct` content type, `c`
 * created (Unix ms), `e` expires (Unix ms, end of the fresh lifetime), `t`
 * tags (comma list), and when the writer gave grace windows (RFC 5861) `w`
 * stale-while-revalidate ms, `i` stale-if-error ms, and `p` the Unix ms of a
 * soft purge. Redis drops the hash with `PEXPIRE` at `e` plus the longer window. The version is stamped inside the script
 * from Redis's own `TIME` as `max(current + 1, now µs)` (see
 * `shared/version.ts`), so two origins writing the same key through one master
 * still produce increasing versions — no origin clock is trusted.
 */

/**
 * KEYS[1] entry; ARGV: data, content type, ttl ms, tags, stale-while-revalidate
 * ms, stale-if-error ms, refresh lease (`<id>:<version>` or empty). Returns
 * {version, createdMs}, or {-2, 0} when the lease given no longer holds (not
 * the key's current lease, expired, or the entry's version moved since the
 * grant). A write with a lease records `r`, the ms from grant to write (Δ of
 * XFetch).
 */
export const setScript = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local t = redis.call('TIME')
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local v = math.max(cur + 1, nowus)
local nowms = math.floor(nowus / 1000)
local r = nil
if ARGV[7] and ARGV[7] ~= '' then
  local l = redis.call('HMGET', KEYS[1], 'l', 'lx', 'lv', 'lg')
  if l[1] ~= ARGV[7] or tonumber(l[2] or '0') <= nowms or tonumber(l[3] or '-1') ~= cur then return {-2, 0} end
  r = nowms - tonumber(l[4])
end
local ttl = tonumber(ARGV[3])
local w = tonumber(ARGV[5] or '0')
local i = tonumber(ARGV[6] or '0')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', v, 'd', ARGV[1], 'ct', ARGV[2], 'c', nowms, 'e', nowms + ttl, 't', ARGV[4])
if w > 0 then redis.call('HSET', KEYS[1], 'w', w) end
if i > 0 then redis.call('HSET', KEYS[1], 'i', i) end
if r then redis.call('HSET', KEYS[1], 'r', r) end
redis.call('PEXPIRE', KEYS[1], ttl + math.max(w, i))
return {v, nowms}
`;

/**
 * KEYS[1] entry; ARGV[1] lease id, ARGV[2] lease ms, ARGV[3] the version the
 * caller read (0 for a miss). Grants the key's refresh lease (memcache
 * leases, NSDI 2013) unless one is outstanding, or a live entry of another
 * version is there now (written since the caller read: it should read
 * again, not refresh): records `l`
 * id, `lx` expiry, `lv` the entry's version now (0 when absent) and `lg` the
 * grant time in the entry's hash, which lives at least as long as the lease.
 * Returns {1, version} when granted, {0, 0} when another holds it.
 */
export const leaseGrantScript = `
local t = redis.call('TIME')
local nowms = math.floor((tonumber(t[1]) * 1000000 + tonumber(t[2])) / 1000)
if tonumber(redis.call('HGET', KEYS[1], 'lx') or '0') > nowms then return {0, 0} end
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if cur ~= tonumber(ARGV[3]) and redis.call('HEXISTS', KEYS[1], 'd') == 1 then
  local g = redis.call('HMGET', KEYS[1], 'e', 'w', 'i')
  if tonumber(g[1]) + math.max(tonumber(g[2] or '0'), tonumber(g[3] or '0')) > nowms then return {0, 0} end
end
local ms = tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'l', ARGV[1], 'lx', nowms + ms, 'lv', cur, 'lg', nowms)
if redis.call('PTTL', KEYS[1]) < ms then redis.call('PEXPIRE', KEYS[1], ms) end
return {1, cur}
`;

/**
 * KEYS[1] entry; ARGV[1] tombstone ttl ms. Soft purge (Fastly's): ends the
 * fresh lifetime now (`e` = min(e, now)), records `p`, keeps the grace
 * windows and bumps the version; an entry with no grace left is deleted to a
 * tombstone as by `deleteScript`. Ends the key's refresh lease, as any write
 * does: its holder loaded what the purge invalidated, and the next reader
 * may take a new one. Returns {marked (0|1), version floor}.
 */
export const softPurgeScript = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local t = redis.call('TIME')
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local v = math.max(cur + 1, nowus)
local nowms = math.floor(nowus / 1000)
redis.call('HDEL', KEYS[1], 'l', 'lx', 'lv', 'lg')
if redis.call('HEXISTS', KEYS[1], 'd') == 0 then
  if cur > 0 then redis.call('HSET', KEYS[1], 'v', v) end
  return {0, v}
end
local e = math.min(tonumber(redis.call('HGET', KEYS[1], 'e')), nowms)
local keep = e + math.max(tonumber(redis.call('HGET', KEYS[1], 'w') or '0'), tonumber(redis.call('HGET', KEYS[1], 'i') or '0'))
if keep <= nowms then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'v', v)
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
  return {1, v}
end
redis.call('HSET', KEYS[1], 'v', v, 'e', e, 'p', nowms)
redis.call('PEXPIREAT', KEYS[1], keep)
return {1, v}
`;

/**
 * KEYS[1] entry; ARGV: data, content type, expires ms (absolute), tags,
 * version, created ms, stale-while-revalidate ms, stale-if-error ms. Writes
 * only when Redis holds no entry or an older version (write-back after an
 * outage must not overwrite newer data). Returns 1 when written, 0 when
 * Redis held a newer or equal version.
 */
export const setIfNewerScript = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local v = tonumber(ARGV[5])
if cur >= v then return 0 end
local t = redis.call('TIME')
local nowms = math.floor((tonumber(t[1]) * 1000000 + tonumber(t[2])) / 1000)
local e = tonumber(ARGV[3])
local w = tonumber(ARGV[7] or '0')
local i = tonumber(ARGV[8] or '0')
if e + math.max(w, i) <= nowms then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', v, 'd', ARGV[1], 'ct', ARGV[2], 'c', ARGV[6], 'e', e, 't', ARGV[4])
if w > 0 then redis.call('HSET', KEYS[1], 'w', w) end
if i > 0 then redis.call('HSET', KEYS[1], 'i', i) end
redis.call('PEXPIREAT', KEYS[1], e + math.max(w, i))
return 1
`;

/** Milliseconds a delete's tombstone (the hash with only `v`) is kept. */
export const tombstoneTtlMs = 60_000;

/**
 * KEYS[1] entry; ARGV[1] tombstone ttl ms. Deletes the entry but keeps a
 * tombstone holding only its version for a minute, so a rewrite within the
 * same microsecond, or a replayed older write, still sees the higher version.
 * Returns {removed (0|1), version floor}.
 */
export const deleteScript = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local t = redis.call('TIME')
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local v = math.max(cur + 1, nowus)
local n = redis.call('HEXISTS', KEYS[1], 'd')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', v)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return {n, v}
`;

/**
 * KEYS[1] entry; ARGV[1] version. Deletes it only when its version is below
 * ARGV[1] (a tombstone replayed after an outage must not delete a newer
 * write). Returns {removed (0|1), version floor}.
 */
export const deleteIfOlderScript = `
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
local v = tonumber(ARGV[1])
if cur >= v then return {0, cur + 1} end
local n = redis.call('HEXISTS', KEYS[1], 'd')
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', v)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return {n, v}
`;

/** Field order read back by HMGET. */
export const entryFields = ['v', 'd', 'ct', 'c', 'e', 't', 'w', 'i', 'p', 'r'] as const;

/**
 * Atomic compare-and-swap over KEYS (entries). ARGV[1] tombstone ttl ms; then
 * six per key: expected version (0 = absent), action (`s` set, `d` delete,
 * `c` check only), data, content type, ttl ms, tags. Applies nothing unless
 * every key's live version (0 when absent, a tombstone or past `e`) equals
 * its expected one; then stamps versions as `setScript` and `deleteScript`
 * do. Returns {0} on a conflict, else {1} followed by one pair per key:
 * {version, created ms} for a set, {version floor, removed (0|1)} for a
 * delete, {0, 0} for a check. Redis runs a script atomically (EVAL), so no
 * other command sees a half-applied swap.
 */
export const swapScript = `
local t = redis.call('TIME')
local nowus = tonumber(t[1]) * 1000000 + tonumber(t[2])
local nowms = math.floor(nowus / 1000)
for i, k in ipairs(KEYS) do
  local b = 1 + (i - 1) * 6
  local h = redis.call('HMGET', k, 'v', 'd', 'e')
  local live = 0
  if h[2] and h[3] and tonumber(h[3]) > nowms then live = tonumber(h[1]) end
  if live ~= tonumber(ARGV[b + 1]) then return {0} end
end
local out = {1}
for i, k in ipairs(KEYS) do
  local b = 1 + (i - 1) * 6
  local op = ARGV[b + 2]
  if op == 'c' then
    table.insert(out, 0)
    table.insert(out, 0)
  else
    local cur = tonumber(redis.call('HGET', k, 'v') or '0')
    local v = math.max(cur + 1, nowus)
    if op == 's' then
      local ttl = tonumber(ARGV[b + 5])
      redis.call('HSET', k, 'v', v, 'd', ARGV[b + 3], 'ct', ARGV[b + 4], 'c', nowms, 'e', nowms + ttl, 't', ARGV[b + 6])
      redis.call('PEXPIRE', k, ttl)
      table.insert(out, v)
      table.insert(out, nowms)
    else
      local n = redis.call('HEXISTS', k, 'd')
      redis.call('DEL', k)
      redis.call('HSET', k, 'v', v)
      redis.call('PEXPIRE', k, tonumber(ARGV[1]))
      table.insert(out, v)
      table.insert(out, n)
    end
  end
end
return out
`;

/** The reply of a write or delete whose request id a different request already used (see `withOnce`). */
export const onceConflictReply = -3;

/**
 * Makes a single-key write or delete script (reply `{a, b}`, negative `a`
 * when it refused) run at most once per request id. KEYS[`keyIndex`] is the
 * record's key, in the entry's hash slot; ARGV[`argIndex`] the request's
 * fingerprint, ARGV[`argIndex` + 1] the record's TTL ms. A record of the
 * same fingerprint means the change was made: the script is not run and the
 * recorded reply is returned. A record of another fingerprint returns
 * `{-3, 0}`. Otherwise the script runs and, unless it refused, the record
 * `a|b|fingerprint` is written by the same script, so a change and its
 * record exist together or not at all (Redis runs a script atomically, and
 * a Cluster runs it on the one node owning the slot).
 */
export function withOnce(script: string, keyIndex: number, argIndex: number): string {
  return `
local rec = redis.call('GET', KEYS[${keyIndex}])
if rec then
  local a, b, fp = string.match(rec, '^(-?%d+)|(-?%d+)|(.*)$')
  if fp ~= ARGV[${argIndex}] then return {${onceConflictReply}, 0} end
  return {tonumber(a), tonumber(b)}
end
local function once()
${script}
end
local done = once()
if tonumber(done[1]) >= 0 then
  -- %.0f: a version (Unix µs) has 16 digits, more than tostring keeps.
  local text = string.format('%.0f|%.0f|', done[1], done[2]) .. ARGV[${argIndex}]
  redis.call('SET', KEYS[${keyIndex}], text, 'PX', math.max(1, math.ceil(tonumber(ARGV[${argIndex + 1}]))))
end
return done
`;
}
