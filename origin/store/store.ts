/**
 * The origin's storage seam. One interface, one small file per driver
 * (memory, Redis standalone, Redis Cluster), one conformance suite in
 * `test/integration/store-conformance.ts` that every driver must pass.
 */

import type { ReadEntry } from '../../shared/http.ts';

/** A stored value and its metadata: the entry a read answers with (`shared/http.ts`). */
export type StoredEntry = ReadEntry;

/** What a write supplies; the store assigns version and times. */
export interface EntryInput {
  readonly value: Uint8Array;
  readonly contentType: string;
  /** Time to live, milliseconds (> 0). */
  readonly ttlMs: number;
  readonly tags: readonly string[];
}

/** Which stored entries a purge removes, within one namespace. */
export interface PurgeSelector {
  readonly keys: readonly string[];
  readonly tags: readonly string[];
  /** Key prefix, or null. */
  readonly prefix: string | null;
}

/** Result of a delete or purge: how many entries went, and the version floor it set. */
export interface RemovalResult {
  readonly removed: number;
  /**
   * A version strictly greater than every version removed: edges drop any
   * copy below it.
   */
  readonly version: number;
}

/** The storage kinds, also used as `X-Cache-Tier` of an origin hit. */
export type StoreKind = 'memory' | 'redis';

export interface Store {
  /** `memory` for the embedded store, `redis` for standalone and Cluster. */
  readonly kind: StoreKind;
  /** The entry, or null when absent or expired. */
  get(namespace: string, key: string): Promise<StoredEntry | null>;
  /** Entries found, by key; absent and expired keys are left out. */
  getMany(namespace: string, keys: readonly string[]): Promise<Map<string, StoredEntry>>;
  /** Writes one entry and returns it with its new version. */
  set(namespace: string, key: string, input: EntryInput): Promise<StoredEntry>;
  /** Writes several entries; returns them, by key, with their new versions. */
  setMany(namespace: string, entries: ReadonlyMap<string, EntryInput>): Promise<Map<string, StoredEntry>>;
  /** Removes one entry. `removed` is 0 when it was absent. */
  delete(namespace: string, key: string): Promise<RemovalResult>;
  /** Removes the entries a selector names: keys, tag members and keys with the prefix. */
  purge(namespace: string, selector: PurgeSelector): Promise<RemovalResult>;
  /** Resolves when the backing server answers; rejects otherwise. */
  ping(): Promise<void>;
  /** Releases connections. */
  close(): Promise<void>;
}
