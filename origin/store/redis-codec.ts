import { type GraceWindows, graceFields, keepUntilMs } from '../../shared/lifecycle.ts';
import type { EntryInput, StoredEntry } from './store.ts';

/** Redis key of an entry. Namespaces cannot hold `:`, so pairs never collide. */
export function entryKey(namespace: string, key: string): string {
  return `strata:e:${namespace}:${key}`;
}

/**
 * Redis key of a change's idempotency record (`OnceRecord` in `store.ts`):
 * one per request id and entry. On a Cluster `slotTag` is a hash tag of the
 * entry key's slot, so the record and the entry are written by one script.
 */
export function onceKey(entry: string, id: string, slotTag?: string): string {
  return slotTag === undefined ? `strata:once:${id}:${entry}` : `strata:once:{${slotTag}}:${id}:${entry}`;
}

/** Redis key of a tag's member set. */
export function tagSetKey(namespace: string, tag: string): string {
  return `strata:t:${namespace}:${tag}`;
}

/**
 * Decodes an HMGET reply of `entryFields` into an entry, or null when absent or past its grace at `nowMs`.
 * Built field by field rather than by spreading: it runs on every read, and
 * an absent grace or lifecycle field stays absent (not `undefined`).
 */
export function decodeEntry(fields: (Buffer | null)[], nowMs: number): StoredEntry | null {
  const [v, d, ct, c, e, t, w, i, p, r] = fields;
  if (!v || !d || !e) return null;
  const expiresAtMs = Number(e.toString());
  const entry: { -readonly [F in keyof StoredEntry]: StoredEntry[F] } = {
    value: new Uint8Array(d.buffer, d.byteOffset, d.byteLength),
    contentType: ct?.toString() ?? 'application/octet-stream',
    version: Number(v.toString()),
    createdAtMs: Number(c?.toString() ?? '0'),
    expiresAtMs,
    tags: t && t.length > 0 ? t.toString().split(',') : [],
  };
  if (w) entry.staleWhileRevalidateMs = Number(w.toString());
  if (i) entry.staleIfErrorMs = Number(i.toString());
  if (p) entry.softPurgedAtMs = Number(p.toString());
  if (r) entry.refreshMs = Number(r.toString());
  return keepUntilMs(entry) <= nowMs ? null : entry;
}

/** The grace arguments of the set scripts: stale-while-revalidate ms, stale-if-error ms. */
export function graceArgs(grace: Partial<GraceWindows> | undefined): [number, number] {
  return [grace?.staleWhileRevalidateMs ?? 0, grace?.staleIfErrorMs ?? 0];
}

/**
 * The entry a write stored, from its input and the set script's reply
 * `[version, createdAtMs]` (see `setScript`); expiry is created + TTL, as the
 * script sets it.
 */
export function storedEntry(input: EntryInput, reply: readonly [number | string, number | string]): StoredEntry {
  const createdAtMs = Number(reply[1]);
  return {
    value: input.value,
    contentType: input.contentType,
    version: Number(reply[0]),
    createdAtMs,
    expiresAtMs: createdAtMs + input.ttlMs,
    tags: [...input.tags],
    ...graceFields(input.grace),
  };
}
