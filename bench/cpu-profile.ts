import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The part of a V8 `.cpuprofile` (written by `node --cpu-prof`) the summary reads. */
interface CpuProfile {
  nodes: {
    id: number;
    hitCount?: number;
    children?: number[];
    callFrame: { functionName: string; url: string; lineNumber: number };
  }[];
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
    const parent = new Map<number, number>();
    const byId = new Map(profile.nodes.map((n) => [n.id, n]));
    for (const node of profile.nodes) for (const child of node.children ?? []) parent.set(child, node.id);
    const label = (frame: CpuProfile['nodes'][number]['callFrame']) => {
      const where = frame.url
        ? ` ${frame.url.replace(/^.*\/(node_modules|origin|edge|shared|platform)\//, '$1/')}:${frame.lineNumber + 1}`
        : '';
      return `${frame.functionName || '(anonymous)'}${where}`;
    };
    const self = new Map<string, number>();
    // Native and Node-internal work (socket writes, string encoding) charged to the nearest library or Strata frame.
    const caller = new Map<string, number>();
    let total = 0;
    let idle = 0;
    for (const node of profile.nodes) {
      const hits = node.hitCount ?? 0;
      if (hits === 0) continue;
      total += hits;
      if (node.callFrame.functionName === '(idle)') {
        idle += hits;
        continue;
      }
      const name = label(node.callFrame);
      self.set(name, (self.get(name) ?? 0) + hits);
      let at: CpuProfile['nodes'][number] | undefined = node;
      while (at && (!at.callFrame.url || at.callFrame.url.startsWith('node:'))) at = byId.get(parent.get(at.id) ?? -1);
      const js = at ? label(at.callFrame) : name;
      caller.set(js, (caller.get(js) ?? 0) + hits);
    }
    const busy = total - idle;
    const seconds = (profile.endTime - profile.startTime) / 1e6;
    const share = (hits: number) => `${((100 * hits) / Math.max(1, busy)).toFixed(1).padStart(5)}% of busy`;
    const ranked = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top);
    lines.push(`${file}: ${seconds.toFixed(1)} s profiled, busy ${total ? ((100 * busy) / total).toFixed(1) : 0}%`);
    lines.push('  by self time:');
    for (const [name, hits] of ranked(self)) lines.push(`    ${share(hits)}  ${name}`);
    lines.push('  by nearest library or Strata caller:');
    for (const [name, hits] of ranked(caller)) lines.push(`    ${share(hits)}  ${name}`);
  }
  return lines;
}
