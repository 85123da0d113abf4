import type { Redis } from 'ioredis';
import { withKeyIndex } from './redis-key-index.ts';
import { deleteIfOlderScript, deleteScript, setIfNewerScript, setScript } from './redis-scripts.ts';

/*
 * ioredis helpers both Redis drivers (standalone and Cluster) and the
 * write-back share, so the drivers never import each other.
 */

/**
 * The script commands the drivers add to an ioredis client. Each takes the
 * entry key, then the namespace's key-index pair for that entry
 * (`redis-key-index.ts` `indexKeysOf`: by key, by expiry).
 */
export interface StrataCommands {
  strataSet(
    key: string,
    byKey: string,
    byExpiry: string,
    data: Uint8Array,
    contentType: string,
    ttlMs: number,
    tags: string,
  ): Promise<[number, number]>;
  strataSetIfNewer(
    key: string,
    byKey: string,
    byExpiry: string,
    data: Uint8Array,
    contentType: string,
    expiresAtMs: number,
    tags: string,
    version: number,
    createdAtMs: number,
  ): Promise<number>;
  strataDelete(key: string, byKey: string, byExpiry: string, tombstoneTtlMs: number): Promise<[number, number]>;
  strataDeleteIfOlder(
    key: string,
    byKey: string,
    byExpiry: string,
    version: number,
    tombstoneTtlMs: number,
  ): Promise<[number, number]>;
}

/**
 * Registers the Lua scripts on a standalone or Cluster client (EVALSHA with
 * EVAL fallback), each keeping the namespace's key index in the same script.
 */
export function defineStrataCommands(client: { defineCommand: Redis['defineCommand'] }): void {
  client.defineCommand('strataSet', { numberOfKeys: 3, lua: withKeyIndex(setScript) });
  client.defineCommand('strataSetIfNewer', { numberOfKeys: 3, lua: withKeyIndex(setIfNewerScript) });
  client.defineCommand('strataDelete', { numberOfKeys: 3, lua: withKeyIndex(deleteScript) });
  client.defineCommand('strataDeleteIfOlder', { numberOfKeys: 3, lua: withKeyIndex(deleteIfOlderScript) });
}

/** A Buffer view of bytes (ioredis sends Buffers as binary, other views as text). */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Escapes Redis glob characters so a prefix matches literally in SCAN MATCH. */
export function escapeGlob(s: string): string {
  return s.replace(/[*?[\]\\]/g, '\\$&');
}
