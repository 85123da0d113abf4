import { describe, expect, it } from 'vitest';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { formatPosition, parsePosition } from '../../origin/purge/position.ts';
import { purgePositionSchema } from '../../shared/schemas.ts';
import { purgeBusConformance } from '../conformance/purge-bus.ts';

purgeBusConformance('in-process', ({ retainedEntries }) => new InProcessPurgeBus({ retainedEntries }), {
  sharedLog: false,
});

describe('in-process purge bus', () => {
  it('refuses a buffer capacity below one', () => {
    expect(() => new InProcessPurgeBus({ retainedEntries: 0 })).toThrow(/capacity/);
  });

  it('an edge ahead of the log (from the future of this incarnation) is told to reset', async () => {
    const bus = new InProcessPurgeBus({ retainedEntries: 10, incarnation: 'i1' });
    const events: string[] = [];
    bus.subscribe('in-process:i1:5', (e) => events.push(e.type));
    expect(events).toEqual(['reset']);
  });
});

describe('purge positions', () => {
  it('round-trip through their string form, which is a valid position on the wire', () => {
    const position = { log: 'in-process', incarnation: 'a1b2-c3', offset: '42' };
    const text = formatPosition(position);
    expect(purgePositionSchema.parse(text)).toBe(text);
    expect(parsePosition(text)).toEqual(position);
  });

  it('reject malformed values, including the older epoch:seq form', () => {
    for (const bad of [null, '', 'epoch:7', 'a:b:c:d', 'a::1', 'a:b c:1']) expect(parsePosition(bad)).toBeNull();
    expect(() => formatPosition({ log: 'a:b', incarnation: 'i', offset: '1' })).toThrow();
  });
});
