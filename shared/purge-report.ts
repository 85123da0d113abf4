import { z } from 'zod';
import { purgePositionSchema } from './schemas.ts';

/** Path on the origin that takes an edge's applied position (`POST`). */
export const purgeAppliedPath = '/api/v1/purge/applied';

/**
 * Namespace of the origin's staleness canary keys (`canary-<random>`, one per
 * origin process). Edges report the position of every purge in it they apply,
 * which is how an origin times its canary through its edges.
 */
export const purgeCanaryNamespace = 'strata-canary';

/**
 * What an edge reports to the origin it follows: the position in the purge
 * log it has applied up to. Sent when the edge's purge source comes up (its
 * starting position) and right after it applies a purge in
 * {@link purgeCanaryNamespace}. `edge_id` is `EDGE_ID`, else the Node edge's
 * `host:port` (as in its stats reports) or a random id per Deno edge process
 * (1–64 characters).
 */
export const purgeAppliedReportSchema = z.object({
  edge_id: z.string().min(1).max(64),
  position: purgePositionSchema,
});
export type PurgeAppliedReport = z.infer<typeof purgeAppliedReportSchema>;
