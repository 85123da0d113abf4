import { CacheError } from './errors.ts';
import type { ValueEncoding } from './schemas.ts';

const strictDecoder = new TextDecoder('utf-8', { fatal: true });
const encoder = new TextEncoder();

const base64Codes = new TextEncoder().encode('ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/');
const asciiDecoder = new TextDecoder('latin1');

/**
 * Bytes → base64 (RFC 4648 §4), runtime-free: the characters are written
 * into one byte array and decoded once. (Node's `btoa` over a binary string
 * took ~150 µs per KiB.)
 */
export function toBase64(bytes: Uint8Array): string {
  const out = new Uint8Array(Math.ceil(bytes.length / 3) * 4);
  const whole = bytes.length - (bytes.length % 3);
  let j = 0;
  for (let i = 0; i < whole; i += 3) {
    const n = (bytes[i]! << 16) | (bytes[i + 1]! << 8) | bytes[i + 2]!;
    out[j++] = base64Codes[n >>> 18]!;
    out[j++] = base64Codes[(n >>> 12) & 63]!;
    out[j++] = base64Codes[(n >>> 6) & 63]!;
    out[j++] = base64Codes[n & 63]!;
  }
  const rest = bytes.length - whole;
  if (rest > 0) {
    const n = (bytes[whole]! << 16) | (rest === 2 ? bytes[whole + 1]! << 8 : 0);
    out[j++] = base64Codes[n >>> 18]!;
    out[j++] = base64Codes[(n >>> 12) & 63]!;
    out[j++] = rest === 2 ? base64Codes[(n >>> 6) & 63]! : 61; // '='
    out[j++] = 61;
  }
  return asciiDecoder.decode(out);
}

// Canonical, padded base64 (RFC 4648 §4): what the OpenAPI description states; atob alone also takes whitespace and missing padding.
const canonicalBase64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Base64 → bytes; throws CACHE_004 on anything but canonical, padded base64. */
export function fromBase64(text: string): Uint8Array {
  if (!canonicalBase64.test(text)) throw new CacheError('CACHE_004', 'Value is not valid base64');
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    throw new CacheError('CACHE_004', 'Value is not valid base64');
  }
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * Encodes a stored value for a JSON batch response.
 * @throws CacheError CACHE_004 when `utf8` is asked for bytes that are not UTF-8.
 */
export function encodeValue(bytes: Uint8Array, encoding: ValueEncoding, key: string): string {
  if (encoding === 'base64') return toBase64(bytes);
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new CacheError('CACHE_004', `Value of key is not UTF-8; ask for "encoding": "base64"`, { details: { key } });
  }
}

/** Decodes a JSON batch value into bytes. */
export function decodeValue(text: string, encoding: ValueEncoding): Uint8Array {
  return encoding === 'base64' ? fromBase64(text) : encoder.encode(text);
}
