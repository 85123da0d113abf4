import { type ParseArgsOptionsConfig, parseArgs } from 'node:util';

/**
 * Parses a CLI's flags strictly, the same way for every Strata command: an
 * unknown or malformed flag prints `<program>: <reason>` and the usage on
 * stderr and exits 2; `--help` / `-h` prints the usage and exits 0.
 */
export function parseCli<const O extends ParseArgsOptionsConfig>(program: string, usage: string, options: O) {
  const config = {
    options: { ...options, help: { type: 'boolean', short: 'h', default: false } },
    strict: true,
  } as const;
  let parsed: ReturnType<typeof parseArgs<typeof config>>;
  try {
    parsed = parseArgs(config);
  } catch (error) {
    process.stderr.write(`${program}: ${(error as Error).message}\n${usage}\n`);
    process.exit(2);
  }
  if ((parsed.values as { help?: boolean }).help) {
    process.stdout.write(`${usage}\n`);
    process.exit(0);
  }
  return parsed.values;
}
