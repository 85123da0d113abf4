import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fromBase64, toBase64 } from '../../shared/bytes.ts';
import { type KeyValue, runCommands } from '../../shared/upstash-commands.ts';
import { encodeReply, parseRequest, parseSyncToken, UpstashError } from '../../shared/upstash-protocol.ts';

const enc = new TextEncoder();
const text = (v: unknown) => (v instanceof Uint8Array ? new TextDecoder().decode(v) : v);
const options = { nowMs: 1_000_000, defaultTtlMs: 3_600_000, maxValueBytes: 16 };
const snapshot = (entries: Record<string, string>, expiresAtMs = 2_000_000) =>
  new Map<string, KeyValue>(Object.entries(entries).map(([k, v]) => [k, { value: enc.encode(v), expiresAtMs }]));
const run = (commands: string[][], entries: Record<string, string> = {}) =>
  runCommands(commands, snapshot(entries), options);

describe('Upstash command semantics over a snapshot', () => {
  it('a failing command answers its error and changes nothing, while the commands around it apply', () => {
    const { outcomes, changed } = run(
      [
        ['SET', 'a', '1'],
        ['INCR', 'b'],
        ['SET', 'c', 'x', 'EX', '0'],
        ['INCRBY', 'a', '2'],
      ],
      { b: 'nope' },
    );
    expect(outcomes.map((o) => ('error' in o ? o.error : text(o.result)))).toEqual([
      { status: 'OK' },
      'ERR value is not an integer or out of range',
      "ERR invalid expire time in 'set' command",
      3,
    ]);
    expect([...changed.keys()]).toEqual(['a']);
    expect(text(changed.get('a')!.value)).toBe('3');
  });

  it('SET honours NX, XX, GET, EX, PX and KEEPTTL, and refuses conflicting options', () => {
    const existing = { k: 'old' };
    expect(run([['SET', 'k', 'v', 'NX']], existing).outcomes).toEqual([{ result: null }]);
    expect(run([['SET', 'k', 'v', 'NX']]).changed.get('k')!.expiresAtMs).toBe(options.nowMs + options.defaultTtlMs);
    expect(run([['SET', 'k', 'v', 'XX']]).outcomes).toEqual([{ result: null }]);
    expect(text((run([['SET', 'k', 'v', 'GET']], existing).outcomes[0] as { result: unknown }).result)).toBe('old');
    expect(run([['set', 'k', 'v', 'px', '1500']]).changed.get('k')!.expiresAtMs).toBe(options.nowMs + 1500);
    expect(run([['SET', 'k', 'v', 'KEEPTTL']], existing).changed.get('k')!.expiresAtMs).toBe(2_000_000);
    expect(run([['SET', 'k', 'v', 'EX', '1', 'PX', '5']]).outcomes).toEqual([{ error: 'ERR syntax error' }]);
    expect(run([['SET', 'k', 'v', 'NX', 'XX']]).outcomes).toEqual([{ error: 'ERR syntax error' }]);
    expect(run([['SET', 'k', 'v', 'EX', '99999999999']]).outcomes).toEqual([
      { error: "ERR invalid expire time in 'set' command" },
    ]);
  });

  it('expired keys read as absent; EXPIRE with 0 deletes; GT and LT compare with the current expiry', () => {
    const expired = runCommands(
      [
        ['GET', 'k'],
        ['TTL', 'k'],
      ],
      snapshot({ k: 'v' }, options.nowMs),
      options,
    );
    expect(expired.outcomes).toEqual([{ result: null }, { result: -2 }]);
    expect(run([['EXPIRE', 'k', '0']], { k: 'v' }).changed.get('k')).toBeNull();
    expect(run([['EXPIRE', 'k', '500', 'GT']], { k: 'v' }).outcomes).toEqual([{ result: 0 }]);
    expect(run([['EXPIRE', 'k', '500', 'LT']], { k: 'v' }).outcomes).toEqual([{ result: 1 }]);
    expect(run([['PTTL', 'k']], { k: 'v' }).outcomes).toEqual([{ result: 1_000_000 }]);
  });

  it('counters stay within signed 64 bits and keep the key TTL', () => {
    expect(run([['INCR', 'k']], { k: '9223372036854775807' }).outcomes).toEqual([
      { error: 'ERR increment or decrement would overflow' },
    ]);
    expect(run([['INCRBY', 'k', '1.5']]).outcomes).toEqual([{ error: 'ERR value is not an integer or out of range' }]);
    expect(run([['DECR', 'k']], { k: '5' }).changed.get('k')!.expiresAtMs).toBe(2_000_000);
  });

  it('keys and values outside Strata limits, and unknown commands, answer errors', () => {
    expect(run([['GET', '']]).outcomes[0]).toMatchObject({ error: expect.stringContaining('ERR invalid key') });
    expect(run([['SET', 'k', 'x'.repeat(17)]]).outcomes).toEqual([{ error: 'ERR value exceeds 16 bytes' }]);
    expect(run([['HGETALL', 'k']]).outcomes).toEqual([{ error: "ERR Command is not available: 'hgetall'" }]);
    // Namespace commands are the origin's (`origin/upstash/namespace-commands.ts`), never run over a snapshot.
    expect(run([['FLUSHALL']]).outcomes).toEqual([
      { error: "ERR 'flushall' runs at the origin only, outside a transaction" },
    ]);
    expect(run([['constructor']]).outcomes).toEqual([{ error: "ERR Command is not available: 'constructor'" }]);
  });
});

describe('Upstash wire format', () => {
  it('base64 of any bytes is what the Node Buffer gives, and decodes back byte for byte', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 4096 }), (bytes) => {
        const text = toBase64(bytes);
        expect(text).toBe(Buffer.from(bytes).toString('base64'));
        expect([...fromBase64(text)]).toEqual([...bytes]);
      }),
      { numRuns: 300 },
    );
  });

  it('base64 encodes every string reply except the status OK', () => {
    expect(encodeReply([{ status: 'OK' }, { status: 'PONG' }, enc.encode('OK'), null, 3], true)).toEqual([
      'OK',
      'UE9ORw==',
      'T0s=',
      null,
      3,
    ]);
    expect(encodeReply(new Uint8Array([0xff, 0x00]), true)).toBe('/wA=');
  });

  it('parses JSON commands, pipelines and path commands, and refuses the rest', () => {
    expect(parseRequest('POST', '', enc.encode('["set","k",5,true]'))).toEqual({
      kind: 'single',
      commands: [['set', 'k', '5', 'true']],
    });
    expect(parseRequest('POST', 'multi-exec', enc.encode('[["get","a"]]')).kind).toBe('multi-exec');
    const path = parseRequest('POST', 'set/a%2Fb', new Uint8Array([1, 2]));
    expect(path.commands[0]!.slice(0, 2)).toEqual(['set', 'a/b']);
    expect(path.commands[0]![2]).toEqual(new Uint8Array([1, 2]));
    expect(() => parseRequest('POST', '', enc.encode('{"a":1}'))).toThrow(UpstashError);
    expect(() => parseRequest('GET', 'pipeline', new Uint8Array())).toThrow(UpstashError);
    expect(parseSyncToken('123')).toBe(123);
    expect(parseSyncToken('12a')).toBe(0);
  });
});
