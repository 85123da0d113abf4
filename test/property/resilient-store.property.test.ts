import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { RedisBreaker } from '../../origin/breaker.ts';
import { LocalTier } from '../../origin/store/local-tier.ts';
import { resilientStore } from '../../origin/store/resilient.ts';
import type { EntryInput, Store, StoredEntry } from '../../origin/store/store.ts';
import type { WriteBack } from '../../origin/store/write-back.ts';
import { nextVersion } from '../../shared/version.ts';

/*
 * Model-based property of the breaker facade (`origin/store/resilient.ts`):
 * random interleavings of GET, PUT, DELETE, outages, recoveries and
 * write-back rounds, checked against the real-time order of the operations.
 *
 * The stand-in for Redis runs every call in two steps the test schedules:
 * `apply` (the call takes effect, or fails when Redis is down) and `deliver`
 * (the facade sees the answer). So a read can be answered by Redis, then
 * wait while a write-back or a concurrent write settles, and only then be
 * reconciled. Versions are stamped as Redis does (`max(current + 1, now µs)`,
 * tombstones kept) from one fake clock that the test moves, often not at all,
 * so versions of the same millisecond are common.
 *
 * Checked, for every GET that answered:
 * - a non-degraded answer was confirmed by Redis: Redis held that value (or
 *   nothing, for a miss) at some moment while the GET ran, so every answer
 *   that rests on the local tier alone — a miss included — is flagged;
 * - a non-degraded answer is never older than a change acknowledged before
 *   the GET began (its source change did not end before such a change began),
 *   so any stale answer is flagged degraded;
 * - after the last outage ends and write-back has run, nothing stays dirty
 *   and every key reads non-degraded.
 */

const keys = ['a', 'b'] as const;
type Key = (typeof keys)[number];

type Step =
  | { readonly kind: 'get' | 'put' | 'delete'; readonly key: Key }
  | { readonly kind: 'outage' | 'up' | 'write-back' }
  | { readonly kind: 'apply' | 'deliver'; readonly pick: number }
  | { readonly kind: 'tick'; readonly ms: number };

const keyArb = fc.constantFrom(...keys);
const stepArb: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('get' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('put' as const), key: keyArb }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete' as const), key: keyArb }) },
  {
    weight: 5,
    arbitrary: fc.record({ kind: fc.constantFrom('outage' as const, 'up' as const, 'write-back' as const) }),
  },
  { weight: 8, arbitrary: fc.record({ kind: fc.constantFrom('apply' as const, 'deliver' as const), pick: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 2 }) }) },
);

/**
 * Failures found before, replayed on every run. A delete written back, then a
 * write accepted in a second outage within the same millisecond: the write
 * must be stamped above the delete's tombstone, or its write-back is skipped.
 */
const knownFailures: Step[][] = [
  [
    { kind: 'outage' },
    { kind: 'delete', key: 'a' },
    { kind: 'apply', pick: 0 },
    { kind: 'deliver', pick: 0 },
    { kind: 'get', key: 'a' },
    { kind: 'up' },
    { kind: 'apply', pick: 0 },
    { kind: 'deliver', pick: 0 },
    { kind: 'apply', pick: 0 },
    { kind: 'put', key: 'a' },
    { kind: 'outage' },
    { kind: 'deliver', pick: 0 },
    { kind: 'apply', pick: 0 },
  ],
];

// Cheap runs (about a millisecond each), and the races need many: 1000 by default.
// STRATA_PROPERTY_SEED and STRATA_PROPERTY_PATH replay a reported failure.
const runs: fc.Parameters<[Step[]]> = {
  numRuns: Number(process.env.STRATA_PROPERTY_RUNS ?? 1000),
  examples: knownFailures.map((steps) => [steps]),
  ...(process.env.STRATA_PROPERTY_SEED === undefined ? {} : { seed: Number(process.env.STRATA_PROPERTY_SEED) }),
  ...(process.env.STRATA_PROPERTY_PATH === undefined ? {} : { path: process.env.STRATA_PROPERTY_PATH }),
};

/** One call to the stand-in for Redis: its effect runs at `apply`, its answer reaches the caller at `deliver`. */
interface Call {
  readonly effect: () => unknown;
  outcome?: { readonly ok: true; readonly value: unknown } | { readonly ok: false; readonly error: Error };
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
}

