import type { PurgeMessage, PurgePosition, ResetMessage } from '../../shared/schemas.ts';

/**
 * The edge's purge source seam (ARCHITECTURE.md §4 and §6, STYLE.md §1):
 * how an edge follows the origin's purge log. Implementations:
 * `edge/purge-sources/sse.ts` (a persistent Server-Sent Events stream, for
 * runtimes that hold a connection). A poll source for runtimes that cannot
 * (`GET /api/v1/purges?after=<position>`) plugs in here unchanged.
 *
 * Positions are opaque: a source stores the last one it applied and sends it
 * back; it never parses or compares them.
 */
export interface PurgeSource<S extends PurgeSubscription = PurgeSubscription> {
  /** Starts following the log; `handlers` are called in log order, one at a time. */
  subscribe(handlers: PurgeHandlers, options?: PurgeSubscribeOptions): S;
}

/** Where a subscription's events go. */
export interface PurgeHandlers {
  /** Applies one purge (drop copies below its version). */
  onPurge(message: PurgeMessage): void;
  /** The gap could not be replayed (too old, another log or incarnation): drop the whole tier. */
  onReset(message: ResetMessage): void;
  /** Told when the subscription goes up (the origin answered and the source knows its position) or down. */
  onStateChange?(connected: boolean): void;
  /** A dropped connection, a failed poll or a malformed message; the source retries by itself. */
  onError?(error: unknown): void;
}

export interface PurgeSubscribeOptions {
  /** Resume after this position (one a source of the same log handed out); null or absent: start at the head. */
  readonly from?: PurgePosition | null;
}

/** A live subscription. */
export interface PurgeSubscription {
  /** Whether the source is in contact with the origin now. */
  readonly connected: boolean;
  /** The position applied last (or where the log stood when the source started), null before the first contact. */
  readonly position: PurgePosition | null;
  /**
   * The last time (Unix ms, the edge's clock) the origin confirmed this
   * edge's view of the log is complete up to `position` (a stream
   * heartbeat, a poll answer, the start of a subscription), and whether the
   * origin's own tail of the log was live then. Null before the first.
   * Edge leases count only confirmations with `tailLive`.
   */
  readonly confirmation: PurgeConfirmation | null;
  /** Ends the subscription for good; no handler is called after it returns. */
  close(): void;
}

/** One confirmation that an edge's view of the purge log is fresh. */
export interface PurgeConfirmation {
  /** Unix ms on the edge's clock when it arrived. */
  readonly atMs: number;
  /** Whether the origin's tail of the log was live. */
  readonly tailLive: boolean;
}
