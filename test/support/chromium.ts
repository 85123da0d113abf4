import { existsSync } from 'node:fs';

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
