import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = resolve(import.meta.dirname, '..', '..');
const bin = (name: string) => join(root, 'node_modules', '.bin', name);

/**
 * One planted violation of each kind, plus an allowed import of each layer,
 * in a scratch tree laid out like the project (the real tree must stay clean
 * for `npm run lint`, so the plants never touch it).
 */
const files: Record<string, string> = {
  'shared/node-builtin.ts': "import { hostname } from 'node:os';\nexport const planted = hostname();\n",
  'shared/fine.ts': 'export const fine = 1;\n',
  'edge/core/node-builtin.ts':
    "import { setTimeout } from 'node:timers/promises';\nexport const planted = setTimeout;\n",
  'edge/core/fine.ts': "import { fine } from '../../shared/fine.ts';\nexport const alsoFine = fine;\n",
  'origin/thing.ts': "import { fine } from '../shared/fine.ts';\nexport const originThing = fine;\n",
  'edge/imports-origin.ts': "import { originThing } from '../origin/thing.ts';\nexport const planted = originThing;\n",
  'platform/node/relay.ts': "export { originThing } from '../../origin/thing.ts';\n",
  'edge/adapters/node/through-relay.ts': "export { originThing as planted } from '../../../platform/node/relay.ts';\n",
  'edge/app.ts': "import { alsoFine } from './core/fine.ts';\nexport const app = alsoFine;\n",
  'edge/core/imports-app.ts': "import { app } from '../app.ts';\nexport const planted = app;\n",
  'edge/imports-adapter.ts':
    "import { planted as relayed } from './adapters/node/through-relay.ts';\nexport const planted = relayed;\n",
};

let dir: string;

function run(command: string, args: string[]): { status: number | null; output: string } {
  const result = spawnSync(command, args, { cwd: dir, encoding: 'utf8' });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

describe('layering is enforced by npm run lint', () => {
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'strata-layering-'));
    for (const config of ['biome.json', '.dependency-cruiser.cjs']) copyFileSync(join(root, config), join(dir, config));
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', noEmit: true } }),
    );
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(dir, path)), { recursive: true });
      writeFileSync(join(dir, path), text);
    }
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('Biome refuses a node: import in shared/ and edge/core/, origin/ from edge/ or a relay folder, the app from edge/core/ and an adapter from edge/', () => {
    const { status, output } = run(bin('biome'), ['lint', '--vcs-enabled=false', '--max-diagnostics=100', '.']);
    expect(status).not.toBe(0);
    const flagged = (file: string, rule = '') => new RegExp(`^${file}:\\d+:\\d+ lint/${rule}`, 'm').test(output);
    expect(flagged('shared/node-builtin.ts', 'correctness/noNodejsModules')).toBe(true);
    expect(flagged('edge/core/node-builtin.ts', 'correctness/noNodejsModules')).toBe(true);
    expect(flagged('edge/imports-origin.ts', 'style/noRestrictedImports')).toBe(true);
    expect(flagged('platform/node/relay.ts', 'style/noRestrictedImports')).toBe(true);
    expect(flagged('edge/core/imports-app.ts', 'style/noRestrictedImports')).toBe(true);
    expect(flagged('edge/imports-adapter.ts', 'style/noRestrictedImports')).toBe(true);
    for (const fine of ['shared/fine.ts', 'edge/core/fine.ts', 'edge/app.ts', 'origin/thing.ts']) {
      expect(flagged(fine)).toBe(false);
    }
  });

  it('dependency-cruiser refuses the same on resolved paths, including the edge reaching origin/ through a re-export', () => {
    const { status, output } = run(bin('depcruise'), [
      'shared',
      'edge',
      'origin',
      'platform',
      '--config',
      '.dependency-cruiser.cjs',
      '--output-type',
      'json',
    ]);
    // The json reporter exits 0; `npm run lint` uses the default reporter, which exits with the error count.
    expect(status).toBe(0);
    const report = JSON.parse(output) as { summary: { violations: Array<{ from: string; rule: { name: string } }> } };
    const violations = new Set(report.summary.violations.map((v) => `${v.from} ${v.rule.name}`));
    expect(violations).toContain('shared/node-builtin.ts no-node-builtins-in-runtime-free-code');
    expect(violations).toContain('edge/core/node-builtin.ts no-node-builtins-in-runtime-free-code');
    expect(violations).toContain('edge/imports-origin.ts edge-is-runtime-free');
    expect(violations).toContain('platform/node/relay.ts platform-imports-only-shared');
    expect(violations).toContain('edge/adapters/node/through-relay.ts edge-client-platform-never-reach-origin');
    expect(violations).toContain('edge/core/imports-app.ts edge-core-imports-only-shared');
    expect(violations).toContain('edge/imports-adapter.ts edge-is-runtime-free');
    const fromFine = [...violations].filter((v) => /fine\.ts|^edge\/app\.ts|^origin\//.test(v));
    expect(fromFine).toEqual([]);
  });
});
