import { CacheError } from './errors.ts';
import { maxTtlSeconds } from './keys.ts';

/**
 * The entry lifecycle, as plain functions of an entry and a clock (no I/O):
 * an entry is fresh until `expiresAtMs`, then may be served stale within its
 * writer's grace windows (RFC 5861): `stale-while-revalidate` (any read) and
 * `stale-if-error` (only when the origin cannot answer). A soft purge ends
 * the fresh lifetime early and keeps the windows. Times are Unix ms.
 */

/** The lifecycle fields of an entry (a subset of `ReadEntry`); absent windows are 0. */
export interface Lifecycle {
  readonly createdAtMs: number;
  /** End of the fresh lifetime, Unix ms. */
  readonly expiresAtMs: number;
  /** `stale-while-revalidate` window after `expiresAtMs`, ms (RFC 5861 §3). */
  readonly staleWhileRevalidateMs?: number | undefined;
  /** `stale-if-error` window after `expiresAtMs`, ms (RFC 5861 §4). */
  readonly staleIfErrorMs?: number | undefined;
  /** When a soft purge marked the entry stale, Unix ms; absent when never soft-purged. */
  readonly softPurgedAtMs?: number | undefined;
}

/** `X-Cache-Stale-Reason` values: why a stale answer was given. */
export type StaleReason = 'revalidating' | 'error' | 'soft-purge';

/** Where an entry stands at a moment. */
export type Freshness = 'fresh' | 'stale' | 'error-only' | 'gone';

/** The grace windows a write asks for, ms. */
export interface GraceWindows {
  readonly staleWhileRevalidateMs: number;
  readonly staleIfErrorMs: number;
}

/** Longest grace window a write may ask for, seconds (the longest TTL). */
export const maxGraceSeconds = maxTtlSeconds;

/** The longer of the two windows, ms: how long a store keeps an entry past `expiresAtMs`. */
export function graceMs(entry: Pick<Lifecycle, 'staleWhileRevalidateMs' | 'staleIfErrorMs'>): number {
  return Math.max(entry.staleWhileRevalidateMs ?? 0, entry.staleIfErrorMs ?? 0);
}

/** Unix ms after which no one may serve the entry, stale or not: expiry plus the longer window. */
export function keepUntilMs(entry: Lifecycle): number {
  return entry.expiresAtMs + graceMs(entry);
}

/**
 * Where `entry` stands at `nowMs`: `fresh` before its expiry, `stale` within
 * `stale-while-revalidate`, `error-only` past that but within
 * `stale-if-error` (served only when the origin fails), `gone` after both.
 */
export function freshness(entry: Lifecycle, nowMs: number): Freshness {
  if (nowMs < entry.expiresAtMs) return 'fresh';
  const past = nowMs - entry.expiresAtMs;
  if (past < (entry.staleWhileRevalidateMs ?? 0)) return 'stale';
  if (past < (entry.staleIfErrorMs ?? 0)) return 'error-only';
  return 'gone';
}

/** Whole seconds since the entry was written at `nowMs` (`Age`, RFC 9111 §5.1); never negative. */
export function ageSeconds(entry: Pick<Lifecycle, 'createdAtMs'>, nowMs: number): number {
  return Math.max(0, Math.floor((nowMs - entry.createdAtMs) / 1000));
}

/** Why a stale entry is stale: `soft-purge` when a soft purge ended it, else `revalidating`. */
export function staleReasonOf(entry: Lifecycle): StaleReason {
  return entry.softPurgedAtMs !== undefined ? 'soft-purge' : 'revalidating';
}

/** An entry ended by a soft purge at `nowMs`: never fresh again, windows kept (Fastly's soft purge). */
export function softPurged<E extends Lifecycle>(entry: E, nowMs: number): E {
  return { ...entry, expiresAtMs: Math.min(entry.expiresAtMs, nowMs), softPurgedAtMs: nowMs };
}

/** What a write's `Cache-Control` asks for; seconds. */
export interface WriteCacheControl {
  readonly maxAgeSeconds?: number;
  readonly staleWhileRevalidateSeconds?: number;
  readonly staleIfErrorSeconds?: number;
}

