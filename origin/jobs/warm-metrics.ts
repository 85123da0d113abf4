import { Counter, Gauge, type Registry } from 'prom-client';
import type { WarmEvents } from './warm-jobs.ts';

/**
 * Prometheus metrics of warm jobs on this replica:
 * `strata_warm_jobs_running` (gauge), `strata_warm_items_total{result="loaded|failed"}`
 * (counter) and `strata_warm_hit_ratio{namespace}` (gauge, hits / reads of the
 * namespace on this replica since its latest warm job started: the hit rate while warming).
 */
export function warmMetrics(registry: Registry): WarmEvents {
  const running = new Gauge({
    name: 'strata_warm_jobs_running',
    help: 'Warm jobs running on this replica.',
    registers: [registry],
  });
  const items = new Counter({
    name: 'strata_warm_items_total',
    help: 'Items warm jobs loaded or failed to load on this replica.',
    labelNames: ['result'] as const,
    registers: [registry],
  });
  const hitRatio = new Gauge({
    name: 'strata_warm_hit_ratio',
    help: "Hit ratio of the namespace's reads on this replica since its latest warm job started.",
    labelNames: ['namespace'] as const,
    registers: [registry],
  });
  items.inc({ result: 'loaded' }, 0);
  items.inc({ result: 'failed' }, 0);
  return {
    onRunning: (delta) => running.inc(delta),
    onItems: (result, n) => {
      if (n > 0) items.inc({ result }, n);
    },
    onHitRatio: (namespace, ratio) => {
      if (ratio !== null) hitRatio.set({ namespace }, ratio);
    },
  };
}
