import { promisify } from 'node:util';
import { constants, zstdCompress, zstdCompressSync, zstdDecompress, zstdDecompressSync } from 'node:zlib';

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

/**
 * Bytes: values up to this size are compressed, and frames that declare up
 * to this size decompressed, on the event loop rather than on libuv's
 * thread pool. Handing a value to the pool costs the event loop itself
 * about 60 µs (setting up the stream and its zstd context) and the process
 * 100–200 µs in all, more than zstd takes inline for a value this size
 * (about 1–4 µs per KiB at level 3, so at most about 0.25 ms of the loop).
 */
export const inlineMaxBytes = 64 * 1024;

/** A value and its content type, as written or read. */
export interface PlainValue {
  readonly value: Uint8Array;
  readonly contentType: string;
}

/**
 * The value in the compressed envelope, or null when that would not be
 * smaller than the value as it is (already-compressed data, tiny values).
 * Values larger than {@link inlineMaxBytes} are compressed on libuv's thread
 * pool, smaller ones on the event loop, where they cost less.
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
  const options = {
    params: { [constants.ZSTD_c_compressionLevel]: zstdLevel },
    pledgedSrcSize: plain.value.byteLength,
  };
  const frame =
    plain.value.byteLength <= inlineMaxBytes
      ? zstdCompressSync(plain.value, options)
      : await compress(plain.value, options);
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
  const frame = stored.subarray(header + typeLength);
  const options = { maxOutputLength: Math.max(maxBytes, 1) };
  const declared = frameContentSize(frame);
  const value =
    declared !== null && declared <= inlineMaxBytes
      ? zstdDecompressSync(frame, options)
      : await decompress(frame, options);
  return { value: new Uint8Array(value.buffer, value.byteOffset, value.byteLength), contentType };
}

/**
 * Bytes a zstd frame says it holds (`Frame_Content_Size`, RFC 8878
 * §3.1.1.1), or null when its header does not say or is not a zstd frame
 * header. Only decides where to decompress: the limit is enforced by the codec.
 */
export function frameContentSize(frame: Uint8Array): number | null {
  if (frame.byteLength < 5 || frame[0] !== 0x28 || frame[1] !== 0xb5 || frame[2] !== 0x2f || frame[3] !== 0xfd) {
    return null;
  }
  const descriptor = frame[4]!;
  const singleSegment = (descriptor & 0x20) !== 0;
  const sizeBytes = [singleSegment ? 1 : 0, 2, 4, 8][descriptor >> 6]!;
  if (sizeBytes === 0) return null;
  const at = 5 + (singleSegment ? 0 : 1) + [0, 1, 2, 4][descriptor & 0x03]!;
  if (frame.byteLength < at + sizeBytes) return null;
  let size = 0;
  for (let i = sizeBytes - 1; i >= 0; i--) size = size * 256 + frame[at + i]!;
  return sizeBytes === 2 ? size + 256 : size;
}
