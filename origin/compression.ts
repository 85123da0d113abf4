import { promisify } from 'node:util';
import { constants, zstdCompress, zstdDecompress } from 'node:zlib';

/**
 * Value compression at the origin (docs/compression.md): zstd (RFC 8878)
 * from `node:zlib`, which Node 24 marks experimental (stability 1). The
 * format is the standard zstd frame, so nothing here depends on Node's
 * implementation beyond the codec.
 *
 * Envelope (bytes): `"STZ1"` · original content type (2-byte big-endian
 * length, UTF-8) · one zstd frame of the value. The store holds
 * {@link compressedContentType} beside it, the way an encrypted entry holds
 * its own reserved type, so a read knows to decompress without any new
 * field in any store.
 */

/** Content type stored with a compressed entry; the real one is inside the envelope. */
export const compressedContentType = 'application/vnd.strata.zstd';

/** zstd level: 3 is zstd's default, the usual speed/ratio balance for a cache. */
export const zstdLevel = 3;

const magic = new Uint8Array([0x53, 0x54, 0x5a, 0x31]); // "STZ1"
const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });
const compress = promisify(zstdCompress);
const decompress = promisify(zstdDecompress);

/** A value and its content type, as written or read. */
export interface PlainValue {
  readonly value: Uint8Array;
  readonly contentType: string;
}

/**
 * The value in the compressed envelope, or null when that would not be
 * smaller than the value as it is (already-compressed data, tiny values).
 * The zstd work runs on libuv's thread pool, not the event loop.
 *
 * The value's length is pledged to zstd (`pledgedSrcSize`,
 * `ZSTD_CCtx_setPledgedSrcSize`): zstd then sizes its window and tables to
 * the value rather than to an unknown stream, so each call allocates and
 * touches a context of a few hundred KiB instead of several MiB. The frame is
 * byte-identical; the saving is CPU: on a 36 KB value at level 3, 16 calls in
 * flight, about 100 µs of CPU per value instead of about 600 µs, most of
 * that in the kernel faulting in fresh context pages (docs/benchmarks.md, (s)).
 */
export async function compressValue(plain: PlainValue): Promise<Uint8Array | null> {
  const type = encoder.encode(plain.contentType);
  const frame = await compress(plain.value, {
    params: { [constants.ZSTD_c_compressionLevel]: zstdLevel },
    pledgedSrcSize: plain.value.byteLength,
  });
  const size = magic.byteLength + 2 + type.byteLength + frame.byteLength;
  if (size >= plain.value.byteLength) return null;
  const out = new Uint8Array(size);
  out.set(magic, 0);
  new DataView(out.buffer).setUint16(magic.byteLength, type.byteLength);
  out.set(type, magic.byteLength + 2);
  out.set(frame, magic.byteLength + 2 + type.byteLength);
  return out;
}

/**
 * The original value and content type of a compressed envelope.
 * @param maxBytes largest value accepted (`MAX_VALUE_BYTES`): decompression stops past it.
 * @throws Error when the envelope is malformed or inflates past `maxBytes`.
 */
export async function decompressValue(stored: Uint8Array, maxBytes: number): Promise<PlainValue> {
  const header = magic.byteLength + 2;
  if (stored.byteLength < header || !magic.every((b, i) => stored[i] === b)) {
    throw new Error('compressed entry: bad envelope');
  }
  const typeLength = new DataView(stored.buffer, stored.byteOffset, stored.byteLength).getUint16(magic.byteLength);
  if (header + typeLength > stored.byteLength) throw new Error('compressed entry: bad envelope');
  const contentType = decoder.decode(stored.subarray(header, header + typeLength));
  const value = await decompress(stored.subarray(header + typeLength), { maxOutputLength: Math.max(maxBytes, 1) });
  return { value: new Uint8Array(value.buffer, value.byteOffset, value.byteLength), contentType };
}
