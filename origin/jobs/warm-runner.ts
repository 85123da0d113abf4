import { createReadStream, type ReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { fromBase64 } from '../../shared/bytes.ts';
import { CacheError } from '../../shared/errors.ts';
import type { FailedItem, WarmEntry, WarmFormat } from '../../shared/warm.ts';
import type { CacheService, WriteRequest } from '../cache-service.ts';
import { csvEntries, type EntryItem, hottestKeys, jsonlEntries, keyLines } from './inputs.ts';
import { fetchValue, OriginNotAllowed, type UrlFetchOptions, urlFor } from './url-source.ts';

/** What a warm job loads, after validation. */
export interface WarmSpec {
  readonly namespace: string;
  readonly format: WarmFormat;
  readonly urlTemplate?: string | undefined;
  /** Hottest keys of a trace to load. */
  readonly top: number;
  readonly concurrency: number;
  readonly retries: number;
  /** Seconds, for entries that give none; absent = the service's default. */
  readonly ttlSeconds?: number | undefined;
}

/** Where the data is: a file (an upload spooled to disk, or a `WARM_ON_START` file) or inline keys. */
export type WarmInput = { readonly path: string } | { readonly keys: readonly string[] };

/** Counters of a running job, read by its heartbeat. */
export interface RunProgress {
  total: number | null;
  done: number;
  failed: number;
  bytes: number;
  /** Failures not yet written to the job store. */
  readonly pending: FailedItem[];
  inputBytes(): number;
}

/** Entries written per store call. */
const batchSize = 500;

const encoder = new TextEncoder();

/** Opens the input, counting bytes read from a file. */
function open(input: WarmInput): { stream: Readable; bytesRead: () => number } {
  if ('path' in input) {
    const stream: ReadStream = createReadStream(input.path);
    return { stream, bytesRead: () => stream.bytesRead };
  }
  const text = input.keys.join('\n');
  return { stream: Readable.from([text]), bytesRead: () => 0 };
}

/**
 * Runs one warm job to its end (or until `signal` aborts): entries files are
 * written in batches through `CacheService.setMany` (the normal write path:
 * purge intent, store write, purge log), falling back to one `set` per entry
 * when a batch fails so each failure names its item; URL sources fetch
 * `concurrency` keys at once, each written with `CacheService.set`.
 * Every item ends as done or failed, never skipped.
 * @throws Error when the input as a whole cannot be read (a malformed trace).
 */
export async function runWarm(
  spec: WarmSpec,
  input: WarmInput,
  deps: { readonly service: CacheService; readonly fetch: UrlFetchOptions },
  progress: RunProgress,
  signal: AbortSignal,
): Promise<void> {
  const { stream, bytesRead } = open(input);
  progress.inputBytes = bytesRead;
  try {
    if (spec.format === 'jsonl' || spec.format === 'csv') {
      const items = spec.format === 'jsonl' ? jsonlEntries(stream) : csvEntries(stream);
      await loadEntries(spec, items, deps.service, progress, signal);
      progress.total = progress.done + progress.failed;
      return;
    }
    const fail = (key: string | null, line: number | null, reason: string) => {
      progress.failed++;
      progress.pending.push({ key, line, reason });
    };
    let keys: AsyncIterator<{ key: string; line: number | null } | null>;
    if (spec.format === 'trace') {
      const hottest = await hottestKeys(stream, spec.top);
      progress.total = hottest.length;
      keys = (async function* () {
        for (const key of hottest) yield { key, line: null };
      })();
    } else {
      keys = (async function* () {
        for await (const item of keyLines(stream)) {
          if ('reason' in item) {
            fail(item.key, item.line, item.reason);
            yield null;
          } else yield { key: item.key, line: null };
        }
      })();
    }
    const template = spec.urlTemplate!;
    const worker = async () => {
      for (;;) {
        if (signal.aborted) return;
        const next = await keys.next();
        if (next.done) return;
        if (next.value === null) continue;
        const { key, line } = next.value;
        try {
          const fetched = await fetchValue(urlFor(template, key), { ...deps.fetch, retries: spec.retries }, signal);
          await deps.service.set(spec.namespace, key, {
            value: fetched.value,
            contentType: fetched.contentType,
            ttlSeconds: spec.ttlSeconds,
          });
          progress.done++;
          progress.bytes += fetched.value.byteLength;
        } catch (error) {
          if (signal.aborted) return;
          fail(key, line, reasonOf(error));
        }
      }
    };
    await Promise.all(Array.from({ length: spec.concurrency }, worker));
    if (!signal.aborted && spec.format === 'keys') progress.total = progress.done + progress.failed;
  } finally {
    stream.destroy();
  }
}

function reasonOf(error: unknown): string {
  if (error instanceof CacheError) return `${error.code}: ${error.message}`;
  if (error instanceof OriginNotAllowed) return error.message;
  return error instanceof Error ? error.message : String(error);
}

function toRequest(entry: WarmEntry, ttlSeconds: number | undefined): WriteRequest {
  const value = entry.encoding === 'base64' ? fromBase64(entry.value) : encoder.encode(entry.value);
  return {
    value,
    contentType:
      entry.content_type ?? (entry.encoding === 'base64' ? 'application/octet-stream' : 'text/plain; charset=utf-8'),
    ttlSeconds: entry.ttl ?? ttlSeconds,
    tags: entry.tags,
  };
}

async function loadEntries(
  spec: WarmSpec,
  items: AsyncIterable<EntryItem>,
  service: CacheService,
  progress: RunProgress,
  signal: AbortSignal,
): Promise<void> {
  const batch = new Map<string, { line: number; request: WriteRequest }>();
  const fail = (key: string | null, line: number, reason: string) => {
    progress.failed++;
    progress.pending.push({ key, line, reason });
  };
  const flush = async () => {
    if (batch.size === 0) return;
    const requests = new Map([...batch].map(([key, b]) => [key, b.request]));
    try {
      await service.setMany(spec.namespace, requests);
      progress.done += batch.size;
      for (const b of batch.values()) progress.bytes += b.request.value.byteLength;
    } catch {
      // One bad entry fails a whole batch: write them one by one so each failure names its own item.
      for (const [key, b] of batch) {
        try {
          await service.set(spec.namespace, key, b.request);
          progress.done++;
          progress.bytes += b.request.value.byteLength;
        } catch (error) {
          fail(key, b.line, reasonOf(error));
        }
      }
    }
    batch.clear();
  };
  for await (const item of items) {
    if (signal.aborted) return;
    if (!('entry' in item)) {
      fail(item.key, item.line, item.reason);
      continue;
    }
    let request: WriteRequest;
    try {
      request = toRequest(item.entry, spec.ttlSeconds);
    } catch (error) {
      fail(item.entry.key, item.line, reasonOf(error));
      continue;
    }
    // A key given twice in one batch would count once: the earlier write goes first.
    if (batch.has(item.entry.key)) await flush();
    batch.set(item.entry.key, { line: item.line, request });
    if (batch.size >= batchSize) await flush();
  }
  if (!signal.aborted) await flush();
}
