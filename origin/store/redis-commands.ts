import type { Redis } from 'ioredis';
import {
  deleteIfOlderScript,
  deleteScript,
  leaseGrantScript,
  setIfNewerScript,
  setScript,
  softPurgeScript,
} from './redis-scripts.ts';
import type { RefreshLease } from './store.ts';

/*
 * ioredis helpers both Redis drivers (standalone and Cluster) and the
 * write-back share, so the drivers never import each other.
 */

/** The script commands the drivers add to an ioredis client. */
export interface StrataCommands {
  strataSet(
    key: string,
    data: Uint8Array,
    contentType: string,
    ttlMs: number,
    tags: string,
    staleWhileRevalidateMs: number,
    staleIfErrorMs: number,
    leaseId: string,
  ): Promise<[number, number]>;
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
}

/** Registers the Lua scripts on a standalone or Cluster client (EVALSHA with EVAL fallback). */
export function defineStrataCommands(client: { defineCommand: Redis['defineCommand'] }): void {
  client.defineCommand('strataSet', { numberOfKeys: 1, lua: setScript });
  client.defineCommand('strataSetIfNewer', { numberOfKeys: 1, lua: setIfNewerScript });
  client.defineCommand('strataDelete', { numberOfKeys: 1, lua: deleteScript });
  client.defineCommand('strataDeleteIfOlder', { numberOfKeys: 1, lua: deleteIfOlderScript });
  client.defineCommand('strataSoftPurge', { numberOfKeys: 1, lua: softPurgeScript });
  client.defineCommand('strataLeaseGrant', { numberOfKeys: 1, lua: leaseGrantScript });
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
