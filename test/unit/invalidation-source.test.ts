import { inProcessSource } from '../../origin/invalidation/in-process-source.ts';
import { invalidationSourceConformance } from '../conformance/invalidation-source.ts';

invalidationSourceConformance(
  'in-process',
  async (applier) => {
    const source = inProcessSource(applier);
    // One producer handing events over one after another, as `POST /api/v1/invalidations` callers do.
    let handing: Promise<unknown> = Promise.resolve();
    return {
      source,
      async deliver(deliveries) {
        handing = handing.then(async () => {
          for (const { event } of deliveries) await source.publish(event);
        });
      },
      async close() {
        await source.stop();
        await handing;
      },
    };
  },
  { applyTimeoutMs: 5_000 },
);
