/**
 * Reading the shared invalidation topic back in cross-region tests: what the
 * region forwarders actually sent, in partition order per message key.
 */
import { Kafka, logLevel } from 'kafkajs';
import { uniqueName } from './kafka.ts';
import { eventually } from './wait.ts';

/** One message of the topic: its key and its JSON value. */
export interface TopicEvent {
  readonly key: string;
  readonly event: Record<string, unknown>;
}

/**
 * Reads `topic` from the beginning in a group of its own, keeping the events
 * that `match` (a namespace, or a predicate), in partition order, until
 * `done` holds for them (polled, up to `timeoutMs`).
 */
export async function topicEvents(
  brokers: string,
  topic: string,
  match: string | ((event: Record<string, unknown>) => boolean),
  done: (events: TopicEvent[]) => boolean,
  timeoutMs = 30_000,
): Promise<TopicEvent[]> {
  const consumer = new Kafka({ clientId: 'strata-test', brokers: [brokers], logLevel: logLevel.NOTHING }).consumer({
    groupId: uniqueName('reader'),
    sessionTimeout: 6_000,
    heartbeatInterval: 500,
    maxWaitTimeInMs: 200,
  });
  const seen: TopicEvent[] = [];
  await consumer.connect();
  try {
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      eachMessage: async ({ message }) => {
        try {
          const event = JSON.parse(message.value?.toString('utf8') ?? '') as Record<string, unknown>;
          if (typeof match === 'string' ? event.namespace === match : match(event))
            seen.push({ key: message.key?.toString('utf8') ?? '', event });
        } catch {
          // not JSON: a poison message of another test
        }
      },
    });
    await eventually(`events on ${topic}`, () => done(seen), timeoutMs, 100);
  } finally {
    await consumer.disconnect();
  }
  return seen;
}

/** How many distinct event ids `events` hold (a forwarder may send one twice after a crash, with the same id). */
export const distinctIds = (events: readonly TopicEvent[]): number => new Set(events.map((e) => e.event.id)).size;

/**
 * Per message key, the purge log stream ids (`<ms>-<seq>`, the last part of a
 * forwarded event's id) of each event's first occurrence, in topic order.
 * Forwarding kept the log's order per key when every list increases.
 */
export function firstOccurrencesPerKey(events: readonly TopicEvent[]): Map<string, [bigint, bigint][]> {
  const out = new Map<string, [bigint, bigint][]>();
  const ids = new Set<unknown>();
  for (const { key, event } of events) {
    if (ids.has(event.id)) continue;
    ids.add(event.id);
    const [ms, seq] = String(event.id).split(':').pop()!.split('-').map(BigInt);
    out.set(key, [...(out.get(key) ?? []), [ms!, seq!]]);
  }
  return out;
}

/** Whether stream ids increase strictly along `sequence`. */
export function increasing(sequence: readonly [bigint, bigint][]): boolean {
  return sequence.every(([m, s], i) => {
    if (i === 0) return true;
    const [pm, ps] = sequence[i - 1]!;
    return m > pm || (m === pm && s > ps);
  });
}
