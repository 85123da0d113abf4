import type { PurgeMessage, PurgePosition, ResetMessage } from '../../shared/schemas.ts';
import type {
  PublishedPurge,
  PurgeBus,
  PurgeBusHealth,
  PurgeBusListener,
  PurgeBusSubscription,
  PurgeInput,
  PurgeReadResult,
} from './bus.ts';
import { formatPosition, parsePosition } from './position.ts';

/** Log identity of every in-process bus: the log lives in one process, so its incarnation tells lifetimes apart. */
export const inProcessLogId = 'in-process';

export interface InProcessPurgeBusOptions {
  /** How many purges are kept for replay (≥ 1), `PURGE_BUFFER_SIZE`. */
  readonly retainedEntries: number;
  /** This log's lifetime; a fresh random one by default (a restarted origin is a new incarnation). */
  readonly incarnation?: string;
}

/**
 * The purge bus of a single origin replica (memory store, or any store
 * until a shared log exists): the log is a ring buffer in this process.
 * Offsets are integers that grow by one per purge; the incarnation is a
 * random id per process, so an edge reconnecting after a restart gets a
 * `reset`. Publishing is synchronous underneath: a purge is delivered to
 * every subscriber before `publish` resolves.
 */
export class InProcessPurgeBus implements PurgeBus {
  readonly retainedEntries: number;
  readonly #incarnation: string;
  #seq = 0;
  readonly #ring: (PurgeMessage | undefined)[];
  readonly #listeners = new Set<PurgeBusListener>();
  readonly #observers = new Set<(message: PurgeMessage) => void>();

  constructor(options: InProcessPurgeBusOptions) {
    const { retainedEntries } = options;
    if (!Number.isInteger(retainedEntries) || retainedEntries < 1)
      throw new Error('purge buffer capacity must be a positive integer');
    this.retainedEntries = retainedEntries;
    this.#incarnation = options.incarnation ?? crypto.randomUUID();
    this.#ring = new Array(retainedEntries);
  }

  get subscribers(): number {
    return this.#listeners.size;
  }

  async publish(input: PurgeInput): Promise<PublishedPurge> {
    const seq = this.#seq + 1;
    const message: PurgeMessage = { type: 'purge', position: this.#position(seq), ...input };
    this.#seq = seq;
    this.#ring[seq % this.retainedEntries] = message;
    for (const observer of this.#observers) observer(message);
    for (const listener of this.#listeners) listener(message);
    return { message, seq };
  }

  subscribe(from: PurgePosition | null, listener: PurgeBusListener): PurgeBusSubscription {
    const head = this.#position(this.#seq);
    // Replay and registration happen in one synchronous step, so no purge falls between them.
    for (const event of this.#catchUp(from)) listener(event);
    this.#listeners.add(listener);
    return { head, close: () => this.#listeners.delete(listener) };
  }

  async read(after: PurgePosition | null, limit: number): Promise<PurgeReadResult> {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError('read limit must be a positive integer');
    const events = this.#catchUp(after);
    const first = events[0];
    const reset = first?.type === 'reset' ? first : null;
    const entries = reset ? [] : (events as PurgeMessage[]).slice(0, limit);
    const { position: head, tailLive, tailAgeMs } = this.health();
    return { entries, reset, head, tailLive, tailAgeMs };
  }

  observe(observer: (message: PurgeMessage) => void): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  health(): PurgeBusHealth {
    // The log is this process's memory: the tail is the log, always live.
    return { position: this.#position(this.#seq), seq: this.#seq, tailLive: true, tailAgeMs: 0 };
  }

  async close(): Promise<void> {
    this.#listeners.clear();
    this.#observers.clear();
  }

  #position(seq: number): PurgePosition {
    return formatPosition({ log: inProcessLogId, incarnation: this.#incarnation, offset: String(seq) });
  }

  /** The purges after `from`, or a reset when they cannot be replayed. */
  #catchUp(from: PurgePosition | null): (PurgeMessage | ResetMessage)[] {
    if (from === null) return [];
    const reset = (reason: string): ResetMessage[] => [{ type: 'reset', position: this.#position(this.#seq), reason }];
    const position = parsePosition(from);
    if (position === null || position.log !== inProcessLogId) return reset('position is from another purge log');
    if (position.incarnation !== this.#incarnation) return reset('origin restarted (new incarnation of the purge log)');
    const offset = Number(position.offset);
    if (!Number.isSafeInteger(offset) || offset < 0) return reset('position is not an offset of this purge log');
    if (offset > this.#seq) return reset('position is ahead of the purge log');
    const oldest = Math.max(1, this.#seq - this.retainedEntries + 1);
    if (offset + 1 < oldest) return reset(`gap of ${this.#seq - offset} purges exceeds the replay buffer`);
    const missed: PurgeMessage[] = [];
    for (let s = offset + 1; s <= this.#seq; s++) missed.push(this.#ring[s % this.retainedEntries]!);
    return missed;
  }
}
