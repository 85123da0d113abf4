import { describe, expect, it } from 'vitest';
import { canaryNamespace } from '../../origin/purge/canary.ts';
import { CrossRegionCanary } from '../../origin/regions/canary-arrivals.ts';

describe('the staleness canary seen from another region', () => {
  it('records the lag of each canary write per source region and ignores other purges', () => {
    let now = 10_000;
    const lags: [string, number][] = [];
    const canary = new CrossRegionCanary({ now: () => now, onLag: (source, ms) => lags.push([source, ms]) });
    expect(canary.observe('a', { namespace: 'users', timestamp: 9_000 })).toBe(false);
    expect(canary.sources()).toEqual([]);

    expect(canary.observe('a', { namespace: canaryNamespace, timestamp: 9_950 })).toBe(true);
    now = 10_500;
    expect(canary.observe('c', { namespace: canaryNamespace, timestamp: 10_420 })).toBe(true);
    expect(lags).toEqual([
      ['a', 50],
      ['c', 80],
    ]);
    expect(canary.sources()).toEqual(['a', 'c']);
    expect(canary.last('a')).toEqual({ writtenAtMs: 9_950, appliedAtMs: 10_000, lagMs: 50 });
  });

  it('how far behind a source region this one may be grows while no canary arrives, and drops when one does', () => {
    let now = 1_000_000;
    const canary = new CrossRegionCanary({ now: () => now });
    expect(canary.behindSeconds('a')).toBeNull();
    canary.observe('a', { namespace: canaryNamespace, timestamp: now - 40 });
    expect(canary.behindSeconds('a')).toBeCloseTo(0.04, 6);

    // The link is down: nothing arrives for 12.5 s.
    now += 12_500;
    expect(canary.behindSeconds('a')).toBeCloseTo(12.54, 6);
    expect(canary.readiness()).toEqual({
      a: { canary_at: new Date(1_000_000 - 40).toISOString(), behind_seconds: 12.5, lag_ms: 40 },
    });

    // Healed: the backlog arrives, oldest first; each arrival moves the newest write forward.
    canary.observe('a', { namespace: canaryNamespace, timestamp: now - 11_000 });
    canary.observe('a', { namespace: canaryNamespace, timestamp: now - 30 });
    expect(canary.behindSeconds('a')).toBeCloseTo(0.03, 6);
    // A redelivered older write does not move it back.
    canary.observe('a', { namespace: canaryNamespace, timestamp: now - 11_000 });
    expect(canary.last('a')?.writtenAtMs).toBe(now - 30);
  });

  it('a source clock ahead of this one never gives a negative lag', () => {
    const canary = new CrossRegionCanary({ now: () => 5_000 });
    canary.observe('a', { namespace: canaryNamespace, timestamp: 5_020 });
    expect(canary.last('a')?.lagMs).toBe(0);
    expect(canary.behindSeconds('a')).toBe(0);
  });
});
