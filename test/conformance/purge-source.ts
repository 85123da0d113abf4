import { afterEach, describe, expect, it } from 'vitest';
import type { PurgeSource, PurgeSubscribeOptions, PurgeSubscription } from '../../edge/core/purge-source.ts';
import type { RunningOrigin } from '../../origin/server.ts';
import type { PurgeMessage, ResetMessage } from '../../shared/schemas.ts';
import { type CuttableProxy, cuttableProxy } from '../support/proxy.ts';
import { originFor } from '../support/stack.ts';
import { eventually } from '../support/wait.ts';
import { purge } from './purge-bus.ts';

/** What an implementation does; tests that need more are left out (shown as skipped), never counted as passed. */
export interface PurgeSourceCapabilities {
  /**
   * Holds one connection and replaces it when it goes silent for
   * `idleTimeoutMs` (a stream). A poll source has no connection to lose.
   */
  readonly persistentConnection: boolean;
}

/** Makes a source reading the purge log of the origin at `originUrl`. */
export type PurgeSourceFactory = (originUrl: string, options: { idleTimeoutMs: number }) => PurgeSource;

/** Heartbeat period of the origins the suite starts, seconds. */
const heartbeatSeconds = 1;
/** Longer than a heartbeat period, so only a dead connection goes silent this long. */
const idleTimeoutMs = 2_500;
const deadlineMs = 15_000;

/**
 * The edge-side `PurgeSource` contract (ARCHITECTURE.md §4, §6), run
 * against every implementation with real origins (memory store) on
 * loopback: subscribe → connected at the log's head, the position follows
 * applied purges, confirmations keep coming while nothing is published, a gap
 * is replayed in order after a lost connection, a position from another
 * incarnation gets a reset, and close() stops everything.
 */
export function purgeSourceConformance(
  name: string,
  factory: PurgeSourceFactory,
  capabilities: PurgeSourceCapabilities,
): void {
  describe(`PurgeSource conformance: ${name}`, () => {
    const cleanups: (() => Promise<void> | void)[] = [];
    afterEach(async () => {
      for (const c of cleanups.splice(0).reverse()) await c();
    });
    const origin = async () => {
      const o: RunningOrigin = await originFor({ PURGE_HEARTBEAT_SECONDS: String(heartbeatSeconds) });
      cleanups.push(() => o.close());
      return o;
    };
    const subscribe = (url: string, options?: PurgeSubscribeOptions) => {
      const purges: PurgeMessage[] = [];
      const resets: ResetMessage[] = [];
      const states: boolean[] = [];
      const subscription: PurgeSubscription = factory(url, { idleTimeoutMs }).subscribe(
        {
          onPurge: (m) => purges.push(m),
          onReset: (m) => resets.push(m),
          onStateChange: (connected) => states.push(connected),
        },
        options,
      );
      cleanups.push(() => subscription.close());
      return { subscription, purges, resets, states };
    };
    const keys = (purges: readonly PurgeMessage[]) => purges.map((m) => m.keys[0]);

    it("subscribing connects at the log's head; the position follows every purge applied, in order", async () => {
      const o = await origin();
      await o.bus.publish(purge('before'));
      const { subscription, purges, states } = subscribe(o.url);
      await eventually('connected', () => subscription.connected, deadlineMs);
      expect(states).toEqual([true]);
      expect(subscription.position).toBe(o.bus.health().position);
      const published = [];
      for (const key of ['k1', 'k2', 'k3']) published.push(await o.bus.publish(purge(key)));
      await eventually('three purges', () => purges.length === 3, deadlineMs);
      expect(keys(purges)).toEqual(['k1', 'k2', 'k3']);
      expect(subscription.position).toBe(published.at(-1)!.message.position);
    });

    it('the last confirmation time moves while nothing is published, and says the tail is live', async () => {
      const o = await origin();
      const { subscription } = subscribe(o.url);
      const first = await eventually('a confirmation', () => subscription.confirmation, deadlineMs);
      expect(first.tailLive).toBe(true);
      const later = await eventually(
        'a later confirmation',
        () => (subscription.confirmation!.atMs > first.atMs ? subscription.confirmation : null),
        deadlineMs,
      );
      expect(later.tailLive).toBe(true);
      expect(subscription.connected).toBe(true);
    });

    it.skipIf(!capabilities.persistentConnection)(
      'after a connection goes silent the source reconnects and gets the gap replayed in order, without a reset',
      async () => {
        const o = await origin();
        const proxy: CuttableProxy = await cuttableProxy(o.port);
        cleanups.push(() => proxy.close());
        const { subscription, purges, resets, states } = subscribe(proxy.url);
        await eventually('connected', () => subscription.connected, deadlineMs);
        proxy.stallExisting();
        for (const key of ['g1', 'g2', 'g3']) await o.bus.publish(purge(key));
        await eventually('the gap replayed', () => purges.length === 3, deadlineMs);
        expect(keys(purges)).toEqual(['g1', 'g2', 'g3']);
        expect(resets).toEqual([]);
        expect(states).toEqual([true, false, true]);
        expect(subscription.position).toBe(o.bus.health().position);
      },
    );

    it("a position from another incarnation of the log gets a reset and continues from the reset's position", async () => {
      const before = await origin();
      const stale = (await before.bus.publish(purge('elsewhere'))).message.position;
      const o = await origin();
      const { subscription, purges, resets } = subscribe(o.url, { from: stale });
      await eventually('a reset', () => resets.length === 1, deadlineMs);
      expect(subscription.position).toBe(o.bus.health().position);
      await o.bus.publish(purge('after'));
      await eventually('the next purge', () => purges.length === 1, deadlineMs);
      expect(keys(purges)).toEqual(['after']);
      expect(resets).toHaveLength(1);
    });

    it('close() disconnects and no handler is called afterwards', async () => {
      const o = await origin();
      const closing = subscribe(o.url);
      const witness = subscribe(o.url);
      await eventually(
        'both connected',
        () => closing.subscription.connected && witness.subscription.connected,
        deadlineMs,
      );
      closing.subscription.close();
      expect(closing.subscription.connected).toBe(false);
      await o.bus.publish(purge('after-close'));
      await eventually('the witness to get the purge', () => witness.purges.length === 1, deadlineMs);
      if (capabilities.persistentConnection) {
        await eventually('the origin to drop the closed subscriber', () => o.bus.subscribers === 1, deadlineMs);
      }
      expect(closing.purges).toEqual([]);
      expect(closing.states).toEqual([true, false]);
    });
  });
}
