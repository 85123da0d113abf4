import type { EdgeMetrics, EdgeMetricsSources } from './build-edge.ts';
import type { EdgeTier } from './core/tier.ts';

/** Content-Type of the Prometheus text exposition format 0.0.4. */
const textFormat = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * Edge metrics in the Prometheus text exposition format, without
 * prom-client (which needs Node): for runtimes that can be scraped but are
 * not Node (Deno). Counters and gauges only, the same names as the Node
 * edge's (`edge/adapters/node/metrics.ts`) where they overlap; request
 * latency is summed (`strata_edge_request_seconds_sum`, seconds) rather than
 * bucketed. Label values are escaped per the format.
 */
export function textEdgeMetrics(tier: EdgeTier, sources: EdgeMetricsSources): EdgeMetrics {
  const requests = new Map<string, { labels: string; count: number; seconds: number }>();
  const purges = new Map<string, number>();
  const revalidations = new Map<string, number>();
  const sharedTier = new Map<string, number>();
  let originLoads = 0;
  let purged = 0;
  let reconnects = 0;
  let lapses = 0;
  const bump = (map: Map<string, number>, key: string) => map.set(key, (map.get(key) ?? 0) + 1);
  return {
    contentType: textFormat,
    request(operation, t, result, seconds) {
      // Labels are rendered once per combination, not per request (the hit path calls this on every hit).
      const key = `${operation}\n${t}\n${result}`;
      let r = requests.get(key);
      if (!r) {
        r = { labels: labels({ operation, tier: t, result }), count: 0, seconds: 0 };
        requests.set(key, r);
      }
      r.count++;
      r.seconds += seconds;
    },
    originLoad: () => {
      originLoads++;
    },
    purgeApplied(type, removed) {
      bump(purges, labels({ type }));
      purged += removed;
    },
    reconnect: () => {
      reconnects++;
    },
    leaseLapse: () => {
      lapses++;
    },
    revalidation: (outcome) => {
      bump(revalidations, labels({ outcome }));
    },
    sharedTier: (outcome) => {
      bump(sharedTier, labels({ outcome }));
    },
    async render() {
      const age = sources.leaseAgeMs();
      const lines: string[] = [];
      const metric = (name: string, type: string, help: string, samples: [string, number][]) => {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
        for (const [l, v] of samples) lines.push(`${name}${l} ${v}`);
      };
      metric(
        'strata_edge_requests_total',
        'counter',
        'Requests by operation, tier and result.',
        [...requests.values()].map((r) => [r.labels, r.count]),
      );
      metric(
        'strata_edge_request_seconds_sum',
        'counter',
        'Seconds spent answering requests, by operation, tier and result.',
        [...requests.values()].map((r) => [r.labels, r.seconds]),
      );
      metric('strata_edge_origin_loads_total', 'counter', 'Origin loads after coalescing concurrent misses.', [
        ['', originLoads],
      ]);
      metric('strata_edge_purge_messages_total', 'counter', 'Purge messages applied, by type.', [...purges]);
      metric('strata_edge_purged_entries_total', 'counter', 'Entries removed by purges and resets.', [['', purged]]);
      metric('strata_edge_purge_stream_reconnects_total', 'counter', 'Times the purge stream was lost.', [
        ['', reconnects],
      ]);
      metric('strata_edge_purge_stream_connected', 'gauge', '1 while the purge source is in contact.', [
        ['', sources.subscribed() ? 1 : 0],
      ]);
      metric(
        'strata_edge_lease_age_seconds',
        'gauge',
        "Seconds since the origin last confirmed this edge's view of the purge log with a live tail (-1 before the first).",
        [['', age === null ? -1 : age / 1000]],
      );
      metric('strata_edge_lease_lapses_total', 'counter', 'Times the lease on the tier lapsed.', [['', lapses]]);
      metric(
        'strata_edge_revalidations_total',
        'counter',
        'Per-key revalidations with the origin while the lease was lapsed, by outcome.',
        [...revalidations],
      );
      metric(
        'strata_edge_shared_tier_lookups_total',
        'counter',
        'Lookups in the shared second tier (Workers Cache API) by outcome (hit; miss: absent or refused), and failed calls to it (error).',
        [...sharedTier],
      );
      metric('strata_edge_tier_entries', 'gauge', 'Entries in the near-user tier.', [['', tier.size]]);
      metric('strata_edge_tier_bytes', 'gauge', 'Bytes counted against EDGE_MAX_BYTES.', [['', tier.bytes]]);
      return `${lines.join('\n')}\n`;
    },
  };
}

function labels(values: Record<string, string>): string {
  const escaped = Object.entries(values).map(
    ([k, v]) => `${k}="${v.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('"', '\\"')}"`,
  );
  return `{${escaped.join(',')}}`;
}
