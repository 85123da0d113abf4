import { Counter, Gauge, type Registry } from 'prom-client';
import type { BreakerState } from './breaker.ts';
import type { Resilience } from './store/store.ts';

const breakerStates: readonly BreakerState[] = ['closed', 'open', 'half-open', 'isolated'];

/**
 * Registers the breaker and fallback-tier metrics on the origin's registry:
 * `strata_breaker_state{state}` (1 for the current state, else 0),
 * `strata_breaker_transitions_total{to}`, `strata_fallback_reads_total{result}`
 * (`hit` served locally, `miss` refused with CACHE_005),
 * `strata_dirty_entries` (changes waiting for write-back) and
 * `strata_write_back_total{result}` (`written`, `skipped_newer`).
 */
export function registerResilienceMetrics(registry: Registry, store: Resilience): void {
  new Gauge({
    name: 'strata_breaker_state',
    help: 'Circuit breaker around Redis: 1 for the current state.',
    labelNames: ['state'] as const,
    registers: [registry],
    collect() {
      for (const state of breakerStates) this.set({ state }, store.breaker.state === state ? 1 : 0);
    },
  });
  const transitions = new Counter({
    name: 'strata_breaker_transitions_total',
    help: 'Circuit breaker state changes, by new state.',
    labelNames: ['to'] as const,
    registers: [registry],
  });
  store.breaker.onStateChange((to) => transitions.inc({ to }));
  new Counter({
    name: 'strata_fallback_reads_total',
    help: 'Reads while Redis was unavailable: hit = served by the local tier, miss = refused with CACHE_005.',
    labelNames: ['result'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ result: 'hit' }, store.stats.fallbackHits);
      this.inc({ result: 'miss' }, store.stats.fallbackMisses);
    },
  });
  new Gauge({
    name: 'strata_dirty_entries',
    help: 'Writes and deletes accepted during a Redis outage, not yet written back.',
    registers: [registry],
    collect() {
      this.set(store.local.dirtyCount);
    },
  });
  new Counter({
    name: 'strata_write_back_total',
    help: 'Dirty changes settled after an outage: written, or skipped because Redis held a newer version.',
    labelNames: ['result'] as const,
    registers: [registry],
    collect() {
      this.reset();
      this.inc({ result: 'written' }, store.stats.writtenBack);
      this.inc({ result: 'skipped_newer' }, store.stats.skippedNewer);
    },
  });
}
