import { Writable } from 'node:stream';
import pino, { type Logger } from 'pino';

/** A pino logger whose JSON lines are kept in memory, for tests that read logs. */
export interface CapturedLog {
  readonly logger: Logger;
  /** Every line written so far, raw text. */
  readonly lines: string[];
  /** Lines parsed as JSON objects. */
  records(): Record<string, unknown>[];
}

/** Creates a logger at `level` writing synchronously into memory (pino destination stream). */
export function captureLog(name: string, level = 'debug'): CapturedLog {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) lines.push(line);
      done();
    },
  });
  const logger = pino({ name, level }, sink);
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, unknown>) };
}
