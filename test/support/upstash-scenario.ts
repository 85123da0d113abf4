/**
 * One session of the real `@upstash/redis` client against a Strata edge or
 * origin, runtime-free (no Node imports), so the same code runs on Node, in a
 * `deno` process and inside workerd. It records what the client returned or
 * threw; the Node test asserts on the record.
 */

/** The client options the scenario uses (a subset of `RedisConfigNodejs`). */
interface ClientConfig {
  url: string;
  token: string;
  automaticDeserialization?: boolean;
  enableTelemetry?: boolean;
  retry?: false;
}

/** The client methods the scenario calls. */
interface Client {
  ping(): Promise<unknown>;
  get(key: string): Promise<unknown>;
  set(key: string, value: unknown, options?: Record<string, unknown>): Promise<unknown>;
  mset(entries: Record<string, unknown>): Promise<unknown>;
  mget(...keys: string[]): Promise<unknown>;
  del(...keys: string[]): Promise<unknown>;
  exists(...keys: string[]): Promise<unknown>;
  incr(key: string): Promise<unknown>;
  incrby(key: string, by: number): Promise<unknown>;
  decr(key: string): Promise<unknown>;
  expire(key: string, seconds: number): Promise<unknown>;
  pexpire(key: string, ms: number): Promise<unknown>;
  ttl(key: string): Promise<unknown>;
  pttl(key: string): Promise<unknown>;
  scan(cursor: string | number, options?: { match?: string; count?: number }): Promise<[string, string[]]>;
  keys(pattern: string): Promise<string[]>;
  flushdb(): Promise<unknown>;
  flushall(): Promise<unknown>;
  hgetall(key: string): Promise<unknown>;
  pipeline(): Batch;
  multi(): Batch;
}

interface Batch {
  set(key: string, value: unknown): Batch;
  get(key: string): Batch;
  incr(key: string): Batch;
  exec(options?: { keepErrors: true }): Promise<unknown[]>;
}

/** A constructor of the client: `Redis` from `@upstash/redis` (Node, Deno) or `@upstash/redis/cloudflare`. */
export type ClientConstructor = new (config: ClientConfig) => unknown;

/** What the scenario needs: where, and tokens of three kinds. */
export interface UpstashScenarioInput {
  /** Base URL of the edge or origin, e.g. `http://127.0.0.1:8787`. */
  readonly baseUrl: string;
  readonly namespace: string;
  /** Every scope in the namespace. */
  readonly token: string;
  /** `cache:read` only. */
  readonly readOnlyToken: string;
  /** Every scope, in another namespace. */
  readonly otherNamespaceToken: string;
  /** Prefix of every key, unique per run. */
  readonly prefix: string;
}

const failure = async (run: () => Promise<unknown>): Promise<string> => {
  try {
    await run();
    return 'no error';
  } catch (error) {
    return error instanceof Error ? error.message : String(error);
  }
};

