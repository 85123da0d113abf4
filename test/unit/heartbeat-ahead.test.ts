import { EventEmitter } from 'node:events';
import type { Consumer } from 'kafkajs';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { heartbeatAhead } from '../../origin/kafka/heartbeat-ahead.ts';

const events = {
  HEARTBEAT: 'consumer.heartbeat',
  FETCH_START: 'consumer.fetch_start',
  FETCH: 'consumer.fetch',
  GROUP_JOIN: 'consumer.group_join',
  STOP: 'consumer.stop',
  DISCONNECT: 'consumer.disconnect',
  CRASH: 'consumer.crash',
} as const;

/** The part of a kafkajs consumer the helper uses: its instrumentation events. */
function fakeConsumer() {
  const emitter = new EventEmitter();
  const consumer = {
    events,
    on(event: string, listener: () => void) {
      emitter.on(event, listener);
      return () => emitter.off(event, listener);
    },
  } as unknown as Consumer;
  return { consumer, emit: (event: keyof typeof events) => emitter.emit(events[event]), emitter };
}

/** A group heartbeat that counts its calls and emits HEARTBEAT like kafkajs when `ok`. */
function beats(emit: (event: 'HEARTBEAT') => void, ok = () => true) {
  let calls = 0;
  const heartbeat = async () => {
    calls += 1;
    if (!ok()) throw new Error('The group is rebalancing');
    emit('HEARTBEAT');
  };
  return { heartbeat, calls: () => calls };
}

const interval = 1_000;

/**
 * A helper on a fake consumer that joined its group and has a fetch in
 * flight, holding a batch's heartbeat (failing while `ok` says so).
 */
function joined(ok?: () => boolean) {
  const fake = fakeConsumer();
  const ahead = heartbeatAhead(fake.consumer, interval);
  const beat = beats(fake.emit, ok);
  ahead.use(beat.heartbeat);
  fake.emit('GROUP_JOIN');
  fake.emit('FETCH_START');
  return { ...fake, ahead, ...beat };
}

describe('heartbeatAhead', () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it('sends nothing before a batch handed over its heartbeat (kafkajs heartbeats itself)', async () => {
    const { consumer, emit } = fakeConsumer();
    const ahead = heartbeatAhead(consumer, interval);
    emit('GROUP_JOIN');
    emit('FETCH_START');
    await vi.advanceTimersByTimeAsync(5 * interval);
    const { heartbeat, calls } = beats(emit);
    ahead.use(heartbeat);
    // The fetch loop's own heartbeat (the HEARTBEAT event) arms the timer.
    emit('HEARTBEAT');
    await vi.advanceTimersByTimeAsync(interval + 10);
    expect(calls()).toBe(1);
    ahead.stop();
  });

  it('sends each heartbeat just after it falls due, never before, and once per interval', async () => {
    const { ahead, calls } = joined();
    await vi.advanceTimersByTimeAsync(interval);
    expect(calls()).toBe(0);
    await vi.advanceTimersByTimeAsync(10);
    expect(calls()).toBe(1);
    // Each one is due an interval after the last was answered.
    await vi.advanceTimersByTimeAsync(3 * (interval + 10));
    expect(calls()).toBe(4);
    ahead.stop();
  });

  it('a heartbeat of the fetch loop in between moves the next one back by a whole interval', async () => {
    const { ahead, emit, calls } = joined();
    await vi.advanceTimersByTimeAsync(interval / 2);
    emit('HEARTBEAT');
    await vi.advanceTimersByTimeAsync(interval);
    expect(calls()).toBe(0);
    await vi.advanceTimersByTimeAsync(10);
    expect(calls()).toBe(1);
    ahead.stop();
  });

  it('after a failed heartbeat it tries again an interval later, and resumes once one succeeds', async () => {
    let healthy = false;
    const { ahead, calls } = joined(() => healthy);
    await vi.advanceTimersByTimeAsync(interval + 10);
    expect(calls()).toBe(1);
    await vi.advanceTimersByTimeAsync(interval);
    expect(calls()).toBe(2);
    healthy = true;
    await vi.advanceTimersByTimeAsync(interval);
    expect(calls()).toBe(3);
    await vi.advanceTimersByTimeAsync(interval + 10);
    expect(calls()).toBe(4);
    ahead.stop();
  });

  it('pauses while the consumer is stopped and resumes with the heartbeat of a batch after the next join', async () => {
    const { ahead, emit, ...first } = joined();
    await vi.advanceTimersByTimeAsync(interval + 10);
    expect(first.calls()).toBe(1);
    emit('STOP');
    await vi.advanceTimersByTimeAsync(5 * interval);
    expect(first.calls()).toBe(1);
    // kafkajs restarted itself: a new run, a new heartbeat from its first batch.
    emit('GROUP_JOIN');
    emit('FETCH_START');
    const second = beats(emit);
    ahead.use(second.heartbeat);
    await vi.advanceTimersByTimeAsync(interval + 10);
    expect(first.calls()).toBe(1);
    expect(second.calls()).toBe(1);
    ahead.stop();
  });

  it('sends nothing while no fetch is in flight (a batch in hand); one due then goes out with the next fetch', async () => {
    const { ahead, emit, calls } = joined();
    emit('FETCH');
    await vi.advanceTimersByTimeAsync(3 * interval);
    expect(calls()).toBe(0);
    emit('FETCH_START');
    await vi.advanceTimersByTimeAsync(0);
    expect(calls()).toBe(1);
    ahead.stop();
  });

  it('a batch that never ends stops the heartbeats, so the group can move its partitions (session timeout)', async () => {
    const { ahead, emit, calls } = joined();
    await vi.advanceTimersByTimeAsync(interval + 10);
    expect(calls()).toBe(1);
    // The fetch answered, and its batch hangs: no FETCH_START follows.
    emit('FETCH');
    await vi.advanceTimersByTimeAsync(30 * interval);
    expect(calls()).toBe(1);
    ahead.stop();
  });

  it('stop() ends it for good and leaves no listener on the consumer', async () => {
    const { ahead, emit, emitter, heartbeat, calls } = joined();
    ahead.stop();
    ahead.use(heartbeat);
    emit('HEARTBEAT');
    await vi.advanceTimersByTimeAsync(5 * interval);
    expect(calls()).toBe(0);
    expect(Object.values(events).map((e) => emitter.listenerCount(e))).toEqual([0, 0, 0, 0, 0, 0, 0]);
  });
});
