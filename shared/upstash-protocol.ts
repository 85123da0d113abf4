import { z } from 'zod';
import { toBase64 } from './bytes.ts';
import { CacheError } from './errors.ts';

/**
 * The wire side of the Upstash REST protocol (upstash.com/docs/redis/features/restapi),
 * runtime-free: what `@upstash/redis` sends and what it expects back. The
 * edge and the origin both serve it under `/upstash/{namespace}`.
 *
 * - A command is a JSON array `["SET", "k", "v", "EX", 10]` POSTed to the
 *   base URL, or a path `/set/k/v/EX/10` (GET or POST; a POST body becomes
 *   the last argument); `/pipeline` and `/multi-exec` take an array of
 *   commands.
 * - A reply is `{"result": …}`; a failed command `{"error": "ERR …"}` with
 *   400 (or the status of the failure: 401, 403, 413, 503). A pipeline and a
 *   transaction answer 200 with one `{result}` or `{error}` per command.
 * - `Upstash-Encoding: base64` asks for every string reply in base64 except
 *   the status `OK` (what the client's `decode` expects), so any bytes
 *   survive JSON.
 * - `upstash-sync-token` (read-your-writes): every answer carries a token;
 *   the client sends back the last one it saw, and a reply never reflects
 *   less than the writes that token covers.
 */

/** Header that asks for base64 string replies. */
export const encodingHeader = 'Upstash-Encoding';
/** Read-your-writes token header, sent by the client and answered by the server. */
export const syncTokenHeader = 'upstash-sync-token';

/** One argument: text from JSON or a path, or raw bytes from a path-style POST body. */
export type Arg = string | Uint8Array;
/** One command: its name, then its arguments. */
export type Command = readonly Arg[];

/** Whether a request is one command, a pipeline (each command on its own) or a transaction (all or nothing). */
export type RequestKind = 'single' | 'pipeline' | 'multi-exec';

/** A parsed request. */
export interface UpstashRequest {
  readonly kind: RequestKind;
  readonly commands: readonly Command[];
}

/** A reply: nil, an integer, a bulk string (bytes), a status (`OK`, `PONG`) or an array. */
export type Reply = null | number | Uint8Array | { readonly status: string } | readonly Reply[];

/** One command's outcome: a reply or a Redis-style error message. */
export type Outcome = { readonly result: Reply } | { readonly error: string };

/** A request-level failure: the status and the `{error}` body. */
export class UpstashError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.name = 'UpstashError';
    this.status = status;
  }
}

/** Most commands one request may carry (the REST API's batch limit). */
export const maxCommandsPerRequest = 1_000;

const argSchema = z.union([z.string(), z.number(), z.boolean()]).transform((a) => String(a));
const commandSchema = z
  .array(argSchema)
  .min(1)
  .max(2 * maxCommandsPerRequest + 1);
const commandsSchema = z.array(commandSchema).min(1).max(maxCommandsPerRequest);

/** The text of an argument (command names, keys, numbers). */
export function argText(arg: Arg): string {
  return typeof arg === 'string' ? arg : new TextDecoder().decode(arg);
}

const encoder = new TextEncoder();
/** The bytes of an argument (values). */
export function argBytes(arg: Arg): Uint8Array {
  return typeof arg === 'string' ? encoder.encode(arg) : arg;
}

/** Lower-case name of a command. */
export function commandName(command: Command): string {
  return argText(command[0] ?? '').toLowerCase();
}

/**
 * Parses a request under the base URL: `rest` is the path after
 * `/upstash/{namespace}` (`""`, `pipeline`, `multi-exec` or a path command),
 * `body` the raw body of a POST (empty for GET).
 * @throws UpstashError 400 on a body that is not the expected JSON.
 */
export function parseRequest(method: string, rest: string, body: Uint8Array): UpstashRequest {
  const segments = rest.split('/').filter((s) => s.length > 0);
  const first = segments[0]?.toLowerCase();
  if (segments.length === 1 && (first === 'pipeline' || first === 'multi-exec')) {
    if (method !== 'POST') throw new UpstashError(405, `ERR ${first} needs POST`);
    return { kind: first, commands: parseJson(body, commandsSchema, 'an array of commands') };
  }
  if (segments.length === 0) {
    if (method !== 'POST') throw new UpstashError(405, 'ERR a command is POSTed as a JSON array');
    return { kind: 'single', commands: [parseJson(body, commandSchema, 'a command as a JSON array')] };
  }
  const args: Arg[] = [];
  for (const s of segments) {
    try {
      args.push(decodeURIComponent(s));
    } catch {
      throw new UpstashError(400, 'ERR malformed path segment');
    }
  }
  if (method === 'POST' && body.byteLength > 0) args.push(body);
  return { kind: 'single', commands: [args] };
}

function parseJson<S extends z.ZodType>(body: Uint8Array, schema: S, what: string): z.infer<S> {
  let raw: unknown;
  try {
    raw = JSON.parse(new TextDecoder().decode(body));
  } catch {
    throw new UpstashError(400, `ERR failed to parse command: the body must be ${what}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new UpstashError(400, `ERR failed to parse command: the body must be ${what}`);
  return parsed.data;
}

const lenientDecoder = new TextDecoder();

/** A reply as JSON: bulk strings as text, or base64 when asked (the status `OK` never). */
export function encodeReply(reply: Reply, base64: boolean): unknown {
  if (reply === null || typeof reply === 'number') return reply;
  if (reply instanceof Uint8Array) return base64 ? toBase64(reply) : lenientDecoder.decode(reply);
  if (Array.isArray(reply)) return reply.map((r) => encodeReply(r, base64));
  const { status } = reply as { status: string };
  return base64 && status !== 'OK' ? toBase64(encoder.encode(status)) : status;
}

/** An outcome as its JSON body `{result}` or `{error}`. */
export function encodeOutcome(outcome: Outcome, base64: boolean): { result: unknown } | { error: string } {
  return 'error' in outcome ? { error: outcome.error } : { result: encodeReply(outcome.result, base64) };
}

/** Whether the request asked for base64 replies (`Upstash-Encoding: base64`). */
export function wantsBase64(header: string | undefined): boolean {
  return header?.trim().toLowerCase() === 'base64';
}

/**
 * The sync token a request carries: the highest entry version its client has
 * seen written (a decimal integer); 0 when absent or malformed.
 */
export function parseSyncToken(header: string | undefined): number {
  if (!header || !/^\d{1,16}$/.test(header)) return 0;
  return Number(header);
}

/**
 * A Strata failure as an Upstash request failure, keeping its HTTP status
 * (`shared/errors.ts`): 401, 403, 413, 503 with `ERR <message>`.
 */
export function fromCacheError(error: CacheError): UpstashError {
  if (error.code === 'AUTH_001') return new UpstashError(401, 'Unauthorized');
  if (error.code === 'AUTH_002') return new UpstashError(403, `NOPERM ${error.message}`);
  return new UpstashError(error.status, `ERR ${error.message}`);
}

/** Any thrown value as a request failure (unknown errors: 500). */
export function asUpstashError(error: unknown): UpstashError {
  if (error instanceof UpstashError) return error;
  if (error instanceof CacheError) return fromCacheError(error);
  return new UpstashError(500, 'ERR internal error');
}
