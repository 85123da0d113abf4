import type { PurgeMessage, PurgePosition, ResetMessage } from '../../shared/schemas.ts';

/**
 * The purge bus seam (ARCHITECTURE.md §4 and §6, STYLE.md §1): the origin
 * side of the purge log. `CacheService` publishes every acknowledged change
 * to it; the purge stream route (and later the poll route) subscribes edges
 * to it. Implementations: `in-process-bus.ts` (one replica, memory). A
 * region's log on its Redis Stream plugs in here unchanged: `publish`
 * resolves once the entry is in the log, `subscribe` tails it.
 *
 * Positions are opaque strings ({@link PurgePosition}); only the bus that
 * issued one compares it.
 */
export interface PurgeBus {
  /**
   * Appends one purge and resolves once the bus has accepted it (for a
   * durable log: once it is in the log), with the position it got.
   * Subscribers on this process see it after that, in log order.
   * @throws Error when the log cannot take the entry; the change must then
   *   not be reported as acknowledged.
   */
  publish(input: PurgeInput, options?: PublishOptions): Promise<PublishedPurge>;
  /**
   * Optional, for a log several processes share: appends an *intent* for a
   * change about to reach the store, before the store write, and resolves to
   * the intent's id once it is in the log. The change's purge then closes it
   * (`publish(input, { closes: id })`). An intent no purge closes within the
   * log's intent timeout (its writer died, or its store write failed) is
   * handed to the recovery set with {@link PurgeBus.recoverIntentsWith} by
   * every replica that sees it: the crash window between a store write and
   * its log append (docs/architecture.md, "A crash between the store write
   * and the log append").
   * @throws Error when the log cannot take the intent.
   */
  intend?(scope: PurgeScope): Promise<string>;
  /**
   * Optional, with `intend`: sets what recovers an abandoned intent (purge
   * the keys in scope at the store's versions, closing the intent). Until set,
   * abandoned intents wait.
   */
  recoverIntentsWith?(recover: (scope: PurgeScope, intentId: string) => Promise<void>): void;
  /**
   * Subscribes from a position: `null` starts at the head (live entries
   * only); a position of this log's current incarnation that the log still
   * holds gets the entries after it, in order, then live ones; any other
   * position (another log or incarnation, older than what is kept, ahead of
   * the head, malformed) gets one `reset` carrying the position to continue
   * from, then live entries. Events reach `listener` in log order, each once.
   */
  subscribe(from: PurgePosition | null, listener: PurgeBusListener): PurgeBusSubscription;
  /**
   * Reads one page of the log after a position, for edges that poll instead
   * of holding a stream (`GET /api/v1/purges?after=`). `after = null` reads
   * nothing and tells where the head is. A position this log cannot place
   * (another log or incarnation, older than what is kept, ahead of the head,
   * malformed) answers `reset` with no entries; the reader drops its tier
   * and continues from `reset.position`. At most `limit` entries (≥ 1) come
   * back, oldest first; the reader continues from the last one's position.
   */
  read(after: PurgePosition | null, limit: number): Promise<PurgeReadResult>;
  /**
   * Watches every entry this process relays without counting as a
   * subscriber (metrics). Returns the function that stops watching.
   */
  observe(observer: (message: PurgeMessage) => void): () => void;
  /** The tail's state, for heartbeats, `/ready` and metrics. */
  health(): PurgeBusHealth;
  /** Subscriptions open on this process now (edges connected here). */
  readonly subscribers: number;
  /**
   * About how many entries the log keeps for replay (`PURGE_BUFFER_SIZE`): a
   * subscriber further behind than this gets a `reset`. Also bounds what a
   * stream may queue for one slow edge.
   */
  readonly retainedEntries: number;
  /**
   * Optional, for a log held outside this process: hands a purge to this
   * process's subscribers only, when the log cannot take it and the change
   * was accepted degraded (the log gets it at write-back).
   */
  relayLocally?(input: PurgeInput): void;
  /** Ends every subscription and releases connections. Idempotent. */
  close(): Promise<void>;
}

/** A purge as the bus receives it; the bus adds `type` and `position`. */
export type PurgeInput = Omit<PurgeMessage, 'type' | 'position'>;

/**
 * What a change touches: the part of a purge known before the store write (for an intent).
 * `origin_region` is set when the change applies another region's invalidation: the intent keeps it, so a
 * recovered intent's purge is not forwarded back to that region as one of this region's own.
 */
export type PurgeScope = Pick<PurgeInput, 'namespace' | 'keys' | 'tags' | 'prefix'> & {
  readonly origin_region?: string | undefined;
};

/** Options of {@link PurgeBus.publish}. */
export interface PublishOptions {
  /** The id of the intent this purge commits (from {@link PurgeBus.intend}). */
  readonly closes?: string | null;
}

/** What `publish` resolves to. */
export interface PublishedPurge {
  /** The entry as subscribers receive it. */
  readonly message: PurgeMessage;
  /**
   * The entry's number in this incarnation of the log, one more than the
   * previous entry's; shown to callers (`seq` in `POST /api/v1/purge`). Not a
   * position: use `message.position` to resume.
   */
  readonly seq: number;
}

/** What a subscriber receives: purges, or a `reset` (drop everything, continue from its position). */
export type PurgeBusEvent = PurgeMessage | ResetMessage;

export type PurgeBusListener = (event: PurgeBusEvent) => void;

/** An open subscription. */
export interface PurgeBusSubscription {
  /** The log's head when the subscription began: where a subscriber from `null` continues. */
  readonly head: PurgePosition;
  /** Stops delivery. Idempotent. */
  close(): void;
}

/** One page of the log, from {@link PurgeBus.read}. */
export interface PurgeReadResult {
  /** Entries after the position asked for, oldest first; empty with a reset. */
  readonly entries: readonly PurgeMessage[];
  /** Non-null when the position could not be placed: drop everything, continue from `reset.position`. */
  readonly reset: ResetMessage | null;
  /** The log's head when the page was read. */
  readonly head: PurgePosition;
  /** Whether this process's tail was following the log when the page was read. */
  readonly tailLive: boolean;
  /** Milliseconds since the tail last confirmed it was caught up. */
  readonly tailAgeMs: number;
}

/** The state of this process's tail of the log (ARCHITECTURE.md §6, leases). */
export interface PurgeBusHealth {
  /** Position of the last entry relayed to subscribers (the head, for a log this process holds). */
  readonly position: PurgePosition;
  /** `seq` of that entry (0 before the first). */
  readonly seq: number;
  /** Whether this process's tail is following the log now. */
  readonly tailLive: boolean;
  /** Milliseconds since the tail last confirmed it was caught up with the log (0 when it holds the log itself). */
  readonly tailAgeMs: number;
}
