import { describe, expect, it } from 'vitest';
import { edgeConfigSchema, originConfigSchema, parseConfig, purgeHeartbeatMs } from '../../shared/config.ts';

describe('configuration', () => {
  it('embedded defaults need no variables', () => {
    const origin = parseConfig(originConfigSchema, {});
    expect(origin.ORIGIN_PORT).toBe(8080);
    expect(origin.REDIS_URL).toBeUndefined();
    expect(origin.CACHE_DEFAULT_TTL).toBe(3600);
    const edge = parseConfig(edgeConfigSchema, {});
    expect(edge.EDGE_PORT).toBe(8787);
    expect(edge.ORIGIN_URL).toBe('http://127.0.0.1:8080');
  });

  it('a bad value is reported in one line naming the variable', () => {
    expect(() => parseConfig(edgeConfigSchema, { EDGE_PORT: 'eighty' })).toThrow(/^invalid configuration: EDGE_PORT: /);
    expect(() => parseConfig(originConfigSchema, { REDIS_URL: 'not a url' })).toThrow(/REDIS_URL/);
    expect(() => parseConfig(originConfigSchema, { CACHE_DEFAULT_TTL: '-1' })).toThrow(/CACHE_DEFAULT_TTL/);
  });

  it('EVICTION_POLICY defaults to s3fifo on both sides, accepts lru and lfu, and rejects anything else', () => {
    expect(parseConfig(originConfigSchema, {}).EVICTION_POLICY).toBe('s3fifo');
    expect(parseConfig(edgeConfigSchema, {}).EVICTION_POLICY).toBe('s3fifo');
    expect(parseConfig(originConfigSchema, { EVICTION_POLICY: 'lru' }).EVICTION_POLICY).toBe('lru');
    expect(parseConfig(edgeConfigSchema, { EVICTION_POLICY: 'lfu' }).EVICTION_POLICY).toBe('lfu');
    expect(() => parseConfig(edgeConfigSchema, { EVICTION_POLICY: 'arc' })).toThrow(/EVICTION_POLICY/);
  });

  it('EDGE_GC_EVERY_BYTES is 0 (off) by default, accepts auto and a byte count, and rejects a negative or a word', () => {
    expect(parseConfig(edgeConfigSchema, {}).EDGE_GC_EVERY_BYTES).toBe(0);
    expect(parseConfig(edgeConfigSchema, { EDGE_GC_EVERY_BYTES: 'auto' }).EDGE_GC_EVERY_BYTES).toBe('auto');
    expect(() => parseConfig(edgeConfigSchema, { EDGE_GC_EVERY_BYTES: 'often' })).toThrow(/EDGE_GC_EVERY_BYTES/);
    expect(parseConfig(edgeConfigSchema, { EDGE_GC_EVERY_BYTES: '0' }).EDGE_GC_EVERY_BYTES).toBe(0);
    expect(parseConfig(edgeConfigSchema, { EDGE_GC_EVERY_BYTES: '8388608' }).EDGE_GC_EVERY_BYTES).toBe(8 * 1024 * 1024);
    expect(() => parseConfig(edgeConfigSchema, { EDGE_GC_EVERY_BYTES: '-1' })).toThrow(/EDGE_GC_EVERY_BYTES/);
  });

  it('KAFKA_FETCH_SAMPLE_MS is 0 (off) by default, accepts milliseconds up to 1000, and rejects a negative or a word', () => {
    expect(parseConfig(originConfigSchema, {}).KAFKA_FETCH_SAMPLE_MS).toBe(0);
    expect(parseConfig(originConfigSchema, { KAFKA_FETCH_SAMPLE_MS: '5' }).KAFKA_FETCH_SAMPLE_MS).toBe(5);
    expect(() => parseConfig(originConfigSchema, { KAFKA_FETCH_SAMPLE_MS: '-1' })).toThrow(/KAFKA_FETCH_SAMPLE_MS/);
    expect(() => parseConfig(originConfigSchema, { KAFKA_FETCH_SAMPLE_MS: '5000' })).toThrow(/KAFKA_FETCH_SAMPLE_MS/);
    expect(() => parseConfig(originConfigSchema, { KAFKA_FETCH_SAMPLE_MS: 'often' })).toThrow(/KAFKA_FETCH_SAMPLE_MS/);
  });

  it('an empty variable counts as unset', () => {
    expect(parseConfig(originConfigSchema, { REDIS_URL: '' }).REDIS_URL).toBeUndefined();
  });

  it('heartbeats default to 1000 ms; PURGE_HEARTBEAT_MS wins over the older PURGE_HEARTBEAT_SECONDS', () => {
    expect(purgeHeartbeatMs(parseConfig(originConfigSchema, {}))).toBe(1_000);
    expect(purgeHeartbeatMs(parseConfig(originConfigSchema, { PURGE_HEARTBEAT_SECONDS: '2' }))).toBe(2_000);
    const both = parseConfig(originConfigSchema, { PURGE_HEARTBEAT_SECONDS: '2', PURGE_HEARTBEAT_MS: '250' });
    expect(purgeHeartbeatMs(both)).toBe(250);
  });

  it('the edge poll interval must be under the lease, and the stream idle timeout at most the lease', () => {
    const edge = parseConfig(edgeConfigSchema, {});
    expect(edge.EDGE_LEASE_MS).toBe(3_000);
    expect(edge.EDGE_PURGE_POLL_MS).toBe(1_000);
    expect(() => parseConfig(edgeConfigSchema, { EDGE_PURGE_POLL_MS: '3000' })).toThrow(/EDGE_PURGE_POLL_MS/);
    expect(() => parseConfig(edgeConfigSchema, { EDGE_PURGE_IDLE_TIMEOUT_MS: '3001' })).toThrow(
      /EDGE_PURGE_IDLE_TIMEOUT_MS/,
    );
    expect(
      parseConfig(edgeConfigSchema, { EDGE_LEASE_MS: '9000', EDGE_PURGE_POLL_MS: '5000' }).EDGE_PURGE_POLL_MS,
    ).toBe(5_000);
  });
});
