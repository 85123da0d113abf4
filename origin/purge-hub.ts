import type { HelloMessage, PurgeMessage, ResetMessage, StreamMessage } from '../shared/schemas.ts';

/** A purge as the hub receives it; the hub adds `type`, `epoch` and `seq`. */
export type PurgeInput = Omit<PurgeMessage, 'type' | 'epoch' | 'seq'>;

/** Where an edge says it stopped: the epoch and last sequence it applied. */
export interface StreamPosition {
  readonly epoch: string;
  readonly seq: number;
}

/** Parses a `Last-Event-ID` value `epoch:seq`; null when absent or malformed. */
export function parsePosition(value: string | null | undefined): StreamPosition | null {
  if (!value) return null;
  const i = value.lastIndexOf(':');
  if (i <= 0) return null;
  const seq = Number(value.slice(i + 1));
  return Number.isSafeInteger(seq) && seq >= 0 ? { epoch: value.slice(0, i), seq } : null;
}

/** Formats a position for an SSE `id:` line. */
export function formatPosition(epoch: string, seq: number): string {
  return `${epoch}:${seq}`;
}

export type Listener = (message: PurgeMessage) => void;

/**
 * The purge hub's local fan-out: numbers purges with a sequence that
 * increases by one, keeps the last `capacity` of them in a ring buffer, and
 * hands each to every subscribed edge. A reconnecting edge names the last
 * sequence it applied and gets the gap replayed, or a `reset` when the gap
 * has left the buffer or the origin restarted (a new `epoch`).
 *
 * Pure: no I/O; the SSE route in `origin/routes/purge-stream.ts` is its shell.
 */
export class PurgeHub {
  readonly epoch: string;
  readonly capacity: number;
  #seq = 0;
  readonly #ring: (PurgeMessage | undefined)[];
  readonly #listeners = new Set<Listener>();
  readonly #observers = new Set<Listener>();

  /**
   * @param capacity how many purges are kept for replay (≥ 1).
   * @param epoch identifies this hub's lifetime; a fresh random one by default.
   */
  constructor(capacity: number, epoch: string = crypto.randomUUID()) {
    if (!Number.isInteger(capacity) || capacity < 1)
      throw new Error('purge buffer capacity must be a positive integer');
    this.capacity = capacity;
    this.epoch = epoch;
    this.#ring = new Array(capacity);
  }

  /** Sequence of the last purge published (0 before the first). */
  get seq(): number {
    return this.#seq;
  }

  /** Number of edges subscribed now. */
  get subscribers(): number {
    return this.#listeners.size;
  }

  /** Numbers a purge, records it for replay and delivers it to every subscriber. */
  publish(input: PurgeInput): PurgeMessage {
    const message: PurgeMessage = { type: 'purge', epoch: this.epoch, seq: this.#seq + 1, ...input };
    this.#seq = message.seq;
    this.#ring[message.seq % this.capacity] = message;
    for (const observer of this.#observers) observer(message);
    for (const listener of this.#listeners) listener(message);
    return message;
  }

  /**
   * What a (re)connecting edge must apply before live messages: a `hello`,
   * then either the missed purges in order, or a `reset` when they cannot be
   * replayed. `from` is null for an edge with an empty tier.
   */
  catchUp(from: StreamPosition | null): StreamMessage[] {
    const hello: HelloMessage = { type: 'hello', epoch: this.epoch, seq: this.#seq };
    if (from === null) return [hello];
    const reset = (reason: string): ResetMessage => ({ type: 'reset', epoch: this.epoch, seq: this.#seq, reason });
    if (from.epoch !== this.epoch) return [hello, reset('origin restarted (new epoch)')];
    if (from.seq > this.#seq) return [hello, reset('edge is ahead of the origin')];
    const oldest = Math.max(1, this.#seq - this.capacity + 1);
    if (from.seq + 1 < oldest) return [hello, reset(`gap of ${this.#seq - from.seq} purges exceeds the replay buffer`)];
    const missed: StreamMessage[] = [];
    for (let s = from.seq + 1; s <= this.#seq; s++) missed.push(this.#ring[s % this.capacity]!);
    return [hello, ...missed];
  }

  /**
   * Watches every published purge without counting as an edge (metrics,
   * health events); returns the function that stops watching.
   */
  observe(observer: Listener): () => void {
    this.#observers.add(observer);
    return () => this.#observers.delete(observer);
  }

  /** Subscribes an edge to live purges (counted by `subscribers`); returns the unsubscribe function. */
  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
