/**
 * Overlapping re-reads of one changing value (a replica count, a topology):
 * a read started later saw a newer state, so among those that finished, the
 * result of the one started last is kept; an older read that finishes after
 * a newer one is dropped instead of undoing it.
 */
export class NewestRead<T> {
  #started = 0;
  #kept = 0;

  /**
   * Runs `load`; hands its result to `keep` unless a read started after this
   * one has already been kept. A failed `load` rejects and keeps nothing.
   * @returns whether this read's result was kept.
   */
  async read(load: () => Promise<T>, keep: (value: T) => void): Promise<boolean> {
    const started = ++this.#started;
    const value = await load();
    if (started < this.#kept) return false;
    this.#kept = started;
    keep(value);
    return true;
  }
}
