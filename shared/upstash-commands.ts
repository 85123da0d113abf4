import type { Scope } from './auth.ts';
import { isValidKey, maxTtlSeconds } from './keys.ts';
import {
  type Arg,
  argBytes,
  argText,
  type Command,
  commandName,
  type Outcome,
  type Reply,
} from './upstash-protocol.ts';

/**
 * The Redis string commands Strata serves over the Upstash protocol, as pure
 * functions over a snapshot of the keys they touch (Redis command reference,
 * redis.io/docs/latest/commands): the origin reads the keys, runs the
 * commands here, and writes the result back with one compare-and-swap on the
 * versions it read, retrying on a conflict; the edge runs the read-only ones
 * over its own tier. Every key lives in a Strata entry, so REST, gRPC and
 * Upstash see the same data.
 *
 * Differences from Redis, all stated in the README: every key has a TTL (a
 * write without one gets the origin's default, at most one year), so TTL
 * never answers -1; values are at most the origin's value limit; keys follow
 * Strata's key rules.
 */

/** A key as the commands see it: its bytes and when it expires (Unix ms). */
export interface KeyValue {
  readonly value: Uint8Array;
  readonly expiresAtMs: number;
  /** Kept by commands that change only the expiry (EXPIRE); absent for values the commands make. */
  readonly contentType?: string;
  /** As `contentType`. */
  readonly tags?: readonly string[];
}

/** What one command needs: its grant and the keys it reads and writes. */
interface Spec {
  readonly scope: Scope;
  /** Served by an edge from its tier (reads of values only). */
  readonly edge: boolean;
  readonly keys: (args: readonly Arg[]) => string[];
  readonly writes: boolean;
  /** A command over the whole namespace (SCAN, KEYS, FLUSHDB), run by the origin, not by {@link runCommands}. */
  readonly namespace?: true;
}

const first = (args: readonly Arg[]) => (args.length > 0 ? [argText(args[0]!)] : []);
const all = (args: readonly Arg[]) => args.map(argText);
const everyOther = (args: readonly Arg[]) => args.filter((_, i) => i % 2 === 0).map(argText);
const none = () => [];

const specs: Record<string, Spec> = {
  ping: { scope: 'cache:read', edge: true, keys: none, writes: false },
  get: { scope: 'cache:read', edge: true, keys: first, writes: false },
  mget: { scope: 'cache:read', edge: true, keys: all, writes: false },
  exists: { scope: 'cache:read', edge: false, keys: all, writes: false },
  ttl: { scope: 'cache:read', edge: false, keys: first, writes: false },
  pttl: { scope: 'cache:read', edge: false, keys: first, writes: false },
  set: { scope: 'cache:write', edge: false, keys: first, writes: true },
  mset: { scope: 'cache:write', edge: false, keys: everyOther, writes: true },
  expire: { scope: 'cache:write', edge: false, keys: first, writes: true },
  pexpire: { scope: 'cache:write', edge: false, keys: first, writes: true },
  incr: { scope: 'cache:write', edge: false, keys: first, writes: true },
  incrby: { scope: 'cache:write', edge: false, keys: first, writes: true },
  decr: { scope: 'cache:write', edge: false, keys: first, writes: true },
  decrby: { scope: 'cache:write', edge: false, keys: first, writes: true },
  del: { scope: 'cache:delete', edge: false, keys: all, writes: true },
  // Over the whole namespace: the origin runs them (`origin/upstash/namespace-commands.ts`), never `runCommands`.
  scan: { scope: 'cache:read', edge: false, keys: none, writes: false, namespace: true },
  keys: { scope: 'cache:read', edge: false, keys: none, writes: false, namespace: true },
  flushdb: { scope: 'cache:flush', edge: false, keys: none, writes: true, namespace: true },
  flushall: { scope: 'cache:flush', edge: false, keys: none, writes: true, namespace: true },
};

/** The commands served, lower case. */
export const supportedCommands: readonly string[] = Object.keys(specs);

/** The spec of a command, or undefined when it is not served. */
function specOf(command: Command): Spec | undefined {
  return Object.hasOwn(specs, commandName(command)) ? specs[commandName(command)] : undefined;
}

/** The grant a command needs; unknown commands need only a valid token (they answer an error). */
export function scopeOf(command: Command): Scope | null {
  return specOf(command)?.scope ?? null;
}

/** Keys a command touches (unknown commands: none). */
export function keysOf(command: Command): string[] {
  return specOf(command)?.keys(command.slice(1)) ?? [];
}