/** Redis as the facade sees it: entries and tombstones by key, each call scheduled by the test. */
function scheduledRedis(clock: { now: number }, onChange: (key: string, entry: StoredEntry | null) => void) {
  const data = new Map<string, { entry: StoredEntry | null; version: number }>();
  const state = { down: false, auto: false };
  const queue: Call[] = [];

  function apply(call: Call): void {
    try {
      if (state.down) throw new Error('ECONNREFUSED');
      call.outcome = { ok: true, value: call.effect() };
    } catch (error) {
      call.outcome = { ok: false, error: error as Error };
    }
  }
  function deliver(call: Call): void {
    queue.splice(queue.indexOf(call), 1);
    const outcome = call.outcome!;
    if (outcome.ok) call.resolve(outcome.value);
    else call.reject(outcome.error);
  }
  function schedule<T>(effect: () => T): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const call: Call = { effect, resolve: resolve as (value: unknown) => void, reject };
      queue.push(call);
      if (state.auto) {
        apply(call);
        deliver(call);
      }
    });
  }

  const k = (ns: string, key: string) => `${ns}:${key}`;
  const live = (ns: string, key: string) => data.get(k(ns, key))?.entry ?? null;
  const current = (ns: string, key: string) => data.get(k(ns, key))?.version ?? 0;
  const write = (ns: string, key: string, input: EntryInput): StoredEntry => {
    const entry: StoredEntry = {
      value: input.value,
      contentType: input.contentType,
      version: nextVersion(current(ns, key), clock.now),
      createdAtMs: clock.now,
      expiresAtMs: clock.now + input.ttlMs,
      tags: [...input.tags],
    };
    data.set(k(ns, key), { entry, version: entry.version });
    onChange(key, entry);
    return entry;
  };
  const remove = (ns: string, key: string) => {
    const removed = live(ns, key) ? 1 : 0;
    const version = nextVersion(current(ns, key), clock.now);
    data.set(k(ns, key), { entry: null, version });
    onChange(key, null);
    return { removed, version };
  };

  const store: Store = {
    kind: 'redis',
    get: (ns, key) => schedule(() => live(ns, key)),
    getMany: (ns, list) =>
      schedule(() => new Map(list.flatMap((key) => (live(ns, key) ? [[key, live(ns, key)!] as const] : [])))),
    set: (ns, key, input) => schedule(() => write(ns, key, input)),
    setMany: (ns, entries) => schedule(() => new Map([...entries].map(([key, input]) => [key, write(ns, key, input)]))),
    delete: (ns, key) => schedule(() => remove(ns, key)),
    purge: (ns, selector) =>
      schedule(() => {
        let removed = 0;
        let version = 0;
        for (const key of selector.keys) {
          const r = remove(ns, key);
          removed += r.removed;
          version = Math.max(version, r.version);
        }
        return { removed, version };
      }),
    ping: () => schedule(() => undefined),
    close: async () => {},
  };
  const writeBack: WriteBack = {
    setIfNewer: (ns, key, entry) =>
      schedule(() => {
        if (current(ns, key) >= entry.version) return false;
        data.set(k(ns, key), { entry, version: entry.version });
        onChange(key, entry);
        return true;
      }),
    deleteIfOlder: (ns, key, version) =>
      schedule(() => {
        if (current(ns, key) >= version) return false;
        const removed = live(ns, key) !== null;
        data.set(k(ns, key), { entry: null, version });
        onChange(key, null);
        return removed;
      }),
  };
  return { store, writeBack, state, queue, apply, deliver };
}

/** A change as the client saw it: logical start and end times; value null for a delete. */
interface Change {
  readonly key: Key;
  readonly value: string | null;
  readonly start: number;
  end: number;
}

