import { describe, expect, inject, it } from 'vitest';
import { createTopics, uniqueName } from '../support/kafka.ts';
import { cleanEnv, spawnEntry } from '../support/spawn-entry.ts';

describe('kafkajs on Node 24', () => {
  it('publishing through kafkajs prints no TimeoutNegativeWarning (its request queue no longer schedules a negative delay)', async () => {
    const brokers = inject('kafkaBrokers');
    const topic = uniqueName('timeouts');
    await createTopics(brokers, topic, 1);
    const run = spawnEntry('scripts/invalidate.ts', cleanEnv({}), [
      '--brokers',
      brokers,
      '--topic',
      topic,
      '--namespace',
      'demo',
      '--keys',
      'k1',
    ]);
    const code = await run.exited;
    expect(run.stdout()).toMatch(/^published .* to timeouts/);
    expect(code).toBe(0);
    expect(run.stderr()).not.toMatch(/TimeoutNegativeWarning|negative number/);
  });
});
