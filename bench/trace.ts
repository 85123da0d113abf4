import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** One request of the CloudPhysics block trace (`../shared/data/traces/README.md`). */
export interface TraceRequest {
  /** Seconds (integer, monotonic). */
  readonly time: number;
  readonly op: 'read' | 'write';
  /** Value size, bytes. */
  readonly size: number;
  /** Logical block number, used as the cache key. */
  readonly key: string;
}

/** Default location of the provided trace, relative to the repository. */
export const defaultTracePath = resolve(
  import.meta.dirname,
  '..',
  '..',
  'shared',
  'data',
  'traces',
  'cloudphysics-sample.csv',
);

/**
 * Reads a trace CSV (`version,time,op,size,lbn`): op `28` (SCSI READ(10)) →
 * read, `2a` (WRITE(10)) → write, `lbn` → key, `size` → value bytes.
 * @throws Error naming the path when the file is absent or malformed.
 */
export function loadTrace(path = defaultTracePath, limit = Number.POSITIVE_INFINITY): TraceRequest[] {
  if (!existsSync(path)) {
    throw new Error(
      `trace not found at ${path}; it ships in ../shared/data/traces/ beside this repository (pass --trace <csv>)`,
    );
  }
  const lines = readFileSync(path, 'utf8').split('\n');
  const out: TraceRequest[] = [];
  for (let i = 1; i < lines.length && out.length < limit; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    const [, time, op, size, lbn] = line.split(',');
    if (op !== '28' && op !== '2a') throw new Error(`${path}:${i + 1}: unknown op '${op}'`);
    const bytes = Number(size);
    if (!Number.isInteger(bytes) || bytes < 0 || !lbn) throw new Error(`${path}:${i + 1}: malformed line`);
    out.push({ time: Number(time), op: op === '28' ? 'read' : 'write', size: bytes, key: lbn });
  }
  return out;
}

/** The p-th percentile (0–100) of a list of numbers, nearest-rank; NaN when empty. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[rank]!;
}

/** Renders rows as a fixed-width text table. */
export function table(header: string[], rows: (string | number)[][]): string {
  const cells = [header, ...rows.map((r) => r.map(String))];
  const widths = header.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)));
  const line = (r: string[]) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...cells.slice(1).map(line)].join('\n');
}
