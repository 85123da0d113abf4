import type { PurgeBus } from '../purge/bus.ts';
import type { OnceRecord } from '../store/store.ts';
import type { NamespaceVersion, NamespaceVersionStore } from './versions.ts';

/**
 * This replica's cache of namespace versions, so a read never pays a round
 * trip for them. Filled from the store at start (`load`), raised by this
 * replica's own flushes at once (before the flush is acknowledged), and by
 * other replicas' flushes as their `flush` purges arrive through the purge
 * bus (whichever bus is configured). Floors only ever rise.
 */
export class NamespaceRegistry {
  readonly #store: NamespaceVersionStore;
  readonly #floors = new Map<string, number>();
  readonly #stopObserving: () => void;
  #retry: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  #loaded = false;
  #loading: Promise<void> | undefined;

  constructor(store: NamespaceVersionStore, bus: Pick<PurgeBus, 'observe'>) {
    this.#store = store;
    this.#stopObserving = bus.observe((message) => {
      if (message.action === 'flush') this.#raise(message.namespace, message.version);
    });
  }

  /** Reads every namespace's current version from the store (call once at start). */
  async load(): Promise<void> {
    for (const [namespace, record] of await this.#store.all()) this.#raise(namespace, record.version);
    this.#loaded = true;
    clearTimeout(this.#retry);
  }

  /**
   * Whether the versions were read from the store since start. Until then a
   * floor may be missing (an origin started during a store outage), so an
   * entry read from the store must wait for {@link ensureLoaded}.
   */
  get loaded(): boolean {
    return this.#loaded;
  }

  /**
   * Resolves once the versions are loaded: at once when they are, else one
   * load attempt shared by every concurrent caller. Rejects with the store's
   * error when the attempt fails.
   */
  ensureLoaded(): Promise<void> {
    if (this.#loaded) return Promise.resolve();
    this.#loading ??= this.load().finally(() => {
      this.#loading = undefined;
    });
    return this.#loading;
  }

  /**
   * Like `load`, but a store that cannot answer now (an outage at start) does
   * not stop the origin: the load is retried every `retryMs` until it works.
   * @param onError told about each failed attempt.
   */
  async loadOrRetry(retryMs: number, onError: (error: unknown) => void): Promise<void> {
    try {
      await this.ensureLoaded();
    } catch (error) {
      if (this.#closed || this.#loaded) return;
      onError(error);
      this.#retry = setTimeout(() => void this.loadOrRetry(retryMs, onError), retryMs);
      this.#retry.unref?.();
    }
  }

  /** The namespace's version as this replica knows it: entries below it are invisible (0 = never flushed). */
  floor(namespace: string): number {
    return this.#floors.get(namespace) ?? 0;
  }

  /** Every flushed namespace's version as this replica knows it. */
  floors(): ReadonlyMap<string, number> {
    return this.#floors;
  }

  /** Bumps the namespace's version in the store and raises the floor here before returning. */
  async bump(namespace: string, by: string, minimum: number, once?: OnceRecord): Promise<NamespaceVersion> {
    const record = await this.#store.bump(namespace, by, minimum, once);
    this.#raise(namespace, record.version);
    return record;
  }

  /** The namespace's versions, newest first. */
  history(namespace: string): Promise<NamespaceVersion[]> {
    return this.#store.history(namespace);
  }

  /** Every flushed namespace's current version. */
  all(): Promise<Map<string, NamespaceVersion>> {
    return this.#store.all();
  }

  /** Stops following the purge bus. */
  close(): void {
    this.#closed = true;
    clearTimeout(this.#retry);
    this.#stopObserving();
  }

  #raise(namespace: string, version: number): void {
    if (version > this.floor(namespace)) this.#floors.set(namespace, version);
  }
}