/** True when the command changes keys. */
export function isWrite(command: Command): boolean {
  return specOf(command)?.writes ?? false;
}

/** True when an edge may answer the command from its tier. */
export function servedAtEdge(command: Command): boolean {
  return specOf(command)?.edge ?? false;
}

/** The options of a run. */
export interface RunOptions {
  /** Unix ms now. */
  readonly nowMs: number;
  /** TTL, ms, of a key written without one (`CACHE_DEFAULT_TTL`). */
  readonly defaultTtlMs: number;
  /** Largest value, bytes. */
  readonly maxValueBytes: number;
}

/** The result of running commands over a snapshot. */
export interface Run {
  readonly outcomes: Outcome[];
  /** Final state of every key the commands changed (null: deleted). */
  readonly changed: Map<string, KeyValue | null>;
}

class CommandError extends Error {}
const fail = (message: string): never => {
  throw new CommandError(message);
};

const maxTtlMs = maxTtlSeconds * 1000;
const int64Min = -(2n ** 63n);
const int64Max = 2n ** 63n - 1n;
const ok: Reply = { status: 'OK' };

/**
 * Runs commands in order over `snapshot` (each touched key's value, or null
 * when absent) and returns each command's outcome and the keys changed. A
 * failing command answers its error and changes nothing; the others run.
 */
export function runCommands(
  commands: readonly Command[],
  snapshot: ReadonlyMap<string, KeyValue | null>,
  options: RunOptions,
): Run {
  const { nowMs } = options;
  const changed = new Map<string, KeyValue | null>();
  const read = (key: string): KeyValue | null => {
    const v = changed.has(key) ? changed.get(key)! : (snapshot.get(key) ?? null);
    return v && v.expiresAtMs > nowMs ? v : null;
  };
  const write = (key: string, value: KeyValue | null) => changed.set(key, value);
  const outcomes: Outcome[] = [];
  for (const command of commands) {
    // Writes of a failed command must not land: stage them and keep them only on success.
    const before = new Map(changed);
    try {
      outcomes.push({ result: runOne(command, read, write, options) });
    } catch (error) {
      if (!(error instanceof CommandError)) throw error;
      changed.clear();
      for (const [k, v] of before) changed.set(k, v);
      outcomes.push({ error: error.message });
    }
  }
  return { outcomes, changed };
}

/** The error Upstash answers for a command it does not offer. */
export function unsupportedCommand(name: string): string {
  return `ERR Command is not available: '${name}'`;
}

