import { readFile } from 'node:fs/promises';
import { parseEnv } from 'node:util';
import type { Logger } from 'pino';
import { type OriginConfig, originConfigSchema, parseConfig } from '../shared/config.ts';
import { parseKeyring } from '../shared/crypto.ts';
import { CacheError } from '../shared/errors.ts';
import type { CacheService, RuntimeSettings } from './cache-service.ts';

/** Environment variables, as `process.env` holds them. */
export type Env = Record<string, string | undefined>;

/**
 * The environment with `STRATA_CONFIG_FILE` applied: when that variable names
 * a file of `KEY=VALUE` lines (dotenv syntax, Node's `util.parseEnv`), its
 * variables override the process environment. Read at start and again on
 * every reload, since a running process's own environment cannot change.
 * @throws Error naming `STRATA_CONFIG_FILE` when the file cannot be read.
 */
export async function envWithConfigFile(env: Env): Promise<Env> {
  const file = env.STRATA_CONFIG_FILE;
  if (!file) return env;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new Error(`invalid configuration: STRATA_CONFIG_FILE: cannot read ${file} (${(error as Error).message})`);
  }
  return { ...env, ...parseEnv(text) };
}

/** Variables a reload applies without a restart. */
export const reloadableVariables = [
  'CACHE_DEFAULT_TTL',
  'MAX_VALUE_BYTES',
  'ENCRYPTION_KEYS',
  'ENCRYPTED_NAMESPACES',
  'LOG_LEVEL',
] as const;

/** Variables a `config.cache.update` event may set (never keys: secrets do not travel on a topic). */
export const overridableVariables = ['CACHE_DEFAULT_TTL', 'MAX_VALUE_BYTES', 'LOG_LEVEL'] as const;
export type OverridableVariable = (typeof overridableVariables)[number];

/** What a reload did. */
export interface ReloadResult {
  /** Reloadable variables whose value changed and is now in force. */
  readonly applied: string[];
  /** Variables whose value changed but that only take effect at the next restart (ports, store, Kafka, …). */
  readonly restartRequired: string[];
}

export interface ReloaderOptions {
  /** The configuration the origin started with. */
  readonly initial: OriginConfig;
  /** Reads the environment to reload from (the process env with `STRATA_CONFIG_FILE` applied); absent: nothing to re-read. */
  readonly env?: (() => Promise<Env>) | undefined;
  readonly service: CacheService;
  readonly logger: Logger;
}

/**
 * Re-reads the configuration that can change while the origin runs
 * ({@link reloadableVariables}) for `POST /api/v1/reload` and SIGHUP. The
 * new configuration is validated whole before anything changes: an invalid
 * one is refused with one line naming the variable, and the old one stays in
 * force. Requests in flight finish with the settings they started with.
 */
export class Reloader {
  #current: OriginConfig;
  readonly #o: ReloaderOptions;
  #running: Promise<ReloadResult> | undefined;
  /** Values set by {@link Reloader.override}; they stay over the environment's on later reloads. */
  #overrides: Env = {};

  constructor(options: ReloaderOptions) {
    this.#o = options;
    this.#current = options.initial;
  }

  /** The configuration in force now. */
  get current(): OriginConfig {
    return this.#current;
  }

  /**
   * Reloads; concurrent calls share one reload.
   * @throws CacheError CACHE_004 (400) naming the invalid variable; nothing changed.
   */
  reload(): Promise<ReloadResult> {
    this.#running ??= this.#reload().finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  /**
   * Sets some of {@link overridableVariables} as a `config.cache.update`
   * event asks: validated like a reload (the variable's schema), applied to
   * the configuration in force, and kept over the environment's value on
   * later reloads until the origin restarts.
   * @throws CacheError CACHE_004 (400) naming the invalid variable; nothing changed.
   */
  async override(variables: Partial<Record<OverridableVariable, string>>): Promise<ReloadResult> {
    await this.#running?.catch(() => {});
    const given = Object.fromEntries(Object.entries(variables).filter(([, v]) => v !== undefined));
    const result = await this.#apply(async () => {
      // Only the given variables are checked: every other one of the schema has a default or is optional.
      const parsed = parseConfig(originConfigSchema, given);
      return { ...this.#current, ...pick(parsed, Object.keys(given)) };
    });
    this.#overrides = { ...this.#overrides, ...given };
    return result;
  }

  async #reload(): Promise<ReloadResult> {
    const read = this.#o.env;
    if (!read) return { applied: [], restartRequired: [] };
    return await this.#apply(async () => parseConfig(originConfigSchema, { ...(await read()), ...this.#overrides }));
  }

  /** Builds the next configuration, validates it whole, then puts it in force. */
  async #apply(build: () => Promise<OriginConfig>): Promise<ReloadResult> {
    let next: OriginConfig;
    let settings: RuntimeSettings;
    try {
      next = await build();
      const keyring = next.ENCRYPTION_KEYS ? await parseKeyring(next.ENCRYPTION_KEYS) : null;
      if (next.ENCRYPTED_NAMESPACES?.length && !keyring) {
        throw new Error('invalid configuration: ENCRYPTED_NAMESPACES: needs ENCRYPTION_KEYS');
      }
      settings = {
        defaultTtlSeconds: next.CACHE_DEFAULT_TTL,
        maxValueBytes: next.MAX_VALUE_BYTES,
        keyring,
        encryptedNamespaces: new Set(next.ENCRYPTED_NAMESPACES ?? []),
      };
    } catch (error) {
      const line = oneLine(error);
      this.#o.logger.warn({ reason: line }, 'reload refused; the running configuration stays');
      throw new CacheError('CACHE_004', line, { details: { reloaded: false } });
    }
    const changed = (Object.keys({ ...this.#current, ...next }) as (keyof OriginConfig)[]).filter(
      (name) => JSON.stringify(this.#current[name]) !== JSON.stringify(next[name]),
    );
    const reloadable = new Set<string>(reloadableVariables);
    this.#o.service.reconfigure(settings);
    this.#o.logger.level = next.LOG_LEVEL;
    this.#current = { ...this.#current, ...pick(next, reloadableVariables) };
    const result = {
      applied: changed.filter((n) => reloadable.has(n)),
      restartRequired: changed.filter((n) => !reloadable.has(n)),
    };
    this.#o.logger.info(result, 'configuration reloaded');
    return result;
  }
}

function pick(config: OriginConfig, names: readonly string[]): Partial<OriginConfig> {
  return Object.fromEntries(Object.entries(config).filter(([name]) => names.includes(name)));
}

// A parse error names the variable; never echo values (keys are secrets).
function oneLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0]!;
}
