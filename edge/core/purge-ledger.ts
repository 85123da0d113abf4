import { LRUCache } from 'lru-cache';
import { storageKey } from '../../shared/keys.ts';
import type { PurgeMessage } from '../../shared/schemas.ts';

/** What a fill remembers from when it started. */
export interface FillTicket {
  readonly generation: number;
  readonly resets: number;
  readonly forgotten: number;
}

interface PatternPurge {
  readonly generation: number;
  readonly namespace: string;
  readonly tags: ReadonlySet<string>;
  readonly prefix: string | null;
  readonly version: number;
}

export interface PurgeLedgerOptions {
  /** Per-key purge records kept (LRU); older ones are forgotten conservatively. */
  maxKeys?: number;
  /** Tag and prefix purges kept. */
  maxPatterns?: number;
}

/**
 * Enforces the no-stale-set rule at an edge (ARCHITECTURE.md §4): a fill
 * that started before a purge of its key must not be stored unless what it
 * fetched is at least as new as the purge (the race that memcache leases
 * solve, Nishtala et al., NSDI 2013 §3.2.1).
 *
 * Every purge bumps a generation. A fill takes a ticket when it starts; when
 * it returns, `admit` refuses it when a remembered purge of the key has a
 * higher version (whenever it arrived); otherwise: no purge since → admit; a
 * reset since → refuse; else refuse iff a tag or prefix purge since then
 * covers the key with a higher version. A namespace flush (`action: 'flush'`)
 * sets a namespace-wide floor that is kept for good: any fill below it is
 * refused, however late it arrives. When records the check needs were forgotten (bounded
 * memory), it refuses — a refused fill only costs a miss, never a stale read.
 *
 * Pure: no clock, no I/O.
 */
export class PurgeLedger {
  #generation = 0;
  #resets = 0;
  #forgotten = 0;
  readonly #keys: LRUCache<string, { version: number; generation: number }>;
  readonly #patterns: PatternPurge[] = [];
  readonly #maxPatterns: number;
  /** Namespace-wide floors from flushes: never forgotten (one number per flushed namespace). */
  readonly #floors = new Map<string, number>();

  constructor(options: PurgeLedgerOptions = {}) {
    this.#keys = new LRUCache({
      max: options.maxKeys ?? 100_000,
      dispose: (_value, _key, reason) => {
        if (reason === 'evict') this.#forgotten++;
      },
    });
    this.#maxPatterns = options.maxPatterns ?? 1_024;
  }

  /** Call when a fill (or write-through) starts. */
  begin(): FillTicket {
    return { generation: this.#generation, resets: this.#resets, forgotten: this.#forgotten };
  }

  /** Records a purge before it is applied to the tier. */
  record(
    message: Pick<PurgeMessage, 'namespace' | 'keys' | 'tags' | 'prefix' | 'version'> & {
      readonly action?: PurgeMessage['action'];
    },
  ): void {
    this.#generation++;
    if (message.action === 'flush') {
      this.#floors.set(message.namespace, Math.max(this.floor(message.namespace), message.version));
    }
    for (const key of message.keys) {
      const k = storageKey(message.namespace, key);
      const previous = this.#keys.get(k);
      this.#keys.set(k, { version: Math.max(previous?.version ?? 0, message.version), generation: this.#generation });
    }
    if (message.tags.length > 0 || message.prefix !== null) {
      this.#patterns.push({
        generation: this.#generation,
        namespace: message.namespace,
        tags: new Set(message.tags),
        prefix: message.prefix,
        version: message.version,
      });
      if (this.#patterns.length > this.#maxPatterns) {
        this.#patterns.shift();
        this.#forgotten++;
      }
    }
  }

  /** Records a tier reset: every fill in flight is refused. */
  reset(): void {
    this.#generation++;
    this.#resets++;
  }

  /** The namespace's flush floor: copies below it are invisible (0 when never flushed). */
  floor(namespace: string): number {
    return this.#floors.get(namespace) ?? 0;
  }

  /** May a fill that took `ticket` store `version` of this key (with these tags)? */
  admit(ticket: FillTicket, namespace: string, key: string, version: number, tags: readonly string[]): boolean {
    // A flush outranks every copy below the namespace's floor, whenever the fill began.
    if (version < this.floor(namespace)) return false;
    // A remembered purge of this key outranks any older copy, whenever the fill began
    // (a lagging replica or a fallback tier can answer with an old version).
    const record = this.#keys.peek(storageKey(namespace, key));
    if (record && record.version > version) return false;
    if (ticket.generation === this.#generation) return true;
    if (ticket.resets !== this.#resets || ticket.forgotten !== this.#forgotten) return false;
    for (let i = this.#patterns.length - 1; i >= 0; i--) {
      const p = this.#patterns[i]!;
      if (p.generation <= ticket.generation) break;
      if (p.namespace !== namespace || p.version <= version) continue;
      if ((p.prefix !== null && key.startsWith(p.prefix)) || tags.some((t) => p.tags.has(t))) return false;
    }
    return true;
  }
}
