import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { parse } from 'csv-parse';
import { keySchema } from '../../shared/keys.ts';
import { type WarmEntry, warmCsvRowSchema, warmEntrySchema } from '../../shared/warm.ts';

/**
 * Readers of a warm job's input, each a stream read a line (or CSV record)
 * at a time, so a file of any size is never held whole.
 */

/** One item of an entries file: the entry, or why its line was refused. */
export type EntryItem =
  | { readonly line: number; readonly entry: WarmEntry }
  | { readonly line: number; readonly key: string | null; readonly reason: string };

const issue = (error: { issues: readonly { path: PropertyKey[]; message: string }[] }) => {
  const first = error.issues[0];
  return first ? `${first.path.length ? `${first.path.join('.')}: ` : ''}${first.message}` : 'invalid entry';
};

const keyOf = (value: unknown): string | null =>
  typeof value === 'object' && value !== null && typeof (value as { key?: unknown }).key === 'string'
    ? (value as { key: string }).key
    : null;

/** JSON Lines (jsonlines.org): one {@link warmEntrySchema} object a line; blank lines are skipped. */
export async function* jsonlEntries(input: Readable): AsyncGenerator<EntryItem> {
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    line++;
    if (text.trim() === '') continue;
    let raw: unknown;
    try {
      raw = JSON.parse(text);
    } catch {
      yield { line, key: null, reason: 'not a JSON object' };
      continue;
    }
    const parsed = warmEntrySchema.safeParse(raw);
    yield parsed.success ? { line, entry: parsed.data } : { line, key: keyOf(raw), reason: issue(parsed.error) };
  }
}

/** CSV (RFC 4180) with a header row naming the columns of {@link warmCsvRowSchema}; `line` counts records, header excluded. */
export async function* csvEntries(input: Readable): AsyncGenerator<EntryItem> {
  const parser = input.pipe(
    parse({ columns: true, skip_empty_lines: true, relax_column_count: true, bom: true, trim: false }),
  );
  let line = 0;
  try {
    for await (const row of parser as AsyncIterable<Record<string, string>>) {
      line++;
      const parsed = warmCsvRowSchema.safeParse(row);
      yield parsed.success ? { line, entry: parsed.data } : { line, key: keyOf(row), reason: issue(parsed.error) };
    }
  } catch (error) {
    // A malformed record (an unclosed quote) ends the parse: the rest of the file is one failure, not silence.
    yield { line: line + 1, key: null, reason: `CSV: ${error instanceof Error ? error.message : String(error)}` };
  }
}

/** One key a line (blank lines skipped); a line that is not a valid key is refused. */
export async function* keyLines(
  input: Readable,
): AsyncGenerator<{ readonly line: number; readonly key: string } | Extract<EntryItem, { reason: string }>> {
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    line++;
    const key = text.trim();
    if (key === '') continue;
    const parsed = keySchema.safeParse(key);
    yield parsed.success ? { line, key } : { line, key: null, reason: issue(parsed.error) };
  }
}

/**
 * The `top` most requested keys of a block trace CSV (`version,time,op,size,lbn`,
 * the CloudPhysics format of the replay tooling), most requested first; ties
 * keep first-seen order. Reads and writes both count as requests.
 * @throws Error naming the line of a malformed record.
 */
export async function hottestKeys(input: Readable, top: number): Promise<string[]> {
  const counts = new Map<string, number>();
  let line = 0;
  for await (const text of createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY })) {
    line++;
    if (line === 1 && text.startsWith('version')) continue;
    if (text.trim() === '') continue;
    const lbn = text.split(',')[4]?.trim();
    if (!lbn) throw new Error(`trace line ${line}: expected version,time,op,size,lbn`);
    counts.set(lbn, (counts.get(lbn) ?? 0) + 1);
  }
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([key]) => key);
}
