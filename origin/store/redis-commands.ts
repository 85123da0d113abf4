import type { Redis } from 'ioredis';
import { entryKey, storedEntry } from './redis-codec.ts';
import { withKeyIndex, withSwapKeyIndex } from './redis-key-index.ts';
import {
  deleteIfOlderScript,
  deleteScript,
  leaseGrantScript,
  setIfNewerScript,
  setScript,
  softPurgeScript,
  swapScript,
  tombstoneTtlMs,
  withOnce,
} from './redis-scripts.ts';
import type { RefreshLease, RemovalResult, StoredEntry, SwapChange, SwapOutcome } from './store.ts';

/*
 * ioredis helpers both Redis drivers (standalone and Cluster) and the
 * write-back share, so the drivers never import each other.
 */

/** The arguments of the set script after its keys (`setScript` in `redis-scripts.ts`). */
export type SetScriptArgs = [
  data: Uint8Array,
  contentType: string,
  ttlMs: number,
  tags: string,
  staleWhileRevalidateMs: number,
  staleIfErrorMs: number,
  leaseId: string,
];

/** The script commands the drivers add to an ioredis client. */
export interface StrataCommands {
  strataSet(key: string, ...args: SetScriptArgs): Promise<[number, number]>;
  strataLeaseGrant(key: string, leaseId: string, leaseMs: number, seenVersion: number): Promise<[number, number]>;
  strataSetIfNewer(
    key: string,
    data: Uint8Array,
    contentType: string,
    expiresAtMs: number,
    tags: string,
    version: number,
    createdAtMs: number,
    staleWhileRevalidateMs: number,
    staleIfErrorMs: number,
  ): Promise<number>;
  strataDelete(key: string, tombstoneTtlMs: number): Promise<[number, number]>;
  strataSoftPurge(key: string, tombstoneTtlMs: number): Promise<[number, number]>;
  strataDeleteIfOlder(key: string, version: number, tombstoneTtlMs: number): Promise<[number, number]>;
  strataSwap(numKeys: number, ...keysAndArgs: (string | number | Buffer)[]): Promise<number[]>;
}

/**
 * The same scripts on a standalone server (or a Sentinel master), each
 * also keeping the namespace's key index (`redis-key-index.ts`): after the
 * entry key come the index pair, by key and by expiry.
 */
export interface IndexedStrataCommands {
  strataSetIndexed: WithIndex<StrataCommands['strataSet']>;
  strataSetIfNewerIndexed: WithIndex<StrataCommands['strataSetIfNewer']>;
  strataDeleteIndexed: WithIndex<StrataCommands['strataDelete']>;
  strataSoftPurgeIndexed: WithIndex<StrataCommands['strataSoftPurge']>;
  strataDeleteIfOlderIndexed: WithIndex<StrataCommands['strataDeleteIfOlder']>;
  /** `strataSwap` with the index pair after the entry keys (counted in `numKeys`). */
  strataSwapIndexed: StrataCommands['strataSwap'];
  /** `strataSetIndexed` once per request id: the record key after the index pair, fingerprint and record TTL ms last. */
  strataSetOnce(
    key: string,
    byKey: string,
    byExpiry: string,
    onceKey: string,
    ...args: [...SetScriptArgs, fingerprint: string, onceTtlMs: number]
  ): Promise<[number, number]>;
  /** `strataDeleteIndexed` once per request id, as `strataSetOnce`. */
  strataDeleteOnce(
    key: string,
    byKey: string,
    byExpiry: string,
    onceKey: string,
    tombstoneTtlMs: number,
    fingerprint: string,
    onceTtlMs: number,
  ): Promise<[number, number]>;
}

/** A script command with the index pair (by key, by expiry) after its entry key. */
type WithIndex<F> = F extends (key: string, ...rest: infer A) => infer R
  ? (key: string, byKey: string, byExpiry: string, ...rest: A) => R
  : never;

/** Registers the {@link IndexedStrataCommands} on a standalone client. */
export function defineIndexedStrataCommands(client: { defineCommand: Redis['defineCommand'] }): void {
  client.defineCommand('strataSetIndexed', { numberOfKeys: 3, lua: withKeyIndex(setScript) });
  client.defineCommand('strataSetIfNewerIndexed', { numberOfKeys: 3, lua: withKeyIndex(setIfNewerScript) });
  client.defineCommand('strataDeleteIndexed', { numberOfKeys: 3, lua: withKeyIndex(deleteScript) });
  client.defineCommand('strataSoftPurgeIndexed', { numberOfKeys: 3, lua: withKeyIndex(softPurgeScript) });
  client.defineCommand('strataDeleteIfOlderIndexed', { numberOfKeys: 3, lua: withKeyIndex(deleteIfOlderScript) });
  client.defineCommand('strataSwapIndexed', { lua: withSwapKeyIndex(swapScript) });
  client.defineCommand('strataSetOnce', { numberOfKeys: 4, lua: withOnce(withKeyIndex(setScript), 4, 8) });
  client.defineCommand('strataDeleteOnce', { numberOfKeys: 4, lua: withOnce(withKeyIndex(deleteScript), 4, 2) });
}

