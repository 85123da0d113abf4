import { Counter, type Registry } from 'prom-client';
import type { EvictionCounts } from '../../shared/eviction/index.ts';

/** A counter by `policy` and `reason` that follows monotonic counts kept by the tier itself, read at scrape time. */
export function evictionCounter(
  registry: Registry,
  name: string,
  help: string,
  policy: string,
  read: () => EvictionCounts,
): void {
  const seen = { evict: 0, expire: 0 };
  new Counter({
    name,
    help,
    labelNames: ['policy', 'reason'] as const,
    registers: [registry],
    collect() {
      const now = read();
      for (const reason of ['evict', 'expire'] as const) {
        // inc(0) still creates the series, so a dashboard sees 0 before the first eviction.
        this.inc({ policy, reason }, Math.max(0, now[reason] - seen[reason]));
        seen[reason] = now[reason];
      }
    },
  });
}
