import type { Logger } from 'pino';
import type { Store } from './store/store.ts';

/** Thrown when `REDIS_REQUIRED_AT_START=true` and the store does not answer. */
export class StoreUnreachableAtStart extends Error {}

/**
 * Pings a Redis-backed store until it answers or `budgetMs` passes. When it
 * never answers: with `required` it throws {@link StoreUnreachableAtStart}
 * naming the variable, else it logs one `error` line and the origin starts
 * degraded (the breaker and the local tier take over, `/ready` answers 503).
 * The embedded memory store always answers.
 */
export async function checkStoreAtStart(
  store: Store,
  options: { variable: string; required: boolean; logger: Logger; budgetMs?: number },
): Promise<void> {
  const deadline = Date.now() + (options.budgetMs ?? 3_000);
  let last: unknown;
  do {
    try {
      await store.ping();
      return;
    } catch (error) {
      last = error;
    }
    await new Promise((r) => setTimeout(r, 200));
  } while (Date.now() < deadline);
  const reason = last instanceof Error ? last.message : String(last);
  if (options.required) {
    throw new StoreUnreachableAtStart(
      `${options.variable}: the ${store.kind} store did not answer at start-up (${reason}); start it, fix ${options.variable}, or unset REDIS_REQUIRED_AT_START to start degraded`,
    );
  }
  options.logger.error(
    { store: store.kind, variable: options.variable, err: last },
    `STORE UNREACHABLE: ${options.variable} names a ${store.kind} store that does not answer (${reason}); serving DEGRADED from the local tier until it does (set REDIS_REQUIRED_AT_START=true to refuse to start instead)`,
  );
}
