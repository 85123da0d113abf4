import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kafkaConnectionFromConfig, kafkaSecurity } from '../../origin/kafka/client.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';

const parse = (env: Record<string, string>) =>
  parseConfig(originConfigSchema, { KAFKA_BROKERS: '127.0.0.1:9092', ...env });

describe('Kafka security settings', () => {
  it('a mechanism without user name and password names both, on one line', () => {
    expect(() => parse({ KAFKA_SASL_MECHANISM: 'scram-sha-256' })).toThrow(
      'invalid configuration: KAFKA_SASL_USERNAME: required with KAFKA_SASL_MECHANISM=scram-sha-256; KAFKA_SASL_PASSWORD: required with KAFKA_SASL_MECHANISM=scram-sha-256',
    );
  });

  it('credentials without a mechanism, an unknown mechanism, and a CA file without TLS are refused', () => {
    expect(() => parse({ KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' })).toThrow(
      /KAFKA_SASL_USERNAME: needs KAFKA_SASL_MECHANISM .*KAFKA_SASL_PASSWORD: needs KAFKA_SASL_MECHANISM/,
    );
    expect(() => parse({ KAFKA_SASL_MECHANISM: 'gssapi', KAFKA_SASL_USERNAME: 'u', KAFKA_SASL_PASSWORD: 'p' })).toThrow(
      /^invalid configuration: KAFKA_SASL_MECHANISM: /,
    );
    expect(() => parse({ KAFKA_SSL_CA_FILE: '/etc/ssl/ca.pem' })).toThrow(
      'invalid configuration: KAFKA_SSL_CA_FILE: needs KAFKA_SSL=true',
    );
  });

  it('plaintext without SASL adds nothing to the kafkajs config', () => {
    const connection = kafkaConnectionFromConfig(parse({}))!;
    expect(kafkaSecurity(connection)).toEqual({});
  });

  it('TLS with a CA file and SCRAM reach the kafkajs config; an unreadable CA file is one line', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-kafka-ca-'));
    const ca = join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    const config = parse({
      KAFKA_SSL: 'true',
      KAFKA_SSL_CA_FILE: ca,
      KAFKA_SASL_MECHANISM: 'scram-sha-512',
      KAFKA_SASL_USERNAME: 'svc',
      KAFKA_SASL_PASSWORD: 'secret',
    });
    expect(kafkaSecurity(kafkaConnectionFromConfig(config)!)).toEqual({
      ssl: { ca: ['-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'] },
      sasl: { mechanism: 'scram-sha-512', username: 'svc', password: 'secret' },
    });
    expect(kafkaSecurity(kafkaConnectionFromConfig(parse({ KAFKA_SSL: 'true' }))!)).toEqual({ ssl: true });
    const missing = parse({ KAFKA_SSL: 'true', KAFKA_SSL_CA_FILE: join(dir, 'nope.pem') });
    expect(() => kafkaConnectionFromConfig(missing)).toThrow(
      `KAFKA_SSL_CA_FILE: cannot read ${join(dir, 'nope.pem')} (ENOENT)`,
    );
  });
});
