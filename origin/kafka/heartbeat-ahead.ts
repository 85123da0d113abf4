import type { Consumer } from 'kafkajs';

/** What a batch handler hands over: kafkajs's `eachBatch` payload `heartbeat`. */
export type GroupHeartbeat = () => Promise<void>;

/** Keeps a consumer's group heartbeats off its fetch loop; see {@link heartbeatAhead}. */
export interface HeartbeatAhead {
  /** Hands over the `heartbeat` of a batch payload (each batch's; the newest is used). */
  use(heartbeat: GroupHeartbeat): void;
  /** Stops the timer for good. Idempotent. (A consumer that stops, disconnects or crashes pauses it until it joins again.) */
  stop(): void;
}

/**
 * Sends a kafkajs consumer's group heartbeats from a timer, as soon as each
 * is due, instead of in its fetch loop.
 *
 * kafkajs heartbeats (a `Heartbeat` request to the group coordinator) after
 * each batch and after each empty fetch once `intervalMs` has passed since
 * the last one, and fetches again only when that heartbeat was answered: on
 * a link with 40 ms RTT, once per interval no fetch waits at the broker for
 * 40 ms, and an event arriving then waits that much longer. Its heartbeat
 * skips the request when the last one is younger than `intervalMs`, and
 * concurrent calls share one request; so a heartbeat sent from here right
 * when it falls due (on the client's non-`Fetch` connection, beside the
 * long-poll fetch) leaves the fetch loop nothing to send, unless a batch ends
 * during the one round trip it is in flight.
 *
 * It sends only while a fetch is in flight (kafkajs's FETCH_START … FETCH);
 * one falling due between fetches goes out with the next fetch. So, as
 * before, a consumer whose fetch loop hangs (a batch that never ends) stops
 * heartbeating and the group moves its partitions to a live member after
 * the session timeout.
 *
 * Until the first batch hands over its `heartbeat`, and whenever one sent
 * from here fails (a rebalance, a lost coordinator), kafkajs's own heartbeat
 * in the fetch loop still runs and handles the error as before: errors here
 * are swallowed, and a failed heartbeat leaves the last one's time, so the
 * fetch loop's next heartbeat is due at once.
 */
export function heartbeatAhead(consumer: Consumer, intervalMs: number): HeartbeatAhead {
  let heartbeat: GroupHeartbeat | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  let fetching = false;
  /** A heartbeat fell due between fetches: it goes out with the next fetch. */
  let owed = false;
  // kafkajs stamps the heartbeat's time just after the event: a few ms later it is surely due.
  const dueMs = intervalMs + 5;

  const schedule = (delayMs: number) => {
    clearTimeout(timer);
    owed = false;
    if (stopped) return;
    timer = setTimeout(beat, delayMs);
    timer.unref();
  };
  const beat = () => {
    timer = undefined;
    // None yet (no batch since the join): kafkajs's own heartbeat runs, and its HEARTBEAT event schedules again.
    if (!heartbeat) return;
    if (!fetching) {
      owed = true;
      return;
    }
    send(heartbeat);
  };
  const send = (h: GroupHeartbeat) => {
    void h().then(
      // Normally the HEARTBEAT event has scheduled the next one already; else (skipped, not yet due) try again.
      () => timer ?? schedule(intervalMs),
      () => timer ?? schedule(intervalMs),
    );
  };
  // Between a stop (kafkajs also stops before restarting itself after a crash) and the next join: nothing to send.
  const pause = () => {
    clearTimeout(timer);
    timer = undefined;
    heartbeat = undefined;
    fetching = false;
    owed = false;
  };
  const offs = [
    consumer.on(consumer.events.HEARTBEAT, () => schedule(dueMs)),
    consumer.on(consumer.events.FETCH_START, () => {
      fetching = true;
      if (owed && heartbeat) {
        owed = false;
        send(heartbeat);
      }
    }),
    consumer.on(consumer.events.FETCH, () => {
      fetching = false;
    }),
    consumer.on(consumer.events.GROUP_JOIN, () => schedule(dueMs)),
    consumer.on(consumer.events.STOP, pause),
    consumer.on(consumer.events.DISCONNECT, pause),
    consumer.on(consumer.events.CRASH, pause),
  ];
  const stop = () => {
    stopped = true;
    pause();
    for (const off of offs) off();
  };
  return {
    use(h) {
      if (!stopped) heartbeat = h;
    },
    stop,
  };
}
