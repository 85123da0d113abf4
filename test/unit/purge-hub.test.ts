import { describe, expect, it } from 'vitest';
import { PurgeHub, parsePosition } from '../../origin/purge-hub.ts';
import type { PurgeMessage } from '../../shared/schemas.ts';

const purge = (key: string) => ({
  namespace: 'ns',
  keys: [key],
  tags: [],
  prefix: null,
  version: 1,
  action: 'delete' as const,
  ts: 0,
});

describe('purge hub', () => {
  it('numbers purges with a sequence that increases by one and delivers each to every subscriber', () => {
    const hub = new PurgeHub(10, 'e1');
    const a: PurgeMessage[] = [];
    const b: PurgeMessage[] = [];
    hub.subscribe((m) => a.push(m));
    const unsubscribe = hub.subscribe((m) => b.push(m));
    hub.publish(purge('k1'));
    unsubscribe();
    hub.publish(purge('k2'));
    expect(a.map((m) => m.seq)).toEqual([1, 2]);
    expect(b.map((m) => m.seq)).toEqual([1]);
    expect(hub.subscribers).toBe(1);
  });

  it('a reconnecting edge gets exactly the purges it missed, in order', () => {
    const hub = new PurgeHub(10, 'e1');
    for (let i = 1; i <= 7; i++) hub.publish(purge(`k${i}`));
    const replay = hub.catchUp({ epoch: 'e1', seq: 4 });
    expect(replay[0]).toEqual({ type: 'hello', epoch: 'e1', seq: 7 });
    expect(replay.slice(1).map((m) => (m.type === 'purge' ? m.keys[0] : m.type))).toEqual(['k5', 'k6', 'k7']);
  });

  it('an edge that is up to date gets only the hello', () => {
    const hub = new PurgeHub(10, 'e1');
    hub.publish(purge('k1'));
    expect(hub.catchUp({ epoch: 'e1', seq: 1 })).toEqual([{ type: 'hello', epoch: 'e1', seq: 1 }]);
  });

  it('a gap older than the ring buffer tells the edge to drop its tier', () => {
    const hub = new PurgeHub(3, 'e1');
    for (let i = 1; i <= 10; i++) hub.publish(purge(`k${i}`));
    expect(hub.catchUp({ epoch: 'e1', seq: 7 }).map((m) => m.type)).toEqual(['hello', 'purge', 'purge', 'purge']);
    const late = hub.catchUp({ epoch: 'e1', seq: 6 });
    expect(late.map((m) => m.type)).toEqual(['hello', 'reset']);
  });

  it('an edge from another origin lifetime (epoch) is told to drop its tier', () => {
    const hub = new PurgeHub(10, 'e2');
    expect(hub.catchUp({ epoch: 'e1', seq: 0 }).map((m) => m.type)).toEqual(['hello', 'reset']);
    expect(hub.catchUp({ epoch: 'e2', seq: 5 }).map((m) => m.type)).toEqual(['hello', 'reset']);
  });

  it('parses Last-Event-ID positions and rejects malformed ones', () => {
    expect(parsePosition('abc-1:42')).toEqual({ epoch: 'abc-1', seq: 42 });
    expect(parsePosition('a:b:7')).toEqual({ epoch: 'a:b', seq: 7 });
    for (const bad of [null, '', 'nocolon', ':5', 'e:-1', 'e:1.5', 'e:x']) expect(parsePosition(bad)).toBeNull();
  });

  it('refuses a buffer capacity below one', () => {
    expect(() => new PurgeHub(0)).toThrow(/capacity/);
  });
});
