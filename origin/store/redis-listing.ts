import { createHash } from 'node:crypto';
import { CacheError } from '../../shared/errors.ts';
import { parseGlob } from '../listing/glob.ts';
import { entryKey } from './redis-codec.ts';
import { escapeGlob } from './redis-commands.ts';
import type { ListedKey } from './store.ts';

/*
 * Key listing helpers both Redis drivers share: the SCAN pattern of a
 * namespace, cursor checks, and turning the entry hashes SCAN found into
 * listed keys.
 */

/** Hash fields a listing reads of each entry (plus `HSTRLEN d` for the size). */
export const listFields = ['v', 'e', 't'] as const;

/**
 * The `SCAN MATCH` pattern of a glob within a namespace: the namespace's
 * entry-key prefix, escaped, then the glob as given (Redis glob semantics are
 * the ones `parseGlob` implements).
 * @throws CacheError CACHE_004 for a malformed glob.
 */
export function scanPattern(namespace: string, match: string): string {
  parseGlob(match);
  return `${escapeGlob(entryKey(namespace, ''))}${match}`;
}

/** A malformed cursor: CACHE_004. */
export function badCursor(cursor: string): CacheError {
  return new CacheError('CACHE_004', 'Invalid cursor', { details: { cursor, operation: 'list' } });
}

const scanCursorPattern = /^[1-9][0-9]{0,19}$/;

/**
 * A `SCAN` cursor: "0" to start, else the decimal cursor Redis returned.
 * @throws CacheError CACHE_004 when it is not one.
 */
export function scanCursor(cursor: string | null): string {
  if (cursor === null) return '0';
  if (!scanCursorPattern.test(cursor)) throw badCursor(cursor);
  return cursor;
}

/**
 * The listed keys of SCAN's answer, from one `HMGET` of {@link listFields}
 * and one `HSTRLEN d` per key. Tombstones (a version only, no expiry), entries expired by
 * `nowMs` and keys already seen on this page (SCAN may repeat a key) are
 * left out.
 */
export function listedKeys(
  namespace: string,
  redisKeys: readonly string[],
  replies: readonly (readonly [(Buffer | null)[], number])[],
  nowMs: number,
): ListedKey[] {
  const prefixLength = entryKey(namespace, '').length;
  const seen = new Set<string>();
  const keys: ListedKey[] = [];
  redisKeys.forEach((redisKey, i) => {
    const [[v, e, t], size] = replies[i]!;
    if (!v || !e || seen.has(redisKey)) return;
    const expiresAtMs = Number(e.toString());
    if (expiresAtMs <= nowMs) return;
    seen.add(redisKey);
    keys.push({
      key: redisKey.slice(prefixLength),
      sizeBytes: size,
      expiresAtMs,
      version: Number(v.toString()),
      tags: t && t.length > 0 ? t.toString().split(',') : [],
    });
  });
  return keys;
}

/** Which master owns which slots, as a Cluster client sees it now. */
export interface ClusterTopology {
  /** Short hash of the slot → master map: any change (failover, resharding, a new master) changes it. */
  readonly fingerprint: string;
  /** Masters (`host:port`), sorted: the order a listing walks them in. */
  readonly masters: readonly string[];
}

/**
 * The topology of ioredis's slot table (slot → node keys, master first), or
 * null while some slot has no known master.
 */
export function clusterTopology(slots: readonly (readonly string[] | undefined)[]): ClusterTopology | null {
  const ranges: string[] = [];
  const masters = new Set<string>();
  let start = 0;
  for (let slot = 0; slot < 16384; slot++) {
    const owner = slots[slot]?.[0];
    if (owner === undefined) return null;
    masters.add(owner);
    if (slot === 16383 || slots[slot + 1]?.[0] !== owner) {
      ranges.push(`${start}-${slot}=${owner}`);
      start = slot + 1;
    }
  }
  return {
    fingerprint: createHash('sha256').update(ranges.join(';')).digest('hex').slice(0, 16),
    masters: [...masters].sort(),
  };
}

/** Where a Cluster listing stands: the topology it began under, the master it is on, and that master's SCAN cursor. */
export interface ClusterCursor {
  readonly fingerprint: string;
  readonly master: number;
  readonly scan: string;
}

const clusterCursorPattern = /^([0-9a-f]{16})\.([0-9]{1,4})\.(0|[1-9][0-9]{0,19})$/;

/** Encodes a {@link ClusterCursor} as `fingerprint.master.scan`. */
export function encodeClusterCursor(cursor: ClusterCursor): string {
  return `${cursor.fingerprint}.${cursor.master}.${cursor.scan}`;
}

/**
 * Decodes a Cluster listing cursor against the topology now.
 * @throws CacheError CACHE_004 for a malformed cursor; CACHE_005 (503) when
 *   the topology changed since the listing began (the caller restarts it).
 */
export function decodeClusterCursor(cursor: string, topology: ClusterTopology): ClusterCursor {
  const m = clusterCursorPattern.exec(cursor);
  if (!m) throw badCursor(cursor);
  if (m[1] !== topology.fingerprint) {
    throw new CacheError('CACHE_005', 'Cluster topology changed during the listing; start it again', {
      status: 503,
      details: { cursor, operation: 'list' },
    });
  }
  const master = Number(m[2]);
  if (master >= topology.masters.length) throw badCursor(cursor);
  return { fingerprint: m[1]!, master, scan: m[3]! };
}