/** Runs the session; every field of the result is what the client answered (or the message it threw). */
export async function upstashScenario(
  Redis: ClientConstructor,
  input: UpstashScenarioInput,
): Promise<Record<string, unknown>> {
  const url = `${input.baseUrl}/upstash/${input.namespace}`;
  const make = (token: string, over: Partial<ClientConfig> = {}) =>
    new Redis({ url, token, enableTelemetry: false, retry: false, ...over }) as Client;
  const redis = make(input.token);
  const raw = make(input.token, { automaticDeserialization: false });
  const k = (name: string) => `${input.prefix}:${name}`;
  const out: Record<string, unknown> = {};

  out.ping = await redis.ping();
  out.setString = await redis.set(k('s'), 'hello, strata ✓');
  out.getString = await redis.get(k('s'));
  await redis.set(k('n'), 42);
  out.getNumber = await redis.get(k('n'));
  out.getNumberRaw = await raw.get(k('n'));
  await redis.set(k('j'), { a: 1, b: [true, null, 'x'] });
  out.getJson = await redis.get(k('j'));
  out.getJsonRaw = await raw.get(k('j'));
  out.getMissing = await redis.get(k('missing'));

  out.setNx = [
    await redis.set(k('nx'), 'first', { nx: true }),
    await redis.set(k('nx'), 'second', { nx: true }),
    await redis.get(k('nx')),
  ];
  out.setXxMissing = await redis.set(k('xx'), 'v', { xx: true });
  out.setGet = await redis.set(k('nx'), 'third', { get: true });

  out.counter = [await redis.incr(k('c')), await redis.incrby(k('c'), 10), await redis.decr(k('c'))];
  out.incrNotInteger = await failure(() => redis.incr(k('s')));
  await Promise.all(Array.from({ length: 20 }, () => redis.incr(k('race'))));
  out.concurrentIncrements = await redis.get(k('race'));

  await redis.set(k('t'), 'v', { ex: 100 });
  out.ttlAfterSetEx = await redis.ttl(k('t'));
  out.expire = await redis.expire(k('t'), 5);
  out.ttlAfterExpire = await redis.ttl(k('t'));
  out.pexpire = await redis.pexpire(k('t'), 90_000);
  out.pttl = await redis.pttl(k('t'));
  out.ttlMissing = await redis.ttl(k('missing'));

  out.mset = await redis.mset({ [k('m1')]: 'a', [k('m2')]: 2 });
  out.mget = await redis.mget(k('m1'), k('m2'), k('missing'));
  out.exists = await redis.exists(k('m1'), k('m2'), k('missing'));
  out.del = await redis.del(k('m1'), k('m2'), k('missing'));
  out.getDeleted = await redis.get(k('m1'));

  out.pipeline = await redis
    .pipeline()
    .set(k('p'), 'x')
    .get(k('p'))
    .incr(k('pc'))
    .incr(k('s'))
    .exec({ keepErrors: true });
  out.multiExec = await redis.multi().set(k('{tx}a'), 1).incr(k('{tx}a')).get(k('{tx}a')).exec();

  // SCAN and KEYS list the namespace; keys are recorded without this run's prefix.
  const own = (keys: readonly string[]) => keys.map((key) => key.slice(input.prefix.length + 1)).sort();
  const scanned: string[] = [];
  let cursor = '0';
  let pages = 0;
  do {
    const [next, keys] = await redis.scan(cursor, { match: `${input.prefix}:*`, count: 3 });
    scanned.push(...keys);
    cursor = String(next);
    pages++;
  } while (cursor !== '0' && pages < 1_000);
  out.scan = { keys: own(scanned), once: new Set(scanned).size === scanned.length, done: cursor === '0' };
  out.keys = own(await redis.keys(`${input.prefix}:n*`));
  out.keysBadGlob = await failure(() => redis.keys(`${input.prefix}:[`));
  out.unsupported = await failure(() => redis.hgetall(k('s')));

  out.badToken = await failure(() => make('not-a-token').get(k('s')));
  out.readOnlyGet = await make(input.readOnlyToken).get(k('s'));
  out.readOnlySet = await failure(() => make(input.readOnlyToken).set(k('s'), 'nope'));
  out.otherNamespace = await failure(() => make(input.otherNamespaceToken).get(k('s')));
  out.afterRefusedSet = await redis.get(k('s'));

  // FLUSHDB last: it empties the namespace (a version bump), and the writer sees that at once.
  out.readOnlyFlushdb = await failure(() => make(input.readOnlyToken).flushdb());
  out.flushdb = await redis.flushdb();
  out.afterFlush = [await redis.get(k('s')), own(await redis.keys(`${input.prefix}:*`))];
  await redis.set(k('s'), 'after flush');
  out.flushall = await redis.flushall();
  out.afterFlushall = await redis.get(k('s'));
  return out;
}

/** What {@link upstashScenario} must return (the assertions every runtime shares). */
export function expectedScenario(): Record<string, (value: unknown) => boolean> {
  const is = (expected: unknown) => (value: unknown) => JSON.stringify(value) === JSON.stringify(expected);
  const has = (text: string) => (value: unknown) => typeof value === 'string' && value.includes(text);
  const between = (lo: number, hi: number) => (value: unknown) =>
    typeof value === 'number' && value >= lo && value <= hi;
  return {
    ping: is('PONG'),
    setString: is('OK'),
    getString: is('hello, strata ✓'),
    getNumber: is(42),
    getNumberRaw: is('42'),
    getJson: is({ a: 1, b: [true, null, 'x'] }),
    getJsonRaw: is('{"a":1,"b":[true,null,"x"]}'),
    getMissing: is(null),
    setNx: is(['OK', null, 'first']),
    setXxMissing: is(null),
    setGet: is('first'),
    counter: is([1, 11, 10]),
    incrNotInteger: has('ERR value is not an integer or out of range'),
    concurrentIncrements: is(20),
    ttlAfterSetEx: between(99, 100),
    expire: is(1),
    ttlAfterExpire: between(4, 5),
    pexpire: is(1),
    pttl: between(89_000, 90_000),
    ttlMissing: is(-2),
    mset: is('OK'),
    mget: is(['a', 2, null]),
    exists: is(2),
    del: is(2),
    getDeleted: is(null),
    pipeline: is([
      { result: 'OK' },
      { result: 'x' },
      { result: 1 },
      { error: 'ERR value is not an integer or out of range', result: undefined },
    ]),
    multiExec: is(['OK', 2, 2]),
    scan: is({ keys: ['c', 'j', 'n', 'nx', 'p', 'pc', 'race', 's', 't', '{tx}a'], once: true, done: true }),
    keys: is(['n', 'nx']),
    keysBadGlob: has('ERR Invalid'),
    unsupported: has("ERR Command is not available: 'hgetall'"),
    badToken: has('Unauthorized'),
    readOnlyGet: is('hello, strata ✓'),
    readOnlySet: has("NOPERM this token has no permissions to run the 'set' command"),
    otherNamespace: has("NOPERM this token has no permissions to run the 'get' command"),
    afterRefusedSet: is('hello, strata ✓'),
    readOnlyFlushdb: has("NOPERM this token has no permissions to run the 'flushdb' command"),
    flushdb: is('OK'),
    afterFlush: is([null, []]),
    flushall: is('OK'),
    afterFlushall: is(null),
  };
}
