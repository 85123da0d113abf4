/**
 * Entry versions. A version is a number that only grows for a given key:
 * `max(previous + 1, nowMs × 1000)`, i.e. microseconds of wall-clock time
 * with a per-key counter when two writes share a microsecond. Because the
 * floor is the clock, a key that is deleted and written again still gets a
 * higher version than before, without keeping a tombstone — as long as the
 * clock that stamps versions does not step back (Redis stamps with its own
 * `TIME`, one clock per master). Safe-integer range lasts until year 2255.
 *
 * Versions order writes and purges: an edge drops what a purge's version
 * exceeds and refuses fills older than a purge it has seen (ARCHITECTURE.md §4,
 * "No stale set"; the idea of memcache leases, Nishtala et al., NSDI 2013).
 */
export function nextVersion(previous: number, nowMs: number): number {
  return Math.max(previous + 1, Math.floor(nowMs * 1000));
}