/** Registers the Lua scripts on a standalone or Cluster client (EVALSHA with EVAL fallback). */
export function defineStrataCommands(client: { defineCommand: Redis['defineCommand'] }): void {
  client.defineCommand('strataSet', { numberOfKeys: 1, lua: setScript });
  client.defineCommand('strataSetIfNewer', { numberOfKeys: 1, lua: setIfNewerScript });
  client.defineCommand('strataDelete', { numberOfKeys: 1, lua: deleteScript });
  client.defineCommand('strataDeleteIfOlder', { numberOfKeys: 1, lua: deleteIfOlderScript });
  client.defineCommand('strataSoftPurge', { numberOfKeys: 1, lua: softPurgeScript });
  client.defineCommand('strataLeaseGrant', { numberOfKeys: 1, lua: leaseGrantScript });
  // The key count varies per call: the caller passes it first (EVALSHA's numkeys).
  client.defineCommand('strataSwap', { lua: swapScript });
}

/**
 * `Store.swap` on a standalone or Cluster client: one `swapScript` call over
 * the changes' entry keys (a Cluster caller checks first that they share a
 * slot), decoded into the swap's outcome.
 */
export async function swapEntries(
  client: StrataCommands,
  namespace: string,
  changes: readonly SwapChange[],
  index?: {
    readonly keys: readonly [string, string];
    readonly client: Pick<IndexedStrataCommands, 'strataSwapIndexed'>;
  },
): Promise<SwapOutcome> {
  if (changes.length === 0) return { kind: 'swapped', results: new Map() };
  const keys = changes.map((c) => entryKey(namespace, c.key));
  const args: (string | number | Buffer)[] = [tombstoneTtlMs];
  for (const { expectedVersion, action } of changes) {
    if (action.kind === 'set') {
      const { input } = action;
      args.push(expectedVersion, 's', asBuffer(input.value), input.contentType, input.ttlMs, input.tags.join(','));
    } else args.push(expectedVersion, action.kind === 'delete' ? 'd' : 'c', '', '', 0, '');
  }
  const reply = index
    ? await index.client.strataSwapIndexed(keys.length + 2, ...keys, ...index.keys, ...args)
    : await client.strataSwap(keys.length, ...keys, ...args);
  if (Number(reply[0]) !== 1) return { kind: 'conflict' };
  const results = new Map<string, StoredEntry | RemovalResult>();
  changes.forEach(({ key, action }, i) => {
    const version = Number(reply[1 + i * 2]);
    const extra = Number(reply[2 + i * 2]);
    if (action.kind === 'set') results.set(key, storedEntry(action.input, [version, extra]));
    else if (action.kind === 'delete') results.set(key, { removed: extra, version });
  });
  return { kind: 'swapped', results };
}

/** A Buffer view of bytes (ioredis sends Buffers as binary, other views as text). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/**
 * Every key of one Redis server (a standalone server, or one Cluster master)
 * matching a SCAN `MATCH` pattern, walked with COUNT 1000.
 * @param onRoundTrip called once per SCAN call (for round-trip statistics).
 */
export async function scanMatching(
  node: Pick<Redis, 'scan'>,
  match: string,
  onRoundTrip: () => void = () => {},
): Promise<string[]> {
  const found: string[] = [];
  let cursor = '0';
  do {
    onRoundTrip();
    const [next, batch] = await node.scan(cursor, 'MATCH', match, 'COUNT', 1000);
    cursor = next;
    found.push(...batch);
  } while (cursor !== '0');
  return found;
}

/** Escapes Redis glob characters so a prefix matches literally in SCAN MATCH. */
export function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}

/** Grants a refresh lease with `leaseGrantScript` (both drivers): the lease, or null while another holds it. */
export async function grantLeaseOn(
  commands: Pick<StrataCommands, 'strataLeaseGrant'>,
  entryKey: string,
  id: string,
  leaseMs: number,
  seenVersion: number,
): Promise<RefreshLease | null> {
  const [granted, version] = await commands.strataLeaseGrant(entryKey, id, leaseMs, seenVersion);
  return Number(granted) === 1 ? { id, version: Number(version) } : null;
}

/** The set scripts' reply for a write whose refresh lease no longer holds. */
export const leaseLostReply = -2;
