import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { keySchema, namespaceSchema, ttlSecondsSchema } from '../../shared/keys.ts';
import { maxGraceSeconds } from '../../shared/lifecycle.ts';

const graceSeconds = z.number().int('must be whole seconds').min(0).max(maxGraceSeconds);

/** One cache profile: the defaults and consistency of a namespace, or of the keys with a prefix in it. */
export const cacheProfileSchema = z.strictObject({
  namespace: namespaceSchema,
  /** Applies to keys starting with this; absent = the whole namespace. The longest matching prefix wins. */
  key_prefix: keySchema.optional(),
  /** Default TTL, seconds, for writes that give none. */
  ttl: ttlSecondsSchema.optional(),
  /** Default `stale-while-revalidate`, seconds (RFC 5861). */
  stale_while_revalidate: graceSeconds.optional(),
  /** Default `stale-if-error`, seconds (RFC 5861). */
  stale_if_error: graceSeconds.optional(),
  /**
   * `strong`: every read is revalidated at the origin, never answered from
   * its fallback tier (503 CACHE_005 while the store is down), never stale.
   * `eventual` (default): edges serve within the consistency bound.
   */
  consistency: z.enum(['strong', 'eventual']).default('eventual'),
});
export type CacheProfile = z.infer<typeof cacheProfileSchema>;

/** The `CACHE_PROFILES` file: `{ "profiles": [ … ] }`. */
export const cacheProfilesFileSchema = z.strictObject({ profiles: z.array(cacheProfileSchema).max(10_000) });

/** Profiles by namespace, looked up per key (longest `key_prefix` first). */
export class CacheProfiles {
  readonly #byNamespace = new Map<string, CacheProfile[]>();
  readonly #all: readonly CacheProfile[];

  constructor(profiles: readonly CacheProfile[]) {
    this.#all = profiles;
    for (const profile of profiles) {
      const list = this.#byNamespace.get(profile.namespace) ?? [];
      list.push(profile);
      list.sort((a, b) => (b.key_prefix?.length ?? -1) - (a.key_prefix?.length ?? -1));
      this.#byNamespace.set(profile.namespace, list);
    }
  }

  /**
   * These profiles with `profile` in place of the one for the same namespace
   * and `key_prefix` (added when there was none). This object is unchanged.
   */
  with(profile: CacheProfile): CacheProfiles {
    const others = this.#all.filter((p) => p.namespace !== profile.namespace || p.key_prefix !== profile.key_prefix);
    return new CacheProfiles([...others, profile]);
  }

  /** The profile of a key, or undefined when none applies. */
  of(namespace: string, key: string): CacheProfile | undefined {
    return this.#byNamespace.get(namespace)?.find((p) => p.key_prefix === undefined || key.startsWith(p.key_prefix));
  }
}

/**
 * Reads and validates the `CACHE_PROFILES` file at start-up.
 * @throws Error with one line naming the file and the field, e.g.
 *   `CACHE_PROFILES profiles.json: profiles.0.ttl: ttl must be at least 1 second`.
 */
export function loadCacheProfiles(path: string): CacheProfiles {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new Error(`CACHE_PROFILES ${path}: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}`);
  }
  const parsed = cacheProfilesFileSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new Error(`CACHE_PROFILES ${path}: ${issue.path.join('.') || '(file)'}: ${issue.message}`);
  }
  return new CacheProfiles(parsed.data.profiles);
}
