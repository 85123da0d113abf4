import { describe, expect, it } from 'vitest';
import { kafkaGroupId, originConfigSchema, parseConfig } from '../../shared/config.ts';

describe('region settings', () => {
  it('a region name is checked, with one line naming the variable', () => {
    expect(() => parseConfig(originConfigSchema, { STRATA_REGION: 'EU West' })).toThrow(
      /^invalid configuration: STRATA_REGION: expected a region name/,
    );
    expect(parseConfig(originConfigSchema, {}).STRATA_REGION).toBe('local');
  });

  it('the consumer group is one per region unless KAFKA_GROUP_ID names one; region local keeps strata-origin', () => {
    expect(kafkaGroupId(parseConfig(originConfigSchema, {}))).toBe('strata-origin');
    expect(kafkaGroupId(parseConfig(originConfigSchema, { STRATA_REGION: 'eu-west' }))).toBe('strata-origin-eu-west');
    expect(kafkaGroupId(parseConfig(originConfigSchema, { STRATA_REGION: 'eu-west', KAFKA_GROUP_ID: 'g' }))).toBe('g');
  });

  it('the forwarder sends through 4 producers unless REGION_FORWARD_PRODUCERS says otherwise (1 to 32)', () => {
    expect(parseConfig(originConfigSchema, {}).REGION_FORWARD_PRODUCERS).toBe(4);
    expect(parseConfig(originConfigSchema, { REGION_FORWARD_PRODUCERS: '1' }).REGION_FORWARD_PRODUCERS).toBe(1);
    expect(() => parseConfig(originConfigSchema, { REGION_FORWARD_PRODUCERS: '0' })).toThrow(
      /REGION_FORWARD_PRODUCERS/,
    );
    expect(() => parseConfig(originConfigSchema, { REGION_FORWARD_PRODUCERS: '33' })).toThrow(
      /REGION_FORWARD_PRODUCERS/,
    );
  });
});
