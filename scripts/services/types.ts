/**
 * A throwaway server started by `npm run services -- up NAME` or by the test
 * harness: its processes, the env vars that point Strata at it, and how to stop it.
 */
export interface RunningService {
  readonly name: string;
  /** Env vars for the origin, e.g. `{ REDIS_URL: 'redis://127.0.0.1:40123' }`. */
  readonly env: Record<string, string>;
  /** Process ids, recorded so `down` can stop what `up` started. */
  readonly pids: number[];
  /** Folder holding data and logs. */
  readonly dir: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Folder for data and logs; created if missing. */
  dir: string;
  /** Outlive the starting process (CLI `up`); tests keep their servers attached. */
  detached?: boolean;
}
