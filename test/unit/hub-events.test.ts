import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { CacheService } from '../../origin/cache-service.ts';
import { decodeCommand } from '../../origin/events/commands.ts';
import { itemEventsOf, itemLossEvent } from '../../origin/events/item-events.ts';
import { InProcessPurgeBus } from '../../origin/purge/in-process-bus.ts';
import { Reloader } from '../../origin/reload.ts';
import { memoryStore } from '../../origin/store/memory.ts';
import { passThroughStore } from '../../origin/store/pass-through.ts';
import { originConfigSchema, parseConfig } from '../../shared/config.ts';
import { itemUpdatedEventSchema } from '../../shared/hub-events.ts';
import type { PurgeLogEntry } from '../../shared/schemas.ts';

const source = { region: 'eu', serviceId: 'origin-1' };
const entry = (over: Partial<PurgeLogEntry>): PurgeLogEntry => ({
  namespace: 'ns',
  keys: [],
  tags: [],
  prefix: null,
  version: 7,
  action: 'delete',
  ts: 1_700_000_000_000,
  ...over,
});
const events = (e: PurgeLogEntry) =>
  itemEventsOf(e, 'eu:inc:1-0', source).map((r) => ({
    key: r.key,
    ...itemUpdatedEventSchema.parse(JSON.parse(r.value)),
  }));

describe('cache.item.updated from a purge log entry', () => {
  it('a write of two keys is one set event per key, keyed namespace:key, with distinct ids', () => {
    const out = events(entry({ keys: ['a', 'b'], action: 'update' }));
    expect(out.map((e) => [e.key, e.id, e.data.key, e.data.operation, e.data.version])).toEqual([
      ['ns:a', 'eu:inc:1-0:0', 'a', 'set', 7],
      ['ns:b', 'eu:inc:1-0:1', 'b', 'set', 7],
    ]);
    expect(out[0]!.data).toMatchObject({
      origin_region: 'eu',
      service_id: 'origin-1',
      timestamp: '2023-11-14T22:13:20.000Z',
    });
  });

  it('a delete is delete; a purge by keys is purge; a purge by tag or prefix adds one event of no key', () => {
    expect(events(entry({ keys: ['a'] })).map((e) => e.data.operation)).toEqual(['delete']);
    expect(events(entry({ keys: ['a'], purge: true })).map((e) => e.data.operation)).toEqual(['purge']);
    const out = events(entry({ keys: ['a'], tags: ['t'], prefix: 'p:', purge: true }));
    expect(out.map((e) => [e.key, e.data.key, e.data.operation, e.data.tags, e.data.prefix])).toEqual([
      ['ns:a', 'a', 'purge', [], null],
      ['ns', null, 'purge', ['t'], 'p:'],
    ]);
  });

  it('a flush is one event of no key with the new version; another region’s change and an empty closing entry are none', () => {
    expect(
      events(entry({ action: 'flush', version: 12 })).map((e) => [e.key, e.data.operation, e.data.version]),
    ).toEqual([['ns', 'flush', 12]]);
    expect(events(entry({ keys: ['a'], origin_region: 'us' }))).toEqual([]);
    expect(events(entry({ keys: ['a'], origin_region: 'eu' }))).toHaveLength(1);
    expect(events(entry({ action: 'update', version: 0 }))).toEqual([]);
  });

  it('a loss is a reset of every namespace', () => {
    const { key, value } = itemLossEvent('eu:reset:1', 5, source);
    expect(key).toBe('reset:eu');
    expect(itemUpdatedEventSchema.parse(JSON.parse(value)).data).toMatchObject({ namespace: null, operation: 'reset' });
  });
});

describe('commands from config.cache.update and control.cache.action', () => {
  const setup = () => {
    const memory = memoryStore({ maxBytes: 1_000_000 });
    const bus = new InProcessPurgeBus({ retainedEntries: 10 });
    const service = new CacheService({
      store: passThroughStore(memory, memory),
      bus,
      defaultTtlSeconds: 60,
      maxValueBytes: 1000,
    });
    const reloader = new Reloader({
      initial: parseConfig(originConfigSchema, { CACHE_DEFAULT_TTL: '60', MAX_VALUE_BYTES: '1000' }),
      service,
      logger: pino({ level: 'silent' }),
    });
    return { service, deps: { service, reloader, auth: null } };
  };
  const json = (value: unknown) => Buffer.from(JSON.stringify(value));

  it('a defaults change goes through the reload rules: a valid one applies, an invalid one is refused naming the variable', async () => {
    const { service, deps } = setup();
    const ok = await decodeCommand(
      'config',
      json({
        event: 'config.cache.update',
        data: { policy: 'defaults', scope: 'all', parameters: { default_ttl: 90 } },
      }),
      undefined,
      deps,
    );
    if (!('run' in ok)) throw new Error(`refused: ${ok.reason}`);
    await ok.run();
    expect(service.settings.defaultTtlSeconds).toBe(90);
    const bad = await decodeCommand(
      'config',
      json({
        event: 'config.cache.update',
        data: { policy: 'defaults', scope: 'all', parameters: { max_value_bytes: 'lots' } },
      }),
      undefined,
      deps,
    );
    if (!('run' in bad)) throw new Error('decoded as refused: the value is checked by the reload rules');
    await expect(bad.run()).rejects.toMatchObject({
      code: 'CACHE_004',
      message: expect.stringMatching(/^invalid configuration: MAX_VALUE_BYTES/),
    });
    expect(service.settings.maxValueBytes).toBe(1000);
  });

  it('malformed events, unknown actions and a profile with a bad field are refused as invalid', async () => {
    const { deps } = setup();
    const refused = async (topic: 'config' | 'control', value: Buffer | null) => {
      const out = await decodeCommand(topic, value, undefined, deps);
      return 'kind' in out ? out.kind : 'accepted';
    };
    expect(await refused('control', null)).toBe('invalid');
    expect(await refused('control', Buffer.from('{'))).toBe('invalid');
    expect(
      await refused('control', json({ event: 'control.cache.action', data: { action: 'drop', target: 'ns' } })),
    ).toBe('invalid');
    expect(
      await refused(
        'control',
        json({ event: 'control.cache.action', data: { action: 'purge', target: 'ns', parameters: {} } }),
      ),
    ).toBe('invalid');
    expect(
      await refused(
        'config',
        json({ event: 'config.cache.update', data: { policy: 'profile', scope: 'ns', parameters: { ttl: -1 } } }),
      ),
    ).toBe('invalid');
    expect(
      await refused('config', json({ event: 'control.cache.action', data: { action: 'reload', target: 'all' } })),
    ).toBe('invalid');
    expect(
      await refused('control', json({ event: 'control.cache.action', data: { action: 'reload', target: 'all' } })),
    ).toBe('accepted');
  });
});
