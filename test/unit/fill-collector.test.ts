import { constants, PerformanceObserver } from 'node:perf_hooks';
import { describe, expect, it } from 'vitest';
import {
  collectEveryBytes,
  collectionPace,
  fillCollector,
  minCollectEveryBytes,
} from '../../edge/adapters/node/fill-collector.ts';

const MiB = 1024 * 1024;

describe('collectEveryBytes', () => {
  it('is an eighth of the budget, never under 4 MiB', () => {
    expect(collectEveryBytes(64 * MiB)).toBe(8 * MiB);
    expect(collectEveryBytes(32 * MiB)).toBe(minCollectEveryBytes);
    expect(collectEveryBytes(1 * MiB)).toBe(minCollectEveryBytes);
    expect(collectEveryBytes(1024 * MiB)).toBe(128 * MiB);
  });
});

describe('collectionPace', () => {
  it('is off at 0, the budget-derived pace for auto, and a byte count as given', () => {
    expect(collectionPace(0, 64 * MiB)).toBe(0);
    expect(collectionPace('auto', 64 * MiB)).toBe(8 * MiB);
    expect(collectionPace(5 * MiB, 64 * MiB)).toBe(5 * MiB);
  });
});

describe('fillCollector', () => {
  it('asks for one collection per `everyBytes` of bodies read, and none before', () => {
    let asked = 0;
    const onBody = fillCollector(100, () => asked++);
    onBody(60);
    expect([asked, onBody.collections]).toEqual([0, 0]);
    onBody(39);
    expect(asked).toBe(0);
    onBody(1); // 100 bytes: the first collection
    expect([asked, onBody.collections]).toEqual([1, 1]);
    onBody(250); // one body past the pace still asks once, then the count starts over
    expect(asked).toBe(2);
    onBody(99);
    expect(asked).toBe(2);
    onBody(0);
    expect(asked).toBe(2);
    onBody(1);
    expect([asked, onBody.collections]).toEqual([3, 3]);
  });

  it('by default runs a real full (mark-compact) collection of V8, without --expose-gc', async () => {
    let majors = 0;
    const observer = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) {
        if ((entry as { detail?: { kind?: number } }).detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majors++;
      }
    });
    observer.observe({ entryTypes: ['gc'] });
    try {
      const onBody = fillCollector(1_000);
      onBody(1_000);
      expect(onBody.collections).toBe(1);
      const deadline = Date.now() + 5_000;
      while (majors === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      expect(majors).toBeGreaterThan(0);
    } finally {
      observer.disconnect();
    }
  });
});
