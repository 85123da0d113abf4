import type { EdgeLogger } from '../../build-edge.ts';

const levels = ['debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

/**
 * A structured logger for the Deno edge: one JSON object per line on stderr
 * (`level`, `time` in Unix ms, `name`, `msg`, then the record's fields),
 * pino's shape, so the same log pipeline reads both edges. Records below
 * `level` are dropped; errors are written with their message and stack.
 */
export function jsonLinesLogger(level: string, name: string): EdgeLogger {
  const threshold = Math.max(0, levels.indexOf(level as (typeof levels)[number]));
  const write = (at: (typeof levels)[number]) => (record: object, msg: string) => {
    if (levels.indexOf(at) < threshold) return;
    const fields = Object.fromEntries(
      Object.entries(record).map(([k, v]) => [k, v instanceof Error ? { message: v.message, stack: v.stack } : v]),
    );
    console.error(JSON.stringify({ level: at, time: Date.now(), name, msg, ...fields }));
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}
