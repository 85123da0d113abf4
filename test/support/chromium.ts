import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type BrowserContext, chromium } from 'playwright-core';

/** Debian's Chromium, which playwright-core drives (no browser downloads: ARCHITECTURE.md §5). */
export const chromiumPath = '/usr/bin/chromium';

/**
 * The path of Debian's Chromium; throws with the install command when it is
 * missing (`scripts/ensure-test-prereqs.sh` installs it) — never a silent skip.
 */
export function ensureChromium(): string {
  if (!existsSync(chromiumPath)) {
    throw new Error(`${chromiumPath} not found: run 'sudo apt-get install -y chromium' (or npm run test:prereqs)`);
  }
  return chromiumPath;
}

/**
 * Debian's Chromium, headless, with a fresh profile (playwright-core's
 * `launchPersistentContext` is how it takes `--user-data-dir`) and the flags
 * this closed network needs. `close()` ends the browser and deletes the profile.
 */
export async function launchChromium(): Promise<{ context: BrowserContext; close(): Promise<void> }> {
  const executablePath = ensureChromium();
  const profile = mkdtempSync(join(tmpdir(), 'strata-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  return {
    context,
    async close() {
      await context.close();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
