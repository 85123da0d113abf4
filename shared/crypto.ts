import { CacheError } from './errors.ts';

/**
 * Encryption at rest (docs/security.md): AES-256-GCM through WebCrypto
 * (NIST SP 800-38D), a random 96-bit nonce per value (SP 800-38D §8.2.2),
 * and `namespace` + `key` bound as additional authenticated data so a
 * ciphertext cannot be moved to another key. Runtime-free.
 *
 * Envelope (bytes): `"STE1"` · key-id length (1 byte) · key id (UTF-8) ·
 * nonce (12) · ciphertext with its 128-bit tag. The plaintext is the
 * original content type (2-byte big-endian length, UTF-8) followed by the
 * value, so an encrypted entry's content type is hidden too; the store holds
 * {@link encryptedContentType} instead.
 */

/** Content type stored with an encrypted entry; the real one is inside the envelope. */
export const encryptedContentType = 'application/vnd.strata.encrypted';

const magic = new Uint8Array([0x53, 0x54, 0x45, 0x31]); // "STE1"
const nonceBytes = 12;
const keyBytes = 32;
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

/** AES-256-GCM keys by id; `currentId` encrypts, every key decrypts (rotation). */
export interface Keyring {
  readonly currentId: string;
  readonly keys: ReadonlyMap<string, CryptoKey>;
}

/**
 * Parses `ENCRYPTION_KEYS`: `id:base64,id:base64,…`, each key exactly 32
 * bytes (standard or URL-safe base64), ids `[A-Za-z0-9_.-]{1,64}` and unique.
 * The first key is current; the others stay for reading older values.
 * @throws Error naming what is wrong (never echoing key material).
 */
export async function parseKeyring(spec: string): Promise<Keyring> {
  const keys = new Map<string, CryptoKey>();
  let currentId: string | undefined;
  for (const item of spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const colon = item.indexOf(':');
    const id = colon > 0 ? item.slice(0, colon) : '';
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(id)) throw new Error('ENCRYPTION_KEYS: each item must be id:base64');
    if (keys.has(id)) throw new Error(`ENCRYPTION_KEYS: key id ${id} appears twice`);
    const raw = base64Bytes(item.slice(colon + 1));
    if (raw?.byteLength !== keyBytes) throw new Error(`ENCRYPTION_KEYS: key ${id} must be ${keyBytes} bytes of base64`);
    keys.set(id, await crypto.subtle.importKey('raw', raw, 'AES-GCM', false, ['encrypt', 'decrypt']));
    currentId ??= id;
  }
  if (!currentId) throw new Error('ENCRYPTION_KEYS: no keys');
  return { currentId, keys };
}

function base64Bytes(text: string): Uint8Array<ArrayBuffer> | null {
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) return null;
  let binary: string;
  try {
    binary = atob(text.replace(/-/g, '+').replace(/_/g, '/'));
  } catch {
    // atob throws a DOMException for a bad length; the caller names the variable instead.
    return null;
  }
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

function additionalData(namespace: string, key: string): Uint8Array<ArrayBuffer> {
  // Namespaces and keys cannot contain NUL (shared/keys.ts), so the join is unambiguous.
  return encoder.encode(`strata/v1\u0000${namespace}\u0000${key}`);
}

/** An entry's value and content type, in the clear. */
export interface Plain {
  readonly value: Uint8Array;
  readonly contentType: string;
}

/** Encrypts a value for `namespace`/`key` with the current key; returns the envelope. */
export async function seal(ring: Keyring, namespace: string, key: string, plain: Plain): Promise<Uint8Array> {
  const type = encoder.encode(plain.contentType);
  const clear = new Uint8Array(2 + type.byteLength + plain.value.byteLength);
  new DataView(clear.buffer).setUint16(0, type.byteLength);
  clear.set(type, 2);
  clear.set(plain.value, 2 + type.byteLength);
  const nonce = crypto.getRandomValues(new Uint8Array(nonceBytes));
  const cryptoKey = ring.keys.get(ring.currentId)!;
  const sealed = new Uint8Array(
    await crypto.subtle.encrypt(
      { name: 'AES-GCM', iv: nonce, additionalData: additionalData(namespace, key) },
      cryptoKey,
      clear,
    ),
  );
  const id = encoder.encode(ring.currentId);
  const out = new Uint8Array(magic.byteLength + 1 + id.byteLength + nonceBytes + sealed.byteLength);
  let at = 0;
  out.set(magic, at);
  at += magic.byteLength;
  out[at++] = id.byteLength;
  out.set(id, at);
  at += id.byteLength;
  out.set(nonce, at);
  at += nonceBytes;
  out.set(sealed, at);
  return out;
}

/**
 * Decrypts an envelope written for `namespace`/`key`.
 * @throws CacheError CACHE_005 (503) when the envelope is malformed, names an
 * unknown key id, or fails authentication (tampered, or moved from another
 * key): an error, never garbage.
 */
export async function open(ring: Keyring, namespace: string, key: string, envelope: Uint8Array): Promise<Plain> {
  const fail = (reason: string, cause?: unknown) =>
    new CacheError('CACHE_005', 'Stored value failed decryption', { details: { key, reason }, cause });
  if (envelope.byteLength < magic.byteLength + 1 || !magic.every((b, i) => envelope[i] === b)) {
    throw fail('not an encryption envelope');
  }
  let at = magic.byteLength;
  const idLength = envelope[at++]!;
  if (envelope.byteLength < at + idLength + nonceBytes + 16) throw fail('truncated envelope');
  let id: string;
  try {
    id = decoder.decode(envelope.subarray(at, at + idLength));
  } catch (error) {
    throw fail('bad key id', error);
  }
  at += idLength;
  const cryptoKey = ring.keys.get(id);
  if (!cryptoKey) throw fail('unknown key id');
  const nonce = envelope.slice(at, at + nonceBytes);
  let clear: Uint8Array;
  try {
    clear = new Uint8Array(
      await crypto.subtle.decrypt(
        { name: 'AES-GCM', iv: nonce, additionalData: additionalData(namespace, key) },
        cryptoKey,
        envelope.slice(at + nonceBytes),
      ),
    );
  } catch (error) {
    throw fail('authentication failed', error);
  }
  const typeLength = new DataView(clear.buffer, clear.byteOffset).getUint16(0);
  return {
    contentType: new TextDecoder().decode(clear.subarray(2, 2 + typeLength)),
    value: clear.subarray(2 + typeLength),
  };
}
