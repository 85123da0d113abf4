import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The part of a V8 `.cpuprofile` (written by `node --cpu-prof`) the summary reads. */
interface CpuProfile {
  nodes: { id: number; hitCount?: number; callFrame: { functionName: string; url: string; lineNumber: number } }[];
  startTime: number;
  endTime: number;
}

/**
 * Where a process spent its CPU, from the `.cpuprofile` files `node
 * --cpu-prof --cpu-prof-dir=<dir>` wrote: each file's busy share (samples
 * outside `(idle)`) and its `top` functions by self time, as text lines.
 * Self time is a function's own samples, not its callees'.
 */
export function summariseCpuProfiles(dir: string, top = 8): string[] {
  const lines: string[] = [];
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) {
    const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
    const self = new Map<string, number>();
    let total = 0;
    let idle = 0;
    for (const node of profile.nodes) {
      const hits = node.hitCount ?? 0;
      total += hits;
      const { functionName, url, lineNumber } = node.callFrame;
      if (functionName === '(idle)') idle += hits;
      const where = url ? `${url.replace(/^.*\/(node_modules|strata[^/]*|wt\/[^/]+)\//, '$1/')}:${lineNumber + 1}` : '';
      const name = `${functionName || '(anonymous)'}${where ? ` ${where}` : ''}`;
      self.set(name, (self.get(name) ?? 0) + hits);
    }
    const busy = total - idle;
    const seconds = (profile.endTime - profile.startTime) / 1e6;
    lines.push(`${file}: ${seconds.toFixed(1)} s profiled, busy ${total ? ((100 * busy) / total).toFixed(1) : 0}%`);
    const ranked = [...self].filter(([name]) => !name.startsWith('(idle)')).sort((a, b) => b[1] - a[1]);
    for (const [name, hits] of ranked.slice(0, top)) {
      lines.push(`  ${((100 * hits) / Math.max(1, busy)).toFixed(1).padStart(5)}% of busy  ${name}`);
    }
  }
  return lines;
}
