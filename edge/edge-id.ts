/** Longest edge id the origin takes in a report (`edge_id`, 1–64 characters). */
export const maxEdgeIdLength = 64;

/**
 * The id an edge names itself by in every report to its origin (the
 * dashboard's stats and the staleness canary's applied positions):
 * `configured` (`EDGE_ID`) when set, else `<host>:<port>` of the listener,
 * the host cut so the id stays within {@link maxEdgeIdLength} characters.
 */
export function edgeIdOf(configured: string | undefined, host: string, port: number): string {
  if (configured !== undefined) return configured;
  const suffix = `:${port}`;
  return `${host.slice(0, maxEdgeIdLength - suffix.length)}${suffix}`;
}
