import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../support/spawn-entry.ts';

const unitsDir = join(repoRoot, 'deploy/systemd');

describe('deployment recipes', () => {
  it('the systemd units pass systemd-analyze verify (installed at this checkout instead of /opt/strata)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'strata-units-'));
    try {
      const units = readdirSync(unitsDir).filter((f) => f.endsWith('.service'));
      expect(units.sort()).toEqual(['strata-edge.service', 'strata-origin.service']);
      for (const unit of units) {
        const side = unit.replace(/^strata-|\.service$/g, '');
        const text = readFileSync(join(unitsDir, unit), 'utf8')
          .replaceAll('/opt/strata', repoRoot.replace(/\/$/, ''))
          .replace(`/etc/strata/${side}.env`, join(unitsDir, `${side}.env.example`));
        writeFileSync(join(dir, unit), text);
      }
      const run = spawnSync('systemd-analyze', ['verify', ...units.map((u) => join(dir, u))], { encoding: 'utf8' });
      expect(
        run.error,
        'systemd-analyze is installed by npm run test:prereqs (Debian package systemd)',
      ).toBeUndefined();
      expect({ code: run.status, stderr: run.stderr.trim() }).toEqual({ code: 0, stderr: '' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the container recipe builds and starts: its steps run on this machine without Docker', {
    timeout: 300_000,
  }, () => {
    const run = spawnSync(process.execPath, ['scripts/container-dry-run.ts'], {
      cwd: repoRoot,
      encoding: 'utf8',
      timeout: 280_000,
    });
    const output = `${run.stdout}\n${run.stderr}`;
    expect({ code: run.status, output }).toMatchObject({ code: 0 });
    expect(output).toContain('the origin starts: /health and /ready answer 200');
    expect(output).toContain('the edge starts: /health and /ready answer 200');
    expect(output).toContain('stopped cleanly on SIGTERM');
  });
});
