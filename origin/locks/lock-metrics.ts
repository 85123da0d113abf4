import { Counter, Gauge, type Registry } from 'prom-client';

/** What the lock service reports; `noLockMetrics` when none are kept. */
export interface LockMetrics {
  /** A grant was made (acquire succeeded). */
  acquired(namespace: string, name: string, token: number, expiresAtMs: number): void;
  /** A grant's lease moved. */
  renewed(namespace: string, name: string, token: number, expiresAtMs: number): void;
  /** A grant ended by release. */
  released(namespace: string, name: string, token: number): void;
  /** An acquire request found the lock held (counted once per request, however long it waits). */
  contended(): void;
  /** A grant's TTL ran out before a release (seen by the next acquire of that lock). */
  expired(): void;
}

export const noLockMetrics: LockMetrics = {
  acquired: () => {},
  renewed: () => {},
  released: () => {},
  contended: () => {},
  expired: () => {},
};

/**
 * Prometheus metrics of locks (prom-client, base units):
 * - `strata_locks_held` (gauge): grants made through this origin whose lease
 *   has not run out and that were not released, counted at scrape time;
 * - `strata_lock_acquired_total`, `strata_lock_contended_total` (acquire
 *   requests that found the lock held), `strata_lock_expired_total` (grants
 *   whose TTL ran out unreleased, counted when the next acquire of that lock
 *   sees it, on any origin sharing the store).
 * Lock names are never labels.
 *
 * @param nowMs clock of the gauge's lease check, Unix ms.
 */
export function lockMetrics(registry: Registry, nowMs: () => number = Date.now): LockMetrics {
  const held = new Map<string, { token: number; expiresAtMs: number }>();
  const id = (namespace: string, name: string) => `${namespace}\u0000${name}`;
  new Gauge({
    name: 'strata_locks_held',
    help: 'Locks granted through this origin and neither released nor expired.',
    registers: [registry],
    collect() {
      const now = nowMs();
      for (const [k, grant] of held) if (grant.expiresAtMs <= now) held.delete(k);
      this.set(held.size);
    },
  });
  const acquired = new Counter({
    name: 'strata_lock_acquired_total',
    help: 'Lock grants.',
    registers: [registry],
  });
  const contended = new Counter({
    name: 'strata_lock_contended_total',
    help: 'Acquire requests that found the lock held.',
    registers: [registry],
  });
  const expired = new Counter({
    name: 'strata_lock_expired_total',
    help: 'Lock grants whose TTL ran out before a release.',
    registers: [registry],
  });
  return {
    acquired(namespace, name, token, expiresAtMs) {
      acquired.inc();
      held.set(id(namespace, name), { token, expiresAtMs });
    },
    renewed(namespace, name, token, expiresAtMs) {
      held.set(id(namespace, name), { token, expiresAtMs });
    },
    released(namespace, name, token) {
      const k = id(namespace, name);
      if (held.get(k)?.token === token) held.delete(k);
    },
    contended: () => contended.inc(),
    expired: () => expired.inc(),
  };
}
