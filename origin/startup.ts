import type { Logger } from 'pino';
import type { Store } from './store/store.ts';

/**
 * Start-up failures of the Node entry points (`npm start`, `start:origin`,
 * `start:edge`) as one line that names the variable or port and what to do;
 * the stack only at `LOG_LEVEL=debug`.
 */

/** Ports the process tried to bind, by the variable that set each, e.g. `{ ORIGIN_PORT: 8080 }`. */
export type PortVariables = Readonly<Record<string, number>>;

/**
 * One line for a failure before the process serves: a bind error
 * (`EADDRINUSE`, `EACCES`, `EADDRNOTAVAIL`) names the variable of the port,
 * anything else keeps its message on one line.
 */
export function describeStartupFailure(error: unknown, ports: PortVariables = {}): string {
  const e = error as NodeJS.ErrnoException & { port?: number; address?: string };
  const variable = Object.entries(ports).find(([, port]) => port === e?.port)?.[0];
  const where = `${e?.address ?? ''}${e?.port !== undefined ? `:${e.port}` : ''}`;
  const name = variable ?? 'the port variable';
  if (e?.code === 'EADDRINUSE') {
    return `${variable ?? 'port'}=${e.port}: ${where} is already in use; stop the process holding it or set ${name} to a free port`;
  }
  if (e?.code === 'EACCES' && e.syscall === 'listen') {
    return `${variable ?? 'port'}=${e.port}: not allowed to listen on ${where}; use a port above 1023 or set ${name}`;
  }
  if (e?.code === 'EADDRNOTAVAIL') {
    return `cannot bind ${where}: the address is not on this machine; check the *_HOST variable`;
  }
  const message = error instanceof Error ? error.message : String(error);
  return message.replace(/\s*\n\s*/g, ' ');
}

/**
 * Writes the one-line failure to stderr, the stack too when `debug`, and
 * exits with `code` (1 = could not start, 2 = bad configuration).
 */
export function exitOnStartupFailure(
  program: string,
  error: unknown,
  options: { ports?: PortVariables; debug?: boolean; code?: number } = {},
): never {
  process.stderr.write(`${program}: ${describeStartupFailure(error, options.ports)}\n`);
  if (options.debug && error instanceof Error && error.stack) process.stderr.write(`${error.stack}\n`);
  process.exit(options.code ?? 1);
}

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
