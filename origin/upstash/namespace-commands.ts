import { CacheError } from '../../shared/errors.ts';
import { maxListCount } from '../../shared/listing.ts';
import { argText, type Command, commandName, type Outcome, type Reply } from '../../shared/upstash-protocol.ts';
import type { CacheService } from '../cache-service.ts';
import { type KeyListingQuery, listKeys } from '../listing/key-listing.ts';

/*
 * The Upstash commands over a whole namespace rather than keys (Redis command
 * reference, redis.io/docs/latest/commands): FLUSHDB and FLUSHALL flush the
 * namespace (its version is raised, `CacheService.flush`), SCAN and KEYS list
 * it (`origin/listing/key-listing.ts`). A Strata namespace is the client's
 * whole database, so FLUSHALL means the same as FLUSHDB.
 */

/** The namespace commands, lower case. */
const namespaceCommands = new Set(['flushdb', 'flushall', 'scan', 'keys']);

/** True for FLUSHDB, FLUSHALL, SCAN and KEYS. */
export function isNamespaceCommand(command: Command): boolean {
  return namespaceCommands.has(commandName(command));
}

/** The outcome of one namespace command and the version it wrote (a flush's new namespace version; 0: none). */
export interface NamespaceOutcome {
  readonly outcome: Outcome;
  readonly version: number;
}

/** SCAN's default COUNT when the client gives none (the listing's work bound, as Redis's default of 10 is). */
const defaultScanCount = 100;

/** Most keys one KEYS call answers; past it the client is told to use SCAN (KEYS reads the whole namespace). */
export const maxKeysReply = 100_000;

const encoder = new TextEncoder();
const text = (s: string): Uint8Array => encoder.encode(s);

class CommandSyntaxError extends Error {}
const syntax = (message = 'ERR syntax error'): never => {
  throw new CommandSyntaxError(message);
};

/** SCAN's options after the cursor: MATCH, COUNT, TYPE and Upstash's WITHTYPE, in any order. */
function scanOptions(args: readonly string[]): {
  match: string;
  count: number;
  type: string | null;
  withType: boolean;
} {
  let match = '*';
  let count = defaultScanCount;
  let type: string | null = null;
  let withType = false;
  for (let i = 0; i < args.length; i++) {
    const option = args[i]!.toLowerCase();
    if (option === 'withtype') {
      withType = true;
      continue;
    }
    const value = args[i + 1];
    if (value === undefined) syntax();
    i++;
    if (option === 'match') match = value!;
    else if (option === 'count') {
      if (!/^[0-9]{1,9}$/.test(value!) || Number(value) < 1) syntax('ERR value is not an integer or out of range');
      count = Math.min(Number(value), maxListCount);
    } else if (option === 'type') type = value!.toLowerCase();
    else syntax();
  }
  return { match, count, type, withType };
}

/**
 * Runs one namespace command in `namespace` (grants are checked before, by
 * the protocol layer: `cache:flush` for the flushes, `cache:read` for SCAN
 * and KEYS).
 *
 * - `FLUSHDB [ASYNC|SYNC]`, `FLUSHALL [ASYNC|SYNC]`: `OK`; every key of the
 *   namespace is gone for every reader once it answers (both modes are the
 *   same constant-time version bump).
 * - `SCAN cursor [MATCH glob] [COUNT n] [TYPE t] [WITHTYPE]`: `[cursor, keys]`
 *   (with WITHTYPE, `[cursor, [key, type, …]]`); the cursor is `0` to begin
 *   and when done, else the listing's opaque cursor. Every value is a Redis
 *   string, so TYPE other than `string` answers `["0", []]`. COUNT is capped at 1,000.
 * - `KEYS glob`: every matching key, read a page at a time; more than
 *   {@link maxKeysReply} answers an error pointing to SCAN.
 *
 * Errors: a malformed glob, cursor or option is the command's `{error}`
 * (`ERR …`); a store failure is thrown (CacheError CACHE_005, 503).
 */
export async function runNamespaceCommand(
  service: CacheService,
  namespace: string,
  command: Command,
  by: string,
): Promise<NamespaceOutcome> {
  const name = commandName(command);
  const args = command.slice(1).map(argText);
  const listing = { store: service.store, floor: (ns: string) => service.namespaces.floor(ns) };
  const list = (query: KeyListingQuery) => listKeys(listing, namespace, query);
  try {
    switch (name) {
      case 'flushdb':
      case 'flushall': {
        if (args.length > 1 || (args.length === 1 && !['async', 'sync'].includes(args[0]!.toLowerCase()))) syntax();
        const flushed = await service.flush(namespace, by);
        return { outcome: { result: { status: 'OK' } }, version: flushed.version };
      }
      case 'scan': {
        if (args.length === 0) syntax(`ERR wrong number of arguments for 'scan' command`);
        const [cursor, ...rest] = args;
        const { match, count, type, withType } = scanOptions(rest);
        if (type !== null && type !== 'string') return { outcome: { result: [text('0'), []] }, version: 0 };
        const page = await list({ match, count, ...(cursor === '0' ? {} : { cursor }) });
        const keys: Reply[] = page.keys.flatMap((k) => (withType ? [text(k.key), text('string')] : [text(k.key)]));
        return { outcome: { result: [text(page.cursor ?? '0'), keys] }, version: 0 };
      }
      default: {
        // KEYS
        if (args.length !== 1) syntax(`ERR wrong number of arguments for 'keys' command`);
        const keys: Reply[] = [];
        let cursor: string | undefined;
        do {
          const page = await list({ match: args[0]!, count: maxListCount, ...(cursor ? { cursor } : {}) });
          for (const k of page.keys) keys.push(text(k.key));
          if (keys.length > maxKeysReply) syntax(`ERR KEYS matched more than ${maxKeysReply} keys; use SCAN`);
          cursor = page.cursor ?? undefined;
        } while (cursor !== undefined);
        return { outcome: { result: keys }, version: 0 };
      }
    }
  } catch (error) {
    if (error instanceof CommandSyntaxError) return { outcome: { error: error.message }, version: 0 };
    // A bad glob or cursor is the command's error; an unavailable store fails the request (503).
    if (error instanceof CacheError && error.status === 400)
      return { outcome: { error: `ERR ${error.message}` }, version: 0 };
    throw error;
  }
}
