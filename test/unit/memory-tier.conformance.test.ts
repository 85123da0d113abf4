import { memoryTier } from '../../edge/core/memory-tier.ts';
import { evictionPolicies } from '../../shared/eviction/index.ts';
import { runEdgeTierConformance } from '../conformance/edge-tier.ts';

// At least 100 runs per property (fast-check prints the seed and path on failure).
const numRuns = Number(process.env.STRATA_PROPERTY_RUNS ?? 200);

for (const policy of evictionPolicies) {
  runEdgeTierConformance(
    `memory tier (${policy})`,
    ({ maxBytes, now }) => memoryTier({ maxBytes, now, policy }),
    {
      injectedClock: true,
      byteBudget: true,
    },
    { numRuns },
  );
}
