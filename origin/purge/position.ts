/**
 * Where an entry sits in a purge log, as the bus that issued it sees it.
 * Everyone else holds the serialised form, a {@link PurgePosition} string
 * (`shared/schemas.ts`), and never looks inside.
 */
export interface LogPosition {
  /** Which log: the same at every replica that shares it (for example a region's stream). */
  readonly log: string;
  /** Which lifetime of that log: a log that lost its entries (restart, flush) starts a new one. */
  readonly incarnation: string;
  /** Where in that lifetime; its order is the bus's business (an integer for the in-process bus). */
  readonly offset: string;
}

const part = /^[A-Za-z0-9._-]+$/;

/**
 * Serialises a position as `log:incarnation:offset`. Each part is
 * `[A-Za-z0-9._-]+`, so the string is a valid SSE `id:` line and a
 * `Last-Event-ID` header value.
 * @throws Error when a part holds another character (a bug in the bus).
 */
export function formatPosition(position: LogPosition): string {
  const { log, incarnation, offset } = position;
  if (![log, incarnation, offset].every((p) => part.test(p))) {
    throw new Error(`purge position parts must match ${part}: ${JSON.stringify(position)}`);
  }
  return `${log}:${incarnation}:${offset}`;
}

/**
 * Reads a serialised position; null when the value is not one (absent,
 * malformed, or from an older origin that sent `epoch:seq`). A caller
 * treats a non-null value that it cannot place as "from another log".
 */
export function parsePosition(value: string | null | undefined): LogPosition | null {
  if (!value) return null;
  const parts = value.split(':');
  if (parts.length !== 3 || !parts.every((p) => part.test(p))) return null;
  const [log, incarnation, offset] = parts as [string, string, string];
  return { log, incarnation, offset };
}
