import { afterEach, describe, expect, it } from 'vitest';
import { CacheService } from '../../origin/cache-service.ts';
import { InvalidationApplier } from '../../origin/invalidation/applier.ts';
import type { InvalidationSource } from '../../origin/invalidation/source.ts';
import type { PurgeBus } from '../../origin/purge/bus.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import type { InvalidationEvent } from '../../shared/schemas.ts';
import { eventually } from '../support/wait.ts';

/** An event as a producer hands it over, with the key that orders it (Kafka's message key). */
export interface Delivery {
  readonly event: InvalidationEvent;
  readonly orderingKey: string;
}

/** One implementation, ready to be started, and the way producers reach it. */
export interface InvalidationSourceHarness {
  readonly source: InvalidationSource;
  /**
   * Hands events over as producers would, in this order; resolves once they
   * are handed over, not once they are applied (the suite watches the purge
   * bus for that). Events sharing an ordering key are handed over in order.
   */
  deliver(deliveries: readonly Delivery[]): Promise<void>;
  /** Stops the source if still running and releases what the harness opened. */
  close(): Promise<void>;
}

/** Builds a harness whose source applies events through `applier`. */
export type InvalidationSourceFactory = (applier: InvalidationApplier) => Promise<InvalidationSourceHarness>;

/** Milliseconds a delivered event may take to be applied (a real broker's fetch loop included). */
export interface InvalidationSourceCapabilities {
  readonly applyTimeoutMs: number;
  /**
   * The source may hand one event to the applier more than once (a Kafka
   * fetch sampler beside the group consumer): the extra handings must end as
   * `duplicate`, never as a second `applied`.
   */
  readonly readsTwice?: boolean;
}

/**
 * A purge bus that can hold publishes at a gate, and delays each publish by a
 * few event-loop turns chosen at random, so a source that applied one key's
 * events concurrently would publish them out of order.
 */
export class GatedBus extends InProcessPurgeBus {
  gate: Promise<void> | null = null;
  entered = 0;
  override async publish(input: Parameters<PurgeBus['publish']>[0]) {
    this.entered++;
    if (this.gate) await this.gate;
    for (let turns = Math.floor(Math.random() * 4); turns > 0; turns--) await new Promise((r) => setImmediate(r));
    return await super.publish(input);
  }
}

let counter = 0;
const uniqueNamespace = () => `inv-${process.pid}-${++counter}`;
const event = (namespace: string, key: string, id = `${namespace}-${key}-${++counter}`): InvalidationEvent => ({
  id,
  namespace,
  keys: [key],
  tags: [],
  prefix: null,
  action: 'delete',
  timestamp: Date.now(),
});

/**
 * The `InvalidationSource` contract (ARCHITECTURE.md §4), run against every
 * implementation: each event applied once per id, `stop()` finishes the
 * event in hand, per-key order. The source applies events through a real
 * {@link InvalidationApplier} and `CacheService` over the memory store;
 * what it applied is read off the purge bus.
 */
export function invalidationSourceConformance(
  name: string,
  factory: InvalidationSourceFactory,
  capabilities: InvalidationSourceCapabilities,
): void {
  describe(`InvalidationSource conformance: ${name}`, () => {
    const harnesses: InvalidationSourceHarness[] = [];
    afterEach(async () => {
      for (const h of harnesses.splice(0)) await h.close();
    });

    const setup = async () => {
      const bus = new GatedBus({ retainedEntries: 1_000 });
      const service = new CacheService({
        store: passThroughStore(memoryStore({ maxBytes: 1 << 20 })),
        bus,
        defaultTtlSeconds: 60,
        maxValueBytes: 1024,
      });
      const outcomes: string[] = [];
      const applier = new InvalidationApplier({
        service,
        dedupWindow: 1_000,
        onOutcome: (_source, outcome) => outcomes.push(outcome),
      });
      const published: { namespace: string; key: string }[] = [];
      bus.observe((m) => published.push({ namespace: m.namespace, key: m.keys[0]! }));
      const harness = await factory(applier);
      harnesses.push(harness);
      await harness.source.start();
      await harness.source.ready();
      const keysIn = (namespace: string) => published.filter((p) => p.namespace === namespace).map((p) => p.key);
      return { bus, harness, outcomes, keysIn };
    };

    it('an event delivered twice is applied once (idempotent by id)', async () => {
      const { harness, outcomes, keysIn } = await setup();
      const ns = uniqueNamespace();
      const once = event(ns, 'k');
      const sentinel = event(ns, 'sentinel');
      const orderingKey = ns;
      await harness.deliver([
        { event: once, orderingKey },
        { event: once, orderingKey },
        { event: sentinel, orderingKey },
      ]);
      await eventually('the sentinel applied', () => keysIn(ns).includes('sentinel'), capabilities.applyTimeoutMs);
      expect(keysIn(ns)).toEqual(['k', 'sentinel']);
      if (capabilities.readsTwice) {
        expect(outcomes.filter((o) => o === 'applied')).toHaveLength(2);
        expect(outcomes.filter((o) => o !== 'applied' && o !== 'duplicate')).toEqual([]);
      } else expect(outcomes).toEqual(['applied', 'duplicate', 'applied']);
    });

    it("events sharing an ordering key are applied in delivery order, interleaved with other keys' events", async () => {
      const { harness, keysIn } = await setup();
      const ns = uniqueNamespace();
      const other = uniqueNamespace();
      const deliveries: Delivery[] = [];
      for (let i = 0; i < 20; i++) {
        deliveries.push({ event: event(ns, `k${i}`), orderingKey: ns });
        deliveries.push({ event: event(other, `x${i}`), orderingKey: `${other}:${i}` });
      }
      await harness.deliver(deliveries);
      await eventually(
        'every event applied',
        () => keysIn(ns).length === 20 && keysIn(other).length === 20,
        capabilities.applyTimeoutMs,
      );
      expect(keysIn(ns)).toEqual(Array.from({ length: 20 }, (_, i) => `k${i}`));
    });

    it('stop() resolves only after the event in hand was applied', async () => {
      const { bus, harness, keysIn } = await setup();
      const ns = uniqueNamespace();
      let release!: () => void;
      bus.gate = new Promise<void>((r) => (release = r));
      const enteredBefore = bus.entered;
      await harness.deliver([{ event: event(ns, 'in-hand'), orderingKey: ns }]);
      await eventually('the event to be in hand', () => bus.entered > enteredBefore, capabilities.applyTimeoutMs);
      const order: string[] = [];
      const stopping = harness.source.stop().then(() => order.push('stopped'));
      // Give a stop() that does not wait every chance to resolve first.
      for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
      order.push('released');
      release();
      await stopping;
      expect(keysIn(ns)).toEqual(['in-hand']);
      expect(order).toEqual(['released', 'stopped']);
    });
  });
}
