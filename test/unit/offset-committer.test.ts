import { describe, expect, it } from 'vitest';
import { offsetCommitter } from '../../origin/kafka/offset-committer.ts';

/** A commit send that resolves when the test says so, recording what was sent in order. */
function gate() {
  const sent: string[] = [];
  const open: (() => void)[] = [];
  const send =
    (label: string, fail = false) =>
    () =>
      new Promise<void>((resolve, reject) => {
        sent.push(label);
        open.push(() => (fail ? reject(new Error(`${label} refused`)) : resolve()));
      });
  const release = async () => {
    // Lets the committer's promise chain settle and reach its next send (macrotask turns, no timers).
    await new Promise((r) => setImmediate(r));
    open.shift()?.();
    await new Promise((r) => setImmediate(r));
  };
  return { sent, send, release, waiting: () => open.length };
}

const quiet = () => {
  const warnings: unknown[] = [];
  return { logger: { warn: (...args: unknown[]) => warnings.push(args) } as never, warnings };
};

describe('offsetCommitter', () => {
  it('sends a commit without the caller waiting, and the newest waiting offset replaces older ones', async () => {
    const g = gate();
    const c = offsetCommitter(quiet().logger);
    c.commit(0, '5', g.send('p0@5'));
    // In flight: p0@5. These wait; only the newest of partition 0 goes out.
    c.commit(0, '6', g.send('p0@6'));
    c.commit(0, '8', g.send('p0@8'));
    c.commit(0, '7', g.send('p0@7'));
    c.commit(1, '3', g.send('p1@3'));
    expect(g.sent).toEqual(['p0@5']);
    await g.release();
    await g.release();
    await g.release();
    await c.flush();
    expect(g.sent).toEqual(['p0@5', 'p0@8', 'p1@3']);
  });

  it('commitNow waits for the commit in flight, drops an older waiting one, and sends after', async () => {
    const g = gate();
    const c = offsetCommitter(quiet().logger);
    c.commit(2, '10', g.send('bg@10'));
    c.commit(2, '11', g.send('bg@11'));
    let done = false;
    const now = c.commitNow(2, '12', g.send('now@12')).then(() => {
      done = true;
    });
    await g.release();
    expect(g.sent).toEqual(['bg@10', 'now@12']);
    expect(done).toBe(false);
    await g.release();
    await now;
    expect(done).toBe(true);
  });

  it('logs a failed background commit and carries on with the next one', async () => {
    const g = gate();
    const { logger, warnings } = quiet();
    const c = offsetCommitter(logger);
    c.commit(0, '1', g.send('p0@1', true));
    c.commit(0, '2', g.send('p0@2'));
    await g.release();
    await g.release();
    await c.flush();
    expect(g.sent).toEqual(['p0@1', 'p0@2']);
    expect(warnings).toHaveLength(1);
  });

  it('commitNow rejects with the commit error', async () => {
    const c = offsetCommitter(quiet().logger);
    await expect(c.commitNow(0, '1', () => Promise.reject(new Error('rebalancing')))).rejects.toThrow('rebalancing');
  });

  it('a commit handed in while a drain settles is still sent', async () => {
    const sent: string[] = [];
    const c = offsetCommitter(quiet().logger);
    c.commit(0, '1', async () => {
      sent.push('p0@1');
    });
    // Queued right behind the first drain's last send, before its promise settles.
    await Promise.resolve();
    c.commit(0, '2', async () => {
      sent.push('p0@2');
    });
    await c.flush();
    expect(sent).toEqual(['p0@1', 'p0@2']);
  });
});
