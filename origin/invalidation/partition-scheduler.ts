/**
 * Applies one chunk of a partition's messages with as much concurrency as
 * per-key order allows: messages with different keys run concurrently (their
 * store round trips overlap), messages with the same key one after another
 * in offset order. A message whose `handle` answers false (the batch must end
 * before it was done) stops its key: no later message of that key starts.
 *
 * Pure: no Kafka, no clock; `handle` does the I/O.
 *
 * @param chunk messages in offset order.
 * @param keyOf the ordering key of a message (the Kafka message key).
 * @param handle applies one message; true once it is done, false when it was not.
 * @returns how many leading messages of `chunk` are done: only that prefix's
 *   offsets may be committed, whatever finished after a gap.
 */
export async function applyInKeyOrder<M>(
  chunk: readonly M[],
  keyOf: (message: M) => string,
  handle: (message: M) => Promise<boolean>,
): Promise<number> {
  const done = new Array<boolean>(chunk.length).fill(false);
  const byKey = new Map<string, number[]>();
  chunk.forEach((message, i) => {
    const key = keyOf(message);
    const list = byKey.get(key);
    if (list) list.push(i);
    else byKey.set(key, [i]);
  });
  await Promise.all(
    [...byKey.values()].map(async (indexes) => {
      for (const i of indexes) {
        if (!(await handle(chunk[i]!))) return;
        done[i] = true;
      }
    }),
  );
  const firstUndone = done.indexOf(false);
  return firstUndone === -1 ? chunk.length : firstUndone;
}
