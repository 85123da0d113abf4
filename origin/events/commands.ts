import type { z } from 'zod';
import { authorize, bearerToken, purgeScope, type Scope, unauthenticated, type Verifier } from '../../shared/auth.ts';
import { CacheError } from '../../shared/errors.ts';
import {
  type ConfigUpdateEvent,
  type ControlActionEvent,
  configUpdateEventSchema,
  controlActionEventSchema,
} from '../../shared/hub-events.ts';
import type { CacheService } from '../cache-service.ts';
import { CacheProfiles, cacheProfileSchema } from '../lifecycle/profiles.ts';
import type { Reloader } from '../reload.ts';

/** What a command does once decoded and authorised. */
export interface Command {
  /** Metric label: `defaults`, `profile`, `flush`, `purge`, `reload`. */
  readonly action: string;
  /** True when it changes the region's store (flush, purge): run by one replica; else by every replica. */
  readonly regionWide: boolean;
  /** Applies it. @throws CacheError CACHE_004 when refused (invalid configuration); anything else is retried. */
  run(): Promise<unknown>;
}

/** A message that cannot be obeyed: goes to the dead-letter topic with `reason`. */
export interface Refused {
  /** Metric label: `invalid`, `unauthenticated`, `forbidden`, `refused`. */
  readonly kind: 'invalid' | 'unauthenticated' | 'forbidden' | 'refused';
  /** One line, for the log and the dead-letter header. */
  readonly reason: string;
}

export interface CommandDeps {
  readonly service: CacheService;
  readonly reloader: Reloader;
  /** JWT verifier; null = authentication off (as on REST). */
  readonly auth: Verifier | null;
}

/**
 * Decodes, validates (zod) and authorises one message of `config.cache.update`
 * or `control.cache.action` (shared/hub-events.ts) into a {@link Command},
 * or says why it is refused. Authorisation is REST's: the `authorization`
 * header carries `Bearer <JWT>`; flush needs `cache:flush` in the namespace,
 * purge what `POST /api/v1/purge` needs (`cache:delete`, `cache:flush` with a
 * prefix), reload and `defaults` `cache:reload` in every namespace, a
 * namespace's `profile` `cache:reload` in it. Never throws.
 */
export async function decodeCommand(
  topic: 'config' | 'control',
  value: Buffer | null,
  authorization: string | undefined,
  deps: CommandDeps,
): Promise<Command | Refused> {
  const schema = topic === 'config' ? configUpdateEventSchema : controlActionEventSchema;
  const parsed = parse(schema, value);
  if ('kind' in parsed) return parsed;
  const event = parsed.event;
  const plan = event.event === 'config.cache.update' ? configCommand(event, deps) : controlCommand(event, deps);
  if ('kind' in plan) return plan;
  if (deps.auth) {
    try {
      const token = bearerToken(authorization);
      if (!token) throw unauthenticated();
      authorize(await deps.auth(token), plan.scope, plan.namespace);
    } catch (error) {
      const code = error instanceof CacheError ? error.code : 'AUTH_001';
      return code === 'AUTH_002'
        ? { kind: 'forbidden', reason: `forbidden: needs ${plan.scope} in ${plan.namespace}` }
        : { kind: 'unauthenticated', reason: 'unauthenticated: missing, invalid or expired token' };
    }
  }
  return plan.command;
}

type Plan = { scope: Scope; namespace: string; command: Command } | Refused;

function configCommand(event: ConfigUpdateEvent, deps: CommandDeps): Plan {
  const { data } = event;
  if (data.policy === 'defaults') {
    const { default_ttl, max_value_bytes, log_level } = data.parameters;
    const variables = {
      CACHE_DEFAULT_TTL: default_ttl === undefined ? undefined : String(default_ttl),
      MAX_VALUE_BYTES: max_value_bytes === undefined ? undefined : String(max_value_bytes),
      LOG_LEVEL: log_level,
    };
    return {
      scope: 'cache:reload',
      namespace: '*',
      command: { action: 'defaults', regionWide: false, run: () => deps.reloader.override(variables) },
    };
  }
  const profile = cacheProfileSchema.safeParse({ ...data.parameters, namespace: data.scope });
  if (!profile.success) return { kind: 'invalid', reason: `invalid profile: ${issues(profile.error)}` };
  return {
    scope: 'cache:reload',
    namespace: data.scope,
    command: {
      action: 'profile',
      regionWide: false,
      run: async () => {
        const current = deps.service.settings;
        const profiles = (current.profiles ?? new CacheProfiles([])).with(profile.data);
        deps.service.reconfigure({ ...current, profiles });
      },
    },
  };
}

function controlCommand(event: ControlActionEvent, deps: CommandDeps): Plan {
  const { data } = event;
  const by = `hub:${event.id ?? 'control'}`;
  switch (data.action) {
    case 'flush':
      return {
        scope: 'cache:flush',
        namespace: data.target,
        command: { action: 'flush', regionWide: true, run: () => deps.service.flush(data.target, by) },
      };
    case 'purge': {
      const { keys, tags, prefix } = data.parameters;
      return {
        scope: purgeScope({ prefix }),
        namespace: data.target,
        command: {
          action: 'purge',
          regionWide: true,
          run: () => deps.service.purge(data.target, { keys, tags, prefix }),
        },
      };
    }
    case 'reload':
      return {
        scope: 'cache:reload',
        namespace: '*',
        command: { action: 'reload', regionWide: false, run: () => deps.reloader.reload() },
      };
  }
}

function parse<S extends z.ZodType>(schema: S, value: Buffer | null): { event: z.infer<S> } | Refused {
  if (!value || value.length === 0) return { kind: 'invalid', reason: 'empty message value' };
  let json: unknown;
  try {
    json = JSON.parse(value.toString('utf8'));
  } catch (error) {
    return { kind: 'invalid', reason: `not JSON: ${(error as Error).message}` };
  }
  const result = schema.safeParse(json);
  if (!result.success) return { kind: 'invalid', reason: `invalid event: ${issues(result.error)}` };
  return { event: result.data };
}

function issues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || '(event)'}: ${i.message}`).join('; ');
}
