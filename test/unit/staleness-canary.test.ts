import { describe, expect, it } from 'vitest';
import { canaryNamespace, StalenessCanary } from '../../origin/purge/canary.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';

/** The canary's per-edge bookkeeping over the in-process bus, with a fake clock (ms). */
function setup() {
  let nowMs = 1_000_000;
  const bus = new InProcessPurgeBus({ retainedEntries: 100 });
  const applied: [string, number][] = [];
  const forgotten: string[] = [];
  const canary = new StalenessCanary({
    intervalSeconds: 1,
    now: () => nowMs,
    // The write's purge lands in the log the way the cache service's set puts it there.
    write: async (namespace, key) => {
      await bus.publish({ namespace, keys: [key], tags: [], prefix: null, version: 1, action: 'update', ts: nowMs });
    },
    onApplied: (edgeId, ms) => applied.push([edgeId, ms]),
    onForget: (edgeId) => forgotten.push(edgeId),
  });
  canary.instrument(bus);
  const lastPosition = () => bus.health().position;
  return { canary, applied, forgotten, lastPosition, bus, advance: (ms: number) => (nowMs += ms) };
}

const edge = (canary: StalenessCanary, id: string) => canary.applied.find((e) => e.edgeId === id);

describe('the staleness canary, per edge', () => {
  it("times an edge from the probe's write to its report of the probe's position", async () => {
    const { canary, applied, lastPosition, advance } = setup();
    canary.report('a', 'in-process:x:0');
    await canary.probe();
    const position = lastPosition();
    advance(40);
    canary.report('a', position);
    // A repeated report of the same probe is not a second sample.
    advance(10);
    canary.report('a', position);
    expect(applied).toEqual([['a', 40]]);
    expect(edge(canary, 'a')).toEqual({ edgeId: 'a', lagMs: 40, behindMs: 0, lagging: false });
    expect(canary.reading?.applied).toHaveLength(1);
  });

  it('shows an edge that applied no probe for a whole interval as lagging, until it catches up', async () => {
    const { canary, applied, lastPosition, advance } = setup();
    canary.report('a', 'p0');
    canary.report('b', 'p0');
    await canary.probe();
    const first = lastPosition();
    advance(20);
    canary.report('a', first);
    advance(1_000);
    await canary.probe();
    const second = lastPosition();
    advance(5);
    canary.report('a', second);
    expect(edge(canary, 'a')?.lagging).toBe(false);
    expect(edge(canary, 'b')).toMatchObject({ lagMs: null, behindMs: 1_025, lagging: true });
    // B comes back and replays the gap; reporting the later probe covers the earlier one (log order).
    advance(100);
    canary.report('b', second);
    expect(edge(canary, 'b')).toEqual({ edgeId: 'b', lagMs: 105, behindMs: 0, lagging: false });
    expect(applied.filter(([id]) => id === 'b')).toEqual([['b', 105]]);
  });

  it('does not expect probes from before an edge was first seen, and forgets an edge that stopped reporting', async () => {
    const { canary, forgotten, advance } = setup();
    await canary.probe();
    advance(5_000);
    canary.report('late', 'p0');
    expect(edge(canary, 'late')).toMatchObject({ behindMs: 0, lagging: false });
    advance(canary.forgetMs + 1);
    // The next probe forgets it, whether or not anyone looks at the reading.
    await canary.probe();
    expect(forgotten).toEqual(['late']);
    expect(edge(canary, 'late')).toBeUndefined();
  });

  it("does not count another origin's canary purge as its own", async () => {
    const { canary, applied, lastPosition, bus } = setup();
    canary.report('a', 'p0');
    await canary.probe();
    await bus.publish({
      namespace: canaryNamespace,
      keys: ['canary-another-origin'],
      tags: [],
      prefix: null,
      version: 1,
      action: 'update',
      ts: Date.now(),
    });
    canary.report('a', lastPosition());
    expect(applied).toEqual([]);
    expect(edge(canary, 'a')?.lagMs).toBeNull();
  });
});
