import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { applyInKeyOrder } from '../../origin/invalidation/partition-scheduler.ts';

/**
 * The Kafka source's partition scheduler under random interleavings: every
 * `handle` completes at a moment fast-check's scheduler picks, and some
 * messages fail (the batch must end before they are done).
 */
interface Message {
  readonly offset: number;
  readonly key: string;
  readonly ok: boolean;
}

const chunk: fc.Arbitrary<Message[]> = fc
  .array(
    fc.record({ key: fc.constantFrom('a', 'b', 'c', 'd'), ok: fc.integer({ min: 0, max: 5 }).map((n) => n > 0) }),
    {
      maxLength: 40,
    },
  )
  .map((ms) => ms.map((m, offset) => ({ offset, ...m })));

type Step = { kind: 'start' | 'end'; offset: number };

async function run(s: fc.Scheduler, messages: Message[]) {
  const steps: Step[] = [];
  const pending = applyInKeyOrder(
    messages,
    (m) => m.key,
    async (m) => {
      steps.push({ kind: 'start', offset: m.offset });
      const ok = await s.schedule(Promise.resolve(m.ok), `handle offset ${m.offset}`);
      steps.push({ kind: 'end', offset: m.offset });
      return ok;
    },
  );
  // Releases scheduled completions one at a time, in an order fast-check picks, until the chunk is done.
  const done = await s.waitFor(pending);
  return { done, steps };
}

describe('partition scheduler', () => {
  it('keeps per-key order: a message starts only after the previous message of its key finished, in offset order', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), chunk, async (s, messages) => {
        const { steps } = await run(s, messages);
        for (const key of ['a', 'b', 'c', 'd']) {
          const mine = steps.filter((st) => messages[st.offset]!.key === key);
          // Strictly alternating start/end of increasing offsets: never two of one key in flight.
          for (let i = 0; i < mine.length; i++) {
            expect(mine[i]!.kind).toBe(i % 2 === 0 ? 'start' : 'end');
            if (i % 2 === 1) expect(mine[i]!.offset).toBe(mine[i - 1]!.offset);
            if (i >= 2 && i % 2 === 0) expect(mine[i]!.offset).toBeGreaterThan(mine[i - 2]!.offset);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('handles each key up to and including its first failure, and nothing of that key after it', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), chunk, async (s, messages) => {
        const { steps } = await run(s, messages);
        const started = steps.filter((st) => st.kind === 'start').map((st) => st.offset);
        const expected: number[] = [];
        const stopped = new Set<string>();
        for (const m of messages) {
          if (stopped.has(m.key)) continue;
          expected.push(m.offset);
          if (!m.ok) stopped.add(m.key);
        }
        expect([...started].sort((x, y) => x - y)).toEqual(expected);
      }),
      { numRuns: 200 },
    );
  });

  it('reports only a finished prefix: every message before the count is done, the one at it is not', async () => {
    await fc.assert(
      fc.asyncProperty(fc.scheduler(), chunk, async (s, messages) => {
        const { done, steps } = await run(s, messages);
        const finishedOk = new Set(
          steps.filter((st) => st.kind === 'end' && messages[st.offset]!.ok).map((st) => st.offset),
        );
        for (let i = 0; i < done; i++) expect(finishedOk.has(i)).toBe(true);
        if (done < messages.length) expect(finishedOk.has(done)).toBe(false);
        // The count is the longest such prefix, not a shorter safe one.
        let longest = 0;
        while (longest < messages.length && finishedOk.has(longest)) longest++;
        expect(done).toBe(longest);
      }),
      { numRuns: 200 },
    );
  });
});
