import { describe, expect, it } from 'vitest';
import { edgeConfigSchema, originConfigSchema, parseConfig } from '../../shared/config.ts';

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

  it('an empty variable counts as unset', () => {
    expect(parseConfig(originConfigSchema, { REDIS_URL: '' }).REDIS_URL).toBeUndefined();
  });
});
