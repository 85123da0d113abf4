import { memoryTier } from '../../edge/core/memory-tier.ts';
import { runEdgeTierConformance } from '../conformance/edge-tier.ts';

// At least 100 runs per property (fast-check prints the seed and path on failure).
const numRuns = Number(process.env.STRATA_PROPERTY_RUNS ?? 200);

runEdgeTierConformance(
  'memory tier',
  ({ maxBytes, now }) => memoryTier({ maxBytes, now }),
  {
    injectedClock: true,
    byteBudget: true,
  },
  { numRuns },
);
