/**
 * The one way every Strata CLI takes a credential: `--token <JWT>`, else the
 * `STRATA_TOKEN` environment variable (what `npm start` prints and
 * `npm run token` mints). Without either, requests go out anonymous, which
 * is right only when authentication is off.
 */

/** The `parseArgs` option every CLI declares for its token. */
export const tokenOption = { token: { type: 'string' } } as const;

/** `--token` if given, else `STRATA_TOKEN` from `env`; empty counts as unset. */
export function cliToken(flag: string | undefined, env: Record<string, string | undefined>): string | undefined {
  return flag || env.STRATA_TOKEN || undefined;
}

/** `Authorization: Bearer …` (RFC 6750 §2.1) for `token`, or no header without one. */
export function bearerHeaders(token: string | undefined): Record<string, string> {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

/** A hint to append to an HTTP 401/403 failure message, naming how to pass a token. */
export function refusedHint(status: number, token: string | undefined): string {
  if (status === 401 && !token) return ' (no token sent: set STRATA_TOKEN or pass --token; `npm run token` mints one)';
  if (status === 401) return ' (the token was refused: expired, or signed with another secret)';
  if (status === 403) return ' (the token lacks the scope or namespace; `npm run token -- --scope … --ns …`)';
  return '';
}