interface Read {
  readonly key: Key;
  readonly start: number;
  end: number;
  /** Value answered, null for a miss; undefined when the GET failed (CACHE_005). */
  value?: string | null;
  degraded?: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/** A value Redis held for a key from logical time `at` on; null when absent. */
interface RedisState {
  readonly key: string;
  readonly value: string | null;
  readonly at: number;
}

/** True when Redis held the read's answer at some moment between its start and end. */
function confirmed(read: Read, history: readonly RedisState[]): boolean {
  const mine = history.filter((h) => h.key === read.key);
  const before = mine.filter((h) => h.at < read.start).at(-1) ?? { value: null };
  const during = mine.filter((h) => h.at > read.start && h.at < read.end);
  return [before, ...during].some((h) => h.value === read.value);
}

/**
 * Why a non-degraded read is stale, or null. Its answer comes from a change
 * that began before the read ended (or from the initial absence, for a miss);
 * it is stale when every such source ended before some change, acknowledged
 * before the read began, began.
 */
function staleness(read: Read, changes: readonly Change[]): string | null {
  const mine = changes.filter((c) => c.key === read.key);
  const acknowledged = mine.filter((c) => c.end < read.start);
  const sources: { end: number }[] =
    read.value === null
      ? [{ end: 0 }, ...mine.filter((c) => c.value === null && c.start < read.end)]
      : mine.filter((c) => c.value === read.value);
  if (sources.length === 0) return `answered ${read.value}, which no change wrote`;
  const fresh = sources.some((s) => !acknowledged.some((c) => s.end < c.start));
  return fresh ? null : `answered ${read.value ?? 'a miss'} after a newer change was acknowledged`;
}

describe('breaker facade: outage, recovery and write-back interleavings (model-based)', () => {
  it('never answers a non-degraded read older than a change acknowledged before it began', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(stepArb, { minLength: 1, maxLength: 80, size: 'max' }), async (steps) => {
        const clock = { now: 1_700_000_000_000 };
        let time = 0;
        const history: RedisState[] = [];
        const redis = scheduledRedis(clock, (key, entry) =>
          history.push({ key, value: entry ? decoder.decode(entry.value) : null, at: ++time }),
        );
        const store = resilientStore({
          inner: redis.store,
          writeBack: redis.writeBack,
          // Never opens: an outage is Redis failing each call, recovery is a write-back round.
          breaker: new RedisBreaker({ readAttempts: 1, minRequests: 1e9, callTimeoutMs: 1e8 }),
          local: new LocalTier({ maxBytes: 1 << 20, maxDirtyBytes: 1 << 20, now: () => clock.now }),
          recoveryIntervalMs: 0,
          now: () => clock.now,
        });
        let puts = 0;
        const changes: Change[] = [];
        const reads: Read[] = [];
        const running = new Set<Promise<unknown>>();
        const track = (p: Promise<unknown>) => {
          const q = p.finally(() => running.delete(q));
          running.add(q);
        };
        const get = (key: Key) => {
          const read: Read = { key, start: ++time, end: Number.POSITIVE_INFINITY };
          reads.push(read);
          return store.getTiered('ns', key).then(
            (answer) => {
              read.end = ++time;
              read.value = answer.entry ? decoder.decode(answer.entry.value) : null;
              read.degraded = answer.degraded;
            },
            () => {
              read.end = ++time;
            },
          );
        };
        const change = (key: Key, value: string | null) => {
          const c: Change = { key, value, start: ++time, end: Number.POSITIVE_INFINITY };
          changes.push(c);
          const done = () => {
            c.end = ++time;
          };
          return value === null
            ? store.delete('ns', key).then(done)
            : store
                .set('ns', key, { value: encoder.encode(value), contentType: 'text/plain', ttlMs: 1e9, tags: [] })
                .then(done);
        };

        for (const step of steps) {
          switch (step.kind) {
            case 'get':
              track(get(step.key));
              break;
            case 'put':
              track(change(step.key, `v${++puts}`));
              break;
            case 'delete':
              track(change(step.key, null));
              break;
            case 'outage':
              redis.state.down = true;
              break;
            case 'up':
              redis.state.down = false;
              break;
            case 'write-back':
              track(store.recover());
              break;
            case 'apply': {
              const waiting = redis.queue.filter((c) => !c.outcome);
              if (waiting.length > 0) redis.apply(waiting[step.pick % waiting.length]!);
              break;
            }
            case 'deliver': {
              const answered = redis.queue.filter((c) => c.outcome);
              if (answered.length > 0) redis.deliver(answered[step.pick % answered.length]!);
              break;
            }
            case 'tick':
              clock.now += step.ms;
              break;
          }
          await settle();
        }

        // The outage ends: every call in flight completes, then write-back runs to the end.
        redis.state.down = false;
        for (const call of redis.queue.filter((c) => !c.outcome)) redis.apply(call);
        for (const call of [...redis.queue]) redis.deliver(call);
        redis.state.auto = true;
        while (running.size > 0) await Promise.all([...running]);
        await store.recover();
        expect(store.health().dirty).toBe(0);
        for (const key of keys) await get(key);
        await store.close();

        for (const read of reads) {
          if (read.value === undefined || read.degraded) continue;
          expect(confirmed(read, history), JSON.stringify({ read, history })).toBe(true);
          expect(staleness(read, changes), JSON.stringify({ read, changes })).toBeNull();
        }
        for (const read of reads.slice(-keys.length)) expect(read.degraded).toBe(false);
      }),
      runs,
    );
  });
});