function runOne(
  command: Command,
  read: (key: string) => KeyValue | null,
  write: (key: string, value: KeyValue | null) => void,
  options: RunOptions,
): Reply {
  const name = commandName(command);
  const spec = specOf(command);
  if (!spec) return fail(unsupportedCommand(name));
  if (spec.namespace) return fail(`ERR '${name}' runs at the origin only, outside a transaction`);
  const args = command.slice(1);
  const arity = (min: number, max = Number.POSITIVE_INFINITY) => {
    if (args.length < min || args.length > max) fail(`ERR wrong number of arguments for '${name}' command`);
  };
  for (const key of spec.keys(args)) {
    if (!isValidKey(key)) fail('ERR invalid key: keys are 1-512 bytes of UTF-8 without control characters');
  }
  const { nowMs } = options;
  const value = (arg: Arg): Uint8Array => {
    const bytes = argBytes(arg);
    if (bytes.byteLength > options.maxValueBytes) fail(`ERR value exceeds ${options.maxValueBytes} bytes`);
    return bytes;
  };
  const ttlAt = (ms: number): number => {
    if (!Number.isFinite(ms) || ms <= 0 || ms > maxTtlMs) fail(`ERR invalid expire time in '${name}' command`);
    return nowMs + ms;
  };

  switch (name) {
    case 'ping':
      arity(0, 1);
      return args.length === 0 ? { status: 'PONG' } : argBytes(args[0]!);
    case 'get':
      arity(1, 1);
      return read(argText(args[0]!))?.value ?? null;
    case 'mget':
      arity(1);
      return args.map((k) => read(argText(k))?.value ?? null);
    case 'exists':
      arity(1);
      return args.filter((k) => read(argText(k)) !== null).length;
    case 'ttl':
    case 'pttl': {
      arity(1, 1);
      const current = read(argText(args[0]!));
      if (!current) return -2;
      const left = current.expiresAtMs - nowMs;
      return name === 'pttl' ? left : Math.floor((left + 500) / 1000);
    }
    case 'set':
      return set(args, read, write, value, ttlAt, options);
    case 'mset':
      if (args.length === 0 || args.length % 2 !== 0) fail(`ERR wrong number of arguments for '${name}' command`);
      for (let i = 0; i < args.length; i += 2) {
        write(argText(args[i]!), { value: value(args[i + 1]!), expiresAtMs: nowMs + options.defaultTtlMs });
      }
      return ok;
    case 'del': {
      arity(1);
      let n = 0;
      for (const key of new Set(args.map(argText))) {
        if (!read(key)) continue;
        n += 1;
        write(key, null);
      }
      return n;
    }
    case 'expire':
    case 'pexpire': {
      arity(2, 3);
      const key = argText(args[0]!);
      const amount = integer(args[1]!);
      const ms = Number(amount) * (name === 'expire' ? 1000 : 1);
      const current = read(key);
      if (!current) return 0;
      const flag = args[2] === undefined ? '' : argText(args[2]).toLowerCase();
      if (!['', 'nx', 'xx', 'gt', 'lt'].includes(flag)) fail(`ERR Unsupported option ${argText(args[2]!)}`);
      const at = nowMs + ms;
      // Every key has an expiry here: NX never applies, XX always does.
      if (
        flag === 'nx' ||
        (flag === 'gt' && at <= current.expiresAtMs) ||
        (flag === 'lt' && at >= current.expiresAtMs)
      ) {
        return 0;
      }
      if (ms <= 0) write(key, null);
      else write(key, { ...current, expiresAtMs: ttlAt(ms) });
      return 1;
    }
    default: {
      // incr, incrby, decr, decrby
      const by = name === 'incr' ? 1n : name === 'decr' ? -1n : null;
      arity(by === null ? 2 : 1, by === null ? 2 : 1);
      const step = by ?? (name === 'decrby' ? -integer(args[1]!) : integer(args[1]!));
      const key = argText(args[0]!);
      const current = read(key);
      const base = current ? integer(current.value) : 0n;
      const next = base + step;
      if (next < int64Min || next > int64Max) fail('ERR increment or decrement would overflow');
      write(key, {
        value: new TextEncoder().encode(next.toString()),
        expiresAtMs: current?.expiresAtMs ?? nowMs + options.defaultTtlMs,
      });
      return Number(next);
    }
  }
}

function set(
  args: readonly Arg[],
  read: (key: string) => KeyValue | null,
  write: (key: string, value: KeyValue | null) => void,
  value: (arg: Arg) => Uint8Array,
  ttlAt: (ms: number) => number,
  options: RunOptions,
): Reply {
  if (args.length < 2) fail(`ERR wrong number of arguments for 'set' command`);
  const key = argText(args[0]!);
  const bytes = value(args[1]!);
  let expiresAtMs: number | null = null;
  let keepTtl = false;
  let condition: 'nx' | 'xx' | null = null;
  let get = false;
  for (let i = 2; i < args.length; i++) {
    const option = argText(args[i]!).toLowerCase();
    const operand = () => {
      if (expiresAtMs !== null || keepTtl || i + 1 >= args.length) fail('ERR syntax error');
      i += 1;
      return Number(integer(args[i]!));
    };
    if (option === 'ex') expiresAtMs = ttlAt(operand() * 1000);
    else if (option === 'px') expiresAtMs = ttlAt(operand());
    else if (option === 'exat') expiresAtMs = ttlAt(operand() * 1000 - options.nowMs);
    else if (option === 'pxat') expiresAtMs = ttlAt(operand() - options.nowMs);
    else if (option === 'keepttl' && expiresAtMs === null) keepTtl = true;
    else if ((option === 'nx' || option === 'xx') && condition === null) condition = option;
    else if (option === 'get') get = true;
    else fail('ERR syntax error');
  }
  const current = read(key);
  const old = current?.value ?? null;
  const applies = condition === null || (condition === 'nx' ? current === null : current !== null);
  if (applies) {
    const at = expiresAtMs ?? (keepTtl && current ? current.expiresAtMs : options.nowMs + options.defaultTtlMs);
    write(key, { value: bytes, expiresAtMs: at });
  }
  if (get) return old;
  return applies ? ok : null;
}

/** A Redis integer argument or value: a signed 64-bit decimal without spaces or a plus sign. */
function integer(arg: Arg): bigint {
  const text = argText(arg);
  if (!/^-?(0|[1-9]\d{0,18})$/.test(text)) fail('ERR value is not an integer or out of range');
  const n = BigInt(text);
  if (n < int64Min || n > int64Max) fail('ERR value is not an integer or out of range');
  return n;
}