const directivePattern = /^([a-z-]+)(?:=("?)([0-9]{1,12})\2)?$/;

/**
 * Parses a write's `Cache-Control` (RFC 9111 §5.2, RFC 5861): `max-age`,
 * `stale-while-revalidate`, `stale-if-error`, in whole seconds; other
 * directives are ignored, as RFC 9111 §5.2 asks of unknown ones.
 * @throws CacheError CACHE_004 for a malformed or out-of-range value.
 */
export function parseWriteCacheControl(header: string | undefined | null): WriteCacheControl {
  if (!header) return {};
  const out: { maxAgeSeconds?: number; staleWhileRevalidateSeconds?: number; staleIfErrorSeconds?: number } = {};
  for (const part of header.toLowerCase().split(',')) {
    const directive = part.trim();
    if (directive === '') continue;
    const name = directive.split('=')[0]!;
    const field =
      name === 'max-age'
        ? 'maxAgeSeconds'
        : name === 'stale-while-revalidate'
          ? 'staleWhileRevalidateSeconds'
          : name === 'stale-if-error'
            ? 'staleIfErrorSeconds'
            : null;
    if (field === null) continue;
    const match = directivePattern.exec(directive);
    const seconds = match?.[3] === undefined ? Number.NaN : Number(match[3]);
    const min = field === 'maxAgeSeconds' ? 1 : 0;
    if (!Number.isInteger(seconds) || seconds < min || seconds > maxGraceSeconds) {
      throw new CacheError(
        'CACHE_004',
        `Cache-Control ${name} must be a whole number of seconds, ${min} to ${maxGraceSeconds}`,
        {
          details: { cache_control: header },
        },
      );
    }
    out[field] = seconds;
  }
  return out;
}

/**
 * The TTL and grace windows of a write from `?ttl=` (or a batch's `ttl`) and
 * its `Cache-Control`: `max-age` is the TTL when `ttl` is absent.
 * @throws CacheError CACHE_004 when both are given and differ.
 */
export function writeLifetime(
  ttlSeconds: number | undefined,
  control: WriteCacheControl,
): { ttlSeconds: number | undefined; grace: GraceWindows } {
  if (ttlSeconds !== undefined && control.maxAgeSeconds !== undefined && ttlSeconds !== control.maxAgeSeconds) {
    throw new CacheError('CACHE_004', 'ttl and Cache-Control max-age differ', {
      details: { ttl: ttlSeconds, max_age: control.maxAgeSeconds },
    });
  }
  return {
    ttlSeconds: ttlSeconds ?? control.maxAgeSeconds,
    grace: {
      staleWhileRevalidateMs: (control.staleWhileRevalidateSeconds ?? 0) * 1000,
      staleIfErrorMs: (control.staleIfErrorSeconds ?? 0) * 1000,
    },
  };
}

/**
 * The `Cache-Control` of a read (RFC 9111 §5.2.2.1, RFC 5861): `max-age` is
 * the entry's fresh lifetime counted from its creation, so `max-age` − `Age`
 * is the fresh time that remains (RFC 9111 §4.2.3; 0 or less when stale);
 * the grace windows follow when the writer gave them.
 * @param ageSeconds the `Age` sent with it.
 */
export function readCacheControl(entry: Lifecycle, ageSeconds: number, nowMs: number): string {
  // Fresh: Age + the whole seconds left, so max-age − Age is exact; stale: the lifetime, which is ≤ Age.
  const maxAge =
    nowMs < entry.expiresAtMs
      ? ageSeconds + Math.floor((entry.expiresAtMs - nowMs) / 1000)
      : Math.max(0, Math.floor((entry.expiresAtMs - entry.createdAtMs) / 1000));
  const parts = [`max-age=${maxAge}`];
  const swr = entry.staleWhileRevalidateMs ?? 0;
  const sie = entry.staleIfErrorMs ?? 0;
  if (swr > 0) parts.push(`stale-while-revalidate=${Math.floor(swr / 1000)}`);
  if (sie > 0) parts.push(`stale-if-error=${Math.floor(sie / 1000)}`);
  return parts.join(', ');
}

/**
 * The origin-to-edge header value of an entry's grace (`X-Cache-Grace`):
 * `swr=<ms>;sie=<ms>`, exact where `Cache-Control` rounds to seconds.
 */
export function formatGrace(entry: Pick<Lifecycle, 'staleWhileRevalidateMs' | 'staleIfErrorMs'>): string {
  return `swr=${entry.staleWhileRevalidateMs ?? 0};sie=${entry.staleIfErrorMs ?? 0}`;
}

/** Parses {@link formatGrace}'s value; absent or malformed gives no grace. */
export function parseGrace(value: string | null | undefined): GraceWindows {
  const match = value ? /^swr=([0-9]{1,15});sie=([0-9]{1,15})$/.exec(value) : null;
  return {
    staleWhileRevalidateMs: match ? Number(match[1]) : 0,
    staleIfErrorMs: match ? Number(match[2]) : 0,
  };
}

/** Only the grace fields worth carrying: windows above 0 (keeps entries without grace unchanged in shape). */
export function graceFields(grace: GraceWindows | undefined): Partial<GraceWindows> {
  if (!grace) return {};
  return {
    ...(grace.staleWhileRevalidateMs > 0 ? { staleWhileRevalidateMs: grace.staleWhileRevalidateMs } : {}),
    ...(grace.staleIfErrorMs > 0 ? { staleIfErrorMs: grace.staleIfErrorMs } : {}),
  };
}

/** Longest `Prefer: wait` honoured, seconds. */
export const maxPreferWaitSeconds = 10;

/** What a read prefers (RFC 7240 `Prefer`): to be offered the refresh lease, and how long to wait for another's. */
export interface ReadPreferences {
  /** `lease` (or any `wait`): the caller refreshes the key when handed its lease. */
  readonly lease: boolean;
  /** `wait=<seconds>`: whole seconds, capped at {@link maxPreferWaitSeconds}; 0 when absent. */
  readonly waitSeconds: number;
  /** `Cache-Control: no-cache` on the read (RFC 9111 §5.2.1.4): answer only what the store confirms now. */
  readonly strong?: boolean;
}

/** True when a read's `Cache-Control` holds `no-cache` (RFC 9111 §5.2.1.4). */
export function requestsNoCache(cacheControl: string | undefined | null): boolean {
  return (cacheControl ?? '').split(',').some((d) => d.trim().toLowerCase() === 'no-cache');
}

/**
 * Parses a read's `Prefer` (RFC 7240): `lease` asks to be offered the key's
 * refresh lease, `wait=<seconds>` (§4.3) to wait on a full miss for the
 * holder's write, and implies `lease`. Preferences the server does not
 * understand, and malformed ones, are ignored (§2).
 */
export function readPreferences(prefer: string | undefined | null): ReadPreferences {
  let lease = false;
  let waitSeconds = 0;
  for (const part of (prefer ?? '').split(/[,;]/)) {
    const token = part.trim().toLowerCase();
    if (token === 'lease') lease = true;
    const match = /^wait\s*=\s*"?([0-9]{1,6})"?$/.exec(token);
    if (match) {
      lease = true;
      waitSeconds = Math.min(Number(match[1]), maxPreferWaitSeconds);
    }
  }
  return { lease, waitSeconds };
}

/** The `Prefer` an edge sends the origin for a reader's preferences; undefined when there are none. */
export function formatPreferences(preferences: Pick<ReadPreferences, 'lease' | 'waitSeconds'>): string | undefined {
  if (preferences.waitSeconds > 0) return `lease, wait=${preferences.waitSeconds}`;
  return preferences.lease ? 'lease' : undefined;
}

/** A refresh lease token as it travels in `X-Cache-Lease`: printable, bounded. */
export function isLeaseToken(value: string): boolean {
  return /^[A-Za-z0-9._:-]{1,128}$/.test(value);
}
