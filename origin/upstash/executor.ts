import { isValidKey } from '../../shared/keys.ts';
import { type KeyValue, keysOf, runCommands } from '../../shared/upstash-commands.ts';
import {
  type Command,
  commandName,
  type Outcome,
  UpstashError,
  type UpstashRequest,
} from '../../shared/upstash-protocol.ts';
import type { CacheService, SwapRequest } from '../cache-service.ts';
import { isNamespaceCommand, runNamespaceCommand } from './namespace-commands.ts';

/** Content type of values written through the Upstash protocol (Redis strings are bytes). */
export const upstashContentType = 'application/octet-stream';

/** Redis's answer to a transaction over keys of different Cluster hash slots. */
export const crossSlotError = "CROSSSLOT Keys in request don't hash to the same slot";

/** Attempts of one read-run-swap unit before it gives up on a key that keeps changing. */
export const maxSwapAttempts = 50;

export interface UpstashExecutorOptions {
  /** The default TTL and value limit are read from its settings at each request (they may be reloaded). */
  readonly service: CacheService;
  readonly now?: () => number;
}

/** Outcomes of a request and the highest entry version it wrote (0: none). */
export interface Executed {
  readonly outcomes: Outcome[];
  readonly version: number;
}

/**
 * Runs Upstash requests at the origin. Each unit — one command of a single
 * request or pipeline, or a whole `multi-exec` — reads its keys, runs the
 * commands over them (`shared/upstash-commands.ts`) and writes the changed
 * keys with one compare-and-swap on the versions read (`CacheService.swap`),
 * reading again on a conflict: optimistic concurrency control (Kung and
 * Robinson, ACM TODS 1981), so `INCR`, `SET NX` and transactions are atomic
 * on every store. A transaction also checks the keys it only read
 * (serializable). Writes purge every edge like any write.
 *
 * Errors: UpstashError 400 `CROSSSLOT` for a transaction over several hash
 * slots of a Cluster, 503 when a key keeps changing for
 * {@link maxSwapAttempts} attempts; store failures as CacheError.
 */
export function upstashExecutor(options: UpstashExecutorOptions) {
  const now = options.now ?? Date.now;
  const { service } = options;

  async function unit(namespace: string, commands: readonly Command[], transaction: boolean): Promise<Executed> {
    const keys = [...new Set(commands.flatMap(keysOf))].filter(isValidKey);
    for (let attempt = 0; attempt < maxSwapAttempts; attempt++) {
      const found = keys.length > 0 ? (await service.getMany(namespace, keys)).found : new Map();
      const nowMs = now();
      // Entries in their grace windows (stale) do not exist for Redis commands, and a swap expects them absent.
      const read = new Map([...found].filter(([, entry]) => entry.expiresAtMs > nowMs));
      const snapshot = new Map<string, KeyValue>(read);
      const { defaultTtlSeconds, maxValueBytes } = service.settings;
      const run = runCommands(commands, snapshot, { nowMs, defaultTtlMs: defaultTtlSeconds * 1000, maxValueBytes });
      if (run.changed.size === 0) return { outcomes: run.outcomes, version: 0 };
      const changes: SwapRequest[] = [];
      for (const [key, state] of run.changed) {
        const expectedVersion = read.get(key)?.version ?? 0;
        if (state === null) changes.push({ key, expectedVersion, action: { kind: 'delete' } });
        else {
          const request = {
            value: state.value,
            contentType: state.contentType ?? upstashContentType,
            tags: state.tags ?? [],
          };
          const ttlMs = Math.max(1, state.expiresAtMs - nowMs);
          changes.push({ key, expectedVersion, action: { kind: 'set', request, ttlMs } });
        }
      }
      if (transaction) {
        for (const key of keys) {
          if (!run.changed.has(key))
            changes.push({ key, expectedVersion: read.get(key)?.version ?? 0, action: { kind: 'check' } });
        }
      }
      const outcome = await service.swap(namespace, changes);
      if (outcome.kind === 'swapped') {
        const version = Math.max(0, ...[...outcome.results.values()].map((r) => r.version));
        return { outcomes: run.outcomes, version };
      }
      if (outcome.kind === 'cross-slot') {
        if (transaction) throw new UpstashError(400, crossSlotError);
        return { outcomes: commands.map(() => ({ error: crossSlotError })), version: 0 };
      }
      // Someone changed a key in between: back off a little (grows with attempts) and read again.
      await new Promise((resolve) => setTimeout(resolve, Math.min(attempt, 20)));
    }
    throw new UpstashError(503, 'ERR the keys kept changing; try again');
  }

  return {
    /**
     * Runs one request in `namespace`; `by` (the caller's service id) is
     * kept in the namespace's version history when a command flushes it.
     * SCAN, KEYS, FLUSHDB and FLUSHALL (`namespace-commands.ts`) run on
     * their own, so a `multi-exec` holding one is refused whole (400).
     */
    async execute(namespace: string, request: UpstashRequest, by = 'anonymous'): Promise<Executed> {
      if (request.kind === 'multi-exec') {
        const whole = request.commands.find(isNamespaceCommand);
        if (whole) throw new UpstashError(400, `ERR '${commandName(whole)}' cannot run inside multi-exec here`);
        return await unit(namespace, request.commands, true);
      }
      const outcomes: Outcome[] = [];
      let version = 0;
      for (const command of request.commands) {
        if (isNamespaceCommand(command)) {
          const done = await runNamespaceCommand(service, namespace, command, by);
          outcomes.push(done.outcome);
          version = Math.max(version, done.version);
          continue;
        }
        const done = await unit(namespace, [command], false);
        outcomes.push(...done.outcomes);
        version = Math.max(version, done.version);
      }
      return { outcomes, version };
    },
  };
}
