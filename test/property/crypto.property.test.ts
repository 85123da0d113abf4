import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { open, parseKeyring, seal } from '../../shared/crypto.ts';
import { CacheError } from '../../shared/errors.ts';

const key32 = () => Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64');
const namespace = fc.stringMatching(/^[a-z0-9_-]{1,64}$/);
const key = fc.string({ minLength: 1, maxLength: 100 }).filter((k) => !k.includes('\u0000') && k.isWellFormed());
const contentType = fc.string({ maxLength: 60 }).filter((t) => t.isWellFormed());
const value = fc.uint8Array({ maxLength: 2048 });

async function failsWithCacheError(run: Promise<unknown>): Promise<boolean> {
  try {
    await run;
    return false;
  } catch (error) {
    return error instanceof CacheError && error.code === 'CACHE_005';
  }
}

describe('encryption at rest (AES-256-GCM envelope)', () => {
  it('round-trips any value and content type for any namespace and key', async () => {
    const ring = await parseKeyring(`k1:${key32()}`);
    await fc.assert(
      fc.asyncProperty(namespace, key, contentType, value, async (ns, k, type, v) => {
        const envelope = await seal(ring, ns, k, { value: v, contentType: type });
        const plain = await open(ring, ns, k, envelope);
        expect(plain.contentType).toBe(type);
        expect(Buffer.from(plain.value).equals(Buffer.from(v))).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('never returns garbage: any flipped bit, truncation or move to another key is an error', async () => {
    const ring = await parseKeyring(`k1:${key32()}`);
    await fc.assert(
      fc.asyncProperty(
        namespace,
        key,
        value,
        fc.nat(),
        fc.integer({ min: 0, max: 7 }),
        async (ns, k, v, where, bit) => {
          const envelope = await seal(ring, ns, k, { value: v, contentType: 'text/plain' });
          const tampered = envelope.slice();
          const at = where % tampered.byteLength;
          tampered[at]! ^= 1 << bit;
          expect(await failsWithCacheError(open(ring, ns, k, tampered))).toBe(true);
          expect(await failsWithCacheError(open(ring, ns, k, envelope.subarray(0, envelope.byteLength - 1)))).toBe(
            true,
          );
          expect(await failsWithCacheError(open(ring, ns, `${k}x`, envelope))).toBe(true);
          expect(await failsWithCacheError(open(ring, `${ns}x`.slice(0, 64), `${k}`, envelope))).toBe(
            `${ns}x`.slice(0, 64) !== ns,
          );
        },
      ),
      { numRuns: 150 },
    );
  });

  it('uses a fresh 96-bit nonce per value: the same plaintext never seals to the same bytes', async () => {
    const ring = await parseKeyring(`k1:${key32()}`);
    const seen = new Set<string>();
    for (let i = 0; i < 200; i++) {
      seen.add(Buffer.from(await seal(ring, 'ns', 'k', { value: new Uint8Array(4), contentType: '' })).toString('hex'));
    }
    expect(seen.size).toBe(200);
  });

  it('rotation: values written with key 1 stay readable after key 2 becomes current, and new writes use key 2', async () => {
    const k1 = `k1:${key32()}`;
    const k2 = `k2:${key32()}`;
    const before = await parseKeyring(k1);
    const old = await seal(before, 'ns', 'k', { value: new TextEncoder().encode('old'), contentType: 'text/plain' });
    const rotated = await parseKeyring(`${k2},${k1}`);
    expect(new TextDecoder().decode((await open(rotated, 'ns', 'k', old)).value)).toBe('old');
    const fresh = await seal(rotated, 'ns', 'k', { value: new TextEncoder().encode('new'), contentType: 'text/plain' });
    expect(new TextDecoder().decode(fresh.subarray(5, 7))).toBe('k2');
    const retired = await parseKeyring(k2);
    expect(await failsWithCacheError(open(retired, 'ns', 'k', old))).toBe(true);
    expect(new TextDecoder().decode((await open(retired, 'ns', 'k', fresh)).value)).toBe('new');
  });

  it('refuses malformed key lists without echoing key material', async () => {
    await expect(parseKeyring('')).rejects.toThrow(/no keys/);
    await expect(parseKeyring('k1:c2hvcnQ=')).rejects.toThrow(/32 bytes/);
    await expect(parseKeyring(`k1:${key32()},k1:${key32()}`)).rejects.toThrow(/twice/);
    await expect(parseKeyring('nocolon')).rejects.toThrow(/id:base64/);
  });
});
