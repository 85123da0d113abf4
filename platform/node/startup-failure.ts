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
