import { OnceConflictError, type OnceRecord } from '../store/store.ts';

/**
 * Namespace versions (the origin's "cache versioning"). Flushing a namespace
 * bumps its version in O(1); entries written before the bump become
 * invisible at once and are reclaimed lazily.
 *
 * Design: the namespace version is a **floor on entry versions**. Entry
 * versions are microsecond timestamps `max(previous + 1, now µs)`
 * (`shared/version.ts`, stamped by the store's clock: Redis `TIME`, or the
 * embedded store's clock), so a bump to `max(previous + 1, now µs, minimum)`
 * — `minimum` being one above every version the flushing origin has seen —
 * is above every entry written before the flush, and every entry written
 * after it gets a version at or above it. "entry.version < namespace
 * version → invisible" then needs no per-entry field, no change to the
 * write path and no extra read of the version on each get. Edges apply the
 * same floor (`edge/core/purge-ledger.ts`). The assumption is the same one
 * versions already rest on: the clocks that stamp versions do not step back
 * (on Redis Cluster, the masters' clocks agree to within the time between a
 * flush and a later write).
 */

/** One version of a namespace: when it began and who began it. */
export interface NamespaceVersion {
  readonly namespace: string;
  /** The floor: entries with a lower version are invisible. 0 = never flushed. */
  readonly version: number;
  /** Unix ms of the flush that set it. */
  readonly flushedAtMs: number;
  /** `service_id` of the caller (JWT `sub`), or `anonymous` when authentication is off. */
  readonly by: string;
}

/** History entries kept per namespace (newest first). */
export const namespaceHistoryLimit = 50;

/**
 * Where namespace versions are kept: in process for the embedded store, in a
 * bookkeeping hash on Redis (`origin/store/redis-namespaces.ts`).
 */
export interface NamespaceVersionStore {
  /**
   * Bumps the namespace's version to `max(previous + 1, now µs, minimum)`
   * and records it in the history, atomically.
   * With `once`, the bump
   * and its idempotency record are one script: the same request id and
   * fingerprint again returns the recorded version without bumping.
   * @throws Error when the backing store fails (mapped to CACHE_005 above);
   *   `OnceConflictError` when the id was used by another request.
   */
  bump(namespace: string, by: string, minimum: number, once?: OnceRecord): Promise<NamespaceVersion>;
  /** The current version of every namespace ever flushed. */
  all(): Promise<Map<string, NamespaceVersion>>;
  /** Versions of one namespace, newest first, at most {@link namespaceHistoryLimit}. */
  history(namespace: string): Promise<NamespaceVersion[]>;
}

/** Namespace versions held in this process (the embedded memory store's companion). */
export function memoryNamespaceVersions(now: () => number = Date.now): NamespaceVersionStore {
  const histories = new Map<string, NamespaceVersion[]>();
  // Idempotency records of bumps, by request id and namespace (few: one per hub flush, dropped at their TTL).
  const onceRecords = new Map<string, { fingerprint: string; record: NamespaceVersion; untilMs: number }>();
  return {
    async bump(namespace, by, minimum, once) {
      const id = once && `${once.id}\n${namespace}`;
      if (once && id) {
        const t = now();
        for (const [k, v] of onceRecords) if (v.untilMs <= t) onceRecords.delete(k);
        const seen = onceRecords.get(id);
        if (seen && seen.fingerprint !== once.fingerprint) throw new OnceConflictError(`namespace ${namespace}`);
        if (seen) return seen.record;
      }
      const history = histories.get(namespace) ?? [];
      const t = now();
      const version = Math.max((history[0]?.version ?? 0) + 1, Math.floor(t * 1000), minimum);
      const record = { namespace, version, flushedAtMs: t, by };
      histories.set(namespace, [record, ...history].slice(0, namespaceHistoryLimit));
      if (once && id) onceRecords.set(id, { fingerprint: once.fingerprint, record, untilMs: t + once.ttlMs });
      return record;
    },
    async all() {
      return new Map([...histories].map(([namespace, history]) => [namespace, history[0]!]));
    },
    async history(namespace) {
      return [...(histories.get(namespace) ?? [])];
    },
  };
}
