import { LRUCache } from 'lru-cache';
import { storageKey } from '../../shared/keys.ts';
import type { PurgeMessage } from '../../shared/schemas.ts';

export interface PurgeFloorsOptions {
  /** Per-key floors kept (LRU); a forgotten one raises the global floor. Default 100 000. */
  readonly maxKeys?: number;
  /** Per-tag and per-prefix floors kept each (LRU); a forgotten one raises the global floor. Default 1 024. */
  readonly maxPatterns?: number;
}

/**
 * The version floors a tier that cannot enumerate its entries (a shared
 * tier, `SharedEdgeTier`) checks on every read: an entry is accepted only
 * if its version is at least every purge this instance applied to its key,
 * its tags, a prefix of its key and its namespace's last flush (a purge
 * drops versions *below* its own, as the memory tier does; a flush's version
 * is above every entry written before it). Memory is bounded: when a floor is forgotten,
 * the global floor rises to its version, so forgetting only ever refuses
 * more (versions grow with the clock, `shared/version.ts`, so this refuses
 * entries written before the forgotten purge, no more).
 *
 * Pure: no clock, no I/O.
 */
export class PurgeFloors {
  #global = 0;
  readonly #keys: LRUCache<string, number>;
  readonly #tags: LRUCache<string, number>;
  readonly #prefixes: LRUCache<string, { namespace: string; prefix: string; version: number }>;
  /** Namespace flushes: every entry of the namespace below the namespace's new version. */
  readonly #namespaces: LRUCache<string, number>;

  constructor(options: PurgeFloorsOptions = {}) {
    const forget = (version: number, reason: string) => {
      if (reason === 'evict') this.#global = Math.max(this.#global, version);
    };
    this.#keys = new LRUCache({ max: options.maxKeys ?? 100_000, dispose: (v, _k, r) => forget(v, r) });
    this.#tags = new LRUCache({ max: options.maxPatterns ?? 1_024, dispose: (v, _k, r) => forget(v, r) });
    this.#prefixes = new LRUCache({
      max: options.maxPatterns ?? 1_024,
      dispose: (v, _k, r) => forget(v.version, r),
    });
    this.#namespaces = new LRUCache({ max: options.maxPatterns ?? 1_024, dispose: (v, _k, r) => forget(v, r) });
  }

  /** Records a purge's floors (each only ever rises). */
  record(
    message: Pick<PurgeMessage, 'namespace' | 'keys' | 'tags' | 'prefix' | 'version'> & {
      readonly action?: PurgeMessage['action'];
    },
  ): void {
    const raise = (map: LRUCache<string, number>, k: string) => map.set(k, Math.max(map.get(k) ?? 0, message.version));
    if (message.action === 'flush') raise(this.#namespaces, message.namespace);
    for (const key of message.keys) raise(this.#keys, storageKey(message.namespace, key));
    for (const tag of message.tags) raise(this.#tags, storageKey(message.namespace, tag));
    if (message.prefix !== null) {
      const k = storageKey(message.namespace, message.prefix);
      const previous = this.#prefixes.get(k)?.version ?? 0;
      this.#prefixes.set(k, {
        namespace: message.namespace,
        prefix: message.prefix,
        version: Math.max(previous, message.version),
      });
    }
  }

  /** Whether an entry at `version` of this key (with these tags) is at least every recorded floor. */
  admits(namespace: string, key: string, version: number, tags: readonly string[]): boolean {
    if (version < this.#global) return false;
    if (version < (this.#namespaces.get(namespace) ?? 0)) return false;
    if (version < (this.#keys.get(storageKey(namespace, key)) ?? 0)) return false;
    for (const tag of tags) if (version < (this.#tags.get(storageKey(namespace, tag)) ?? 0)) return false;
    for (const p of this.#prefixes.values()) {
      if (p.namespace === namespace && version < p.version && key.startsWith(p.prefix)) return false;
    }
    return true;
  }
}
