import { z } from 'zod';

/**
 * The origin's health event, ICD §3.1.2 (`cache.health.status`), with two
 * fields added inside `data` for consumers that aggregate several origins:
 * `service_id` and `timestamp` (ISO 8601), as the ICD's cache events carry.
 *
 * - `status`: `healthy` (store reachable, breaker closed), `degraded`
 *   (breaker not closed: reads served by the origin's local tier, writes not
 *   yet durable).
 * - `metrics.hit_rate`: reads answered (hit or stale) ÷ reads, at the origin,
 *   over the last interval; 0 when the interval had no reads (`ops_rate` 0).
 * - `metrics.memory_usage`: V8 heap used ÷ heap limit of the origin process, 0..1.
 * - `metrics.ops_rate`: requests per second at the origin over the interval, rounded.
 */
export const healthEventSchema = z.object({
  event: z.literal('cache.health.status'),
  data: z.object({
    status: z.enum(['healthy', 'degraded']),
    metrics: z.object({
      hit_rate: z.number().min(0).max(1),
      memory_usage: z.number().min(0),
      ops_rate: z.number().int().nonnegative(),
    }),
    service_id: z.string(),
    timestamp: z.string(),
  }),
});
export type HealthEvent = z.infer<typeof healthEventSchema>;
