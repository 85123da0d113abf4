/**
 * The part of vitest's API the conformance suites use (`describe`, `it`,
 * `it.skipIf`, `expect`), for running them inside workerd, where vitest's
 * runner cannot go: bundled in place of `vitest` (esbuild alias). `describe`
 * and `it` only collect cases into {@link cases}; the test Worker runs one
 * per request. `expect` is vitest's own (`@vitest/expect` on chai), so
 * matchers behave as under vitest.
 */
import { JestAsymmetricMatchers, JestChaiExpect, JestExtend } from '@vitest/expect';
import * as chai from 'chai';

chai.use(JestExtend);
chai.use(JestChaiExpect);
chai.use(JestAsymmetricMatchers);

/** vitest's `expect` (the matchers of `@vitest/expect`). */
export const expect = chai.expect as unknown as typeof import('vitest').expect;

/** One collected case: its full name (`describe > it`), body, and whether it is skipped. */
export interface CollectedCase {
  readonly name: string;
  readonly fn: () => unknown;
  readonly skip: boolean;
}

/** Every case collected so far, in declaration order. */
export const cases: CollectedCase[] = [];
const scopes: string[] = [];

/** Collects the cases `body` declares under `name`. */
export function describe(name: string, body: () => void): void {
  scopes.push(name);
  try {
    body();
  } finally {
    scopes.pop();
  }
}

const collect = (name: string, fn: () => unknown, skip: boolean) => {
  cases.push({ name: [...scopes, name].join(' > '), fn, skip });
};

/** Collects one case. */
export const it = Object.assign((name: string, fn: () => unknown) => collect(name, fn, false), {
  /** Collects one case, skipped when `condition` holds. */
  skipIf: (condition: boolean) => (name: string, fn: () => unknown) => collect(name, fn, condition),
});
