import { afterEach, describe, expect, it } from 'vitest';
import type { PublishedPurge, PurgeBus, PurgeBusEvent, PurgeInput } from '../../origin/purge/bus.ts';
import { eventually } from '../support/wait.ts';

/** What an implementation can do; tests that need more are left out, never counted as passed. */
export interface PurgeBusCapabilities {
  /**
   * A second bus from the factory shares the first one's log (replicas of
   * one region on one store): its positions are valid at the first. When
   * false, every bus from the factory is a log of its own (a new incarnation).
   */
  readonly sharedLog: boolean;
}

/** Makes a fresh, empty bus that keeps about `retainedEntries` purges for replay. */
export type PurgeBusFactory = (options: { retainedEntries: number }) => PurgeBus | Promise<PurgeBus>;

/** A purge of one key, as a caller hands it to a bus (shared with the purge source suite). */
export const purge = (key: string): PurgeInput => ({
  namespace: 'conformance',
  keys: [key],
  tags: [],
  prefix: null,
  version: 1,
  action: 'delete',
  ts: Date.now(),
});

const keysOf = (events: readonly PurgeBusEvent[]) => events.map((e) => (e.type === 'purge' ? e.keys[0] : e.type));

/**
 * The `PurgeBus` contract (ARCHITECTURE.md §4, §6), run against every
 * implementation. Delivery may be asynchronous (a log tailed over the
 * network), so every expectation on delivered events polls with a deadline.
 */
