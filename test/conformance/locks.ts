import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { LockGrant, LockStore } from '../../origin/locks/lock-store.ts';
import { eventually } from '../support/wait.ts';

let counter = 0;
/** A namespace unique to one test, so stores sharing a server never see each other's locks. */
const freshNamespace = () => `lockconf-${process.pid}-${Date.now().toString(36)}-${counter++}`;

/** One holder's tenure, by the store's clock (µs): from its grant to its release. */
interface Tenure {
  readonly token: number;
  readonly fromUs: number;
  readonly toUs: number;
}

async function grantOf(store: LockStore, namespace: string, name: string, ttlMs: number): Promise<LockGrant> {
  const outcome = await store.acquire(namespace, name, ttlMs);
  if (!outcome.acquired) throw new Error(`expected a grant of ${namespace}/${name}, found it held`);
  return outcome.grant;
}

/**
 * The `LockStore` conformance suite (STYLE.md §1): every lock store — memory,
 * Redis standalone, Redis Cluster — must pass it, on real servers.
 * `make` is called once per suite; `close` after.
 */
export function lockConformance(
  name: string,
  make: () => Promise<LockStore> | LockStore,
  close: () => Promise<void> | void = () => {},
): void {
  describe(`LockStore conformance: ${name}`, () => {
    let store: LockStore;
    beforeAll(async () => {
      store = await make();
    });
    afterAll(async () => {
      await close();
    });

    it('grants a free lock, refuses a held one, and shows the holder', async () => {
      const ns = freshNamespace();
      expect(await store.inspect(ns, 'job')).toBeNull();
      const grant = await grantOf(store, ns, 'job', 30_000);
      expect(grant.token).toBeGreaterThan(0);
      expect(grant.expiresAtMs).toBeGreaterThan(Date.now() + 20_000);
      const second = await store.acquire(ns, 'job', 30_000);
      expect(second.acquired).toBe(false);
      if (second.acquired) return;
      expect(second.holder.token).toBe(grant.token);
      expect(await store.inspect(ns, 'job')).toEqual({ token: grant.token, expiresAtMs: second.holder.expiresAtMs });
      // A different name in the same namespace is a different lock.
      expect((await store.acquire(ns, 'other', 30_000)).acquired).toBe(true);
    });

    it('hands out strictly increasing tokens, grant after grant', async () => {
      const ns = freshNamespace();
      const tokens: number[] = [];
      for (let i = 0; i < 25; i++) {
        const grant = await grantOf(store, ns, 'seq', 30_000);
        tokens.push(grant.token);
        expect((await store.release(ns, 'seq', grant.token)).released).toBe(true);
      }
      for (let i = 1; i < tokens.length; i++) expect(tokens[i]!).toBeGreaterThan(tokens[i - 1]!);
    });

    it('refuses renew and release with any token but the holder’s, and accepts the holder’s', async () => {
      const ns = freshNamespace();
      const grant = await grantOf(store, ns, 'r', 5_000);
      for (const wrong of [grant.token - 1, grant.token + 1, 1]) {
        expect(await store.renew(ns, 'r', wrong, 60_000)).toBeNull();
        expect((await store.release(ns, 'r', wrong)).released).toBe(false);
      }
      expect((await store.inspect(ns, 'r'))?.token).toBe(grant.token);
      const renewed = await store.renew(ns, 'r', grant.token, 60_000);
      expect(renewed?.token).toBe(grant.token);
      expect(renewed!.expiresAtMs).toBeGreaterThan(grant.expiresAtMs);
      expect((await store.inspect(ns, 'r'))?.expiresAtMs).toBe(renewed!.expiresAtMs);
      expect((await store.release(ns, 'r', grant.token)).released).toBe(true);
      expect(await store.inspect(ns, 'r')).toBeNull();
      // Released means gone: the same token can neither renew nor release again.
      expect(await store.renew(ns, 'r', grant.token, 60_000)).toBeNull();
      expect((await store.release(ns, 'r', grant.token)).released).toBe(false);
    });

    it('frees a lock whose TTL ran out, reports the lapse, and refuses the lapsed holder', async () => {
      const ns = freshNamespace();
      const first = await grantOf(store, ns, 'exp', 150);
      const next = await eventually('the lapsed lock to be granted again', async () => {
        const outcome = await store.acquire(ns, 'exp', 30_000);
        return outcome.acquired ? outcome : null;
      });
      expect(next.previousExpired).toBe(true);
      expect(next.grant.token).toBeGreaterThan(first.token);
      expect(next.grant.atUs).toBeGreaterThanOrEqual(first.expiresAtMs * 1000);
      expect(await store.renew(ns, 'exp', first.token, 30_000)).toBeNull();
      expect((await store.release(ns, 'exp', first.token)).released).toBe(false);
      // A released grant is not a lapse.
      expect((await store.release(ns, 'exp', next.grant.token)).released).toBe(true);
      const after = await store.acquire(ns, 'exp', 30_000);
      expect(after.acquired && after.previousExpired).toBe(false);
    });

    it('with many concurrent contenders, holds at most one at a time, tokens rising in grant order', async () => {
      const ns = freshNamespace();
      const contenders = 12;
      const roundsEach = 6;
      const tenures: Tenure[] = [];
      let refusals = 0;
      const contender = async () => {
        for (let round = 0; round < roundsEach; round++) {
          let grant: LockGrant | null = null;
          while (!grant) {
            const outcome = await store.acquire(ns, 'hot', 30_000);
            if (outcome.acquired) grant = outcome.grant;
            else {
              refusals += 1;
              await new Promise((r) => setTimeout(r, 1 + Math.random() * 3));
            }
          }
          // Hold across a few event-loop turns so that others really do contend.
          await new Promise((r) => setTimeout(r, Math.random() * 2));
          const released = await store.release(ns, 'hot', grant.token);
          expect(released.released).toBe(true);
          tenures.push({ token: grant.token, fromUs: grant.atUs, toUs: released.atUs });
        }
      };
      await Promise.all(Array.from({ length: contenders }, contender));
      expect(tenures).toHaveLength(contenders * roundsEach);
      expect(refusals).toBeGreaterThan(0);
      const byGrant = [...tenures].sort((a, b) => a.fromUs - b.fromUs || a.token - b.token);
      for (let i = 1; i < byGrant.length; i++) {
        const before = byGrant[i - 1]!;
        const now = byGrant[i]!;
        // No overlap by the store's clock: the next grant comes at or after the previous release.
        expect(now.fromUs).toBeGreaterThanOrEqual(before.toUs);
        expect(now.token).toBeGreaterThan(before.token);
      }
    });
  });
}