export function purgeBusConformance(name: string, factory: PurgeBusFactory, capabilities: PurgeBusCapabilities): void {
  describe(`PurgeBus conformance: ${name}`, () => {
    const buses: PurgeBus[] = [];
    const make = async (retainedEntries = 100) => {
      const bus = await factory({ retainedEntries });
      buses.push(bus);
      return bus;
    };
    afterEach(async () => {
      for (const bus of buses.splice(0)) await bus.close();
    });

    it('a published purge reaches every subscriber, in publish order, with the position publish resolved to', async () => {
      const bus = await make();
      const a: PurgeBusEvent[] = [];
      const b: PurgeBusEvent[] = [];
      bus.subscribe(null, (e) => a.push(e));
      bus.subscribe(null, (e) => b.push(e));
      expect(bus.subscribers).toBe(2);
      const published: PublishedPurge[] = [];
      for (const key of ['k1', 'k2', 'k3']) published.push(await bus.publish(purge(key)));
      await eventually('both subscribers to have three purges', () => a.length === 3 && b.length === 3);
      expect(keysOf(a)).toEqual(['k1', 'k2', 'k3']);
      expect(keysOf(b)).toEqual(['k1', 'k2', 'k3']);
      expect(a.map((e) => e.position)).toEqual(published.map((p) => p.message.position));
      expect(published.map((p) => p.seq - published[0]!.seq)).toEqual([0, 1, 2]);
    });

    it('a closed subscription receives nothing more and no longer counts', async () => {
      const bus = await make();
      const seen: PurgeBusEvent[] = [];
      const witness: PurgeBusEvent[] = [];
      const subscription = bus.subscribe(null, (e) => seen.push(e));
      bus.subscribe(null, (e) => witness.push(e));
      await bus.publish(purge('before'));
      await eventually('the first purge delivered', () => seen.length === 1);
      subscription.close();
      expect(bus.subscribers).toBe(1);
      await bus.publish(purge('after'));
      await eventually('the witness to get the second purge', () => witness.length === 2);
      expect(keysOf(seen)).toEqual(['before']);
    });

    it('an observer sees every purge without counting as a subscriber', async () => {
      const bus = await make();
      const observed: string[] = [];
      const stop = bus.observe((m) => observed.push(m.keys[0]!));
      expect(bus.subscribers).toBe(0);
      await bus.publish(purge('o1'));
      await eventually('the observer to see it', () => observed.length === 1);
      stop();
      await bus.publish(purge('o2'));
      const witness: PurgeBusEvent[] = [];
      bus.subscribe(null, (e) => witness.push(e));
      await bus.publish(purge('o3'));
      await eventually('a later purge to be delivered', () => witness.length === 1);
      expect(observed).toEqual(['o1']);
    });

    it('subscribing from a position replays the gap in order, then continues live', async () => {
      const bus = await make();
      const first = await bus.publish(purge('k1'));
      for (const key of ['k2', 'k3', 'k4']) await bus.publish(purge(key));
      const seen: PurgeBusEvent[] = [];
      bus.subscribe(first.message.position, (e) => seen.push(e));
      await bus.publish(purge('k5'));
      await eventually('the gap and the live purge', () => seen.length === 4);
      expect(keysOf(seen)).toEqual(['k2', 'k3', 'k4', 'k5']);
    });

    it('subscribing from the head or from null replays nothing; the head is where health says the log stands', async () => {
      const bus = await make();
      await bus.publish(purge('k1'));
      const last = await bus.publish(purge('k2'));
      expect(bus.health().position).toBe(last.message.position);
      const fromHead: PurgeBusEvent[] = [];
      const fromNull: PurgeBusEvent[] = [];
      const a = bus.subscribe(last.message.position, (e) => fromHead.push(e));
      const b = bus.subscribe(null, (e) => fromNull.push(e));
      expect(a.head).toBe(last.message.position);
      expect(b.head).toBe(last.message.position);
      await bus.publish(purge('k3'));
      await eventually('the live purge at both', () => fromHead.length === 1 && fromNull.length === 1);
      expect(keysOf(fromHead)).toEqual(['k3']);
      expect(keysOf(fromNull)).toEqual(['k3']);
    });

    it('a position from another log or incarnation gets a reset, and the reset position resumes cleanly', async () => {
      const bus = await make();
      await bus.publish(purge('k1'));
      const foreign = ['another-log:x:1', 'not a position', 'e1:5'];
      if (!capabilities.sharedLog) {
        const other = await make();
        foreign.push((await other.publish(purge('elsewhere'))).message.position);
      }
      for (const from of foreign) {
        const seen: PurgeBusEvent[] = [];
        const subscription = bus.subscribe(from, (e) => seen.push(e));
        await eventually(`a reset for ${from}`, () => seen.length === 1);
        expect(seen[0]!.type).toBe('reset');
        expect(seen[0]!.position).toBe(bus.health().position);
        subscription.close();
        const resumed: PurgeBusEvent[] = [];
        bus.subscribe(seen[0]!.position, (e) => resumed.push(e));
        await bus.publish(purge(`after-${foreign.indexOf(from)}`));
        await eventually('the live purge after resuming', () => resumed.length === 1);
        expect(resumed[0]!.type).toBe('purge');
      }
    });

    it('a position older than what the log keeps gets a reset instead of a partial replay', async () => {
      const retained = 3;
      const bus = await make(retained);
      const first = await bus.publish(purge('k0'));
      for (let i = 1; i <= retained * 4; i++) await bus.publish(purge(`k${i}`));
      const seen: PurgeBusEvent[] = [];
      bus.subscribe(first.message.position, (e) => seen.push(e));
      await eventually('a reset', () => seen.length >= 1);
      expect(keysOf(seen)).toEqual(['reset']);
    });

    it('read pages through the log after a position, oldest first, at most limit entries per page', async () => {
      const bus = await make();
      const start = await bus.read(null, 10);
      expect(start.entries).toEqual([]);
      expect(start.reset).toBeNull();
      const published: PublishedPurge[] = [];
      for (const key of ['k1', 'k2', 'k3', 'k4', 'k5']) published.push(await bus.publish(purge(key)));
      await eventually(
        'the head to reach the last purge',
        async () => (await bus.read(null, 1)).head === published[4]!.message.position,
      );
      const pages: string[][] = [];
      let after = start.head;
      for (let i = 0; i < 4; i++) {
        const page = await bus.read(after, 2);
        expect(page.reset).toBeNull();
        expect(page.entries.length).toBeLessThanOrEqual(2);
        pages.push(page.entries.map((e) => e.keys[0]!));
        if (page.entries.length === 0) break;
        after = page.entries.at(-1)!.position;
      }
      expect(pages).toEqual([['k1', 'k2'], ['k3', 'k4'], ['k5'], []]);
      const last = await bus.read(after, 2);
      expect(last.head).toBe(published[4]!.message.position);
      expect(last.tailLive).toBe(true);
    });

    it('read answers a reset, with no entries, for a position it cannot place or one older than it keeps', async () => {
      const retained = 3;
      const bus = await make(retained);
      const first = await bus.publish(purge('k0'));
      for (let i = 1; i <= retained * 4; i++) await bus.publish(purge(`k${i}`));
      for (const from of ['another-log:x:1', 'not a position', first.message.position]) {
        const page = await bus.read(from, 10);
        expect(page.entries).toEqual([]);
        expect(page.reset?.type).toBe('reset');
        const resumed = await bus.read(page.reset!.position, 10);
        expect(resumed.reset).toBeNull();
      }
      await expect(bus.read(null, 0)).rejects.toThrow();
    });

    it('health reports the head position, the last seq and a live tail', async () => {
      const bus = await make();
      const before = bus.health();
      const published = await bus.publish(purge('k1'));
      await eventually('health to move to the new head', () => bus.health().position === published.message.position);
      const after = bus.health();
      expect(after.seq).toBe(published.seq);
      expect(after.seq).toBe(before.seq + 1);
      expect(after.tailLive).toBe(true);
      expect(after.tailAgeMs).toBeGreaterThanOrEqual(0);
      expect(before.position).not.toBe(after.position);
    });
  });
}
