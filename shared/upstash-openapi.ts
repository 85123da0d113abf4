import { supportedCommands } from './upstash-commands.ts';
import { maxCommandsPerRequest, syncTokenHeader } from './upstash-protocol.ts';

type Json = Record<string, unknown>;

/*
 * The OpenAPI description of the Upstash REST protocol at `/upstash/{namespace}`
 * (`shared/upstash-protocol.ts`, upstash.com/docs/redis/features/restapi).
 * Whether a command's arguments fit it (arity, integers, options) is the
 * command's own rule, answered as `{"error": "ERR …"}` with 400, so a
 * request the schema allows may still get a 400.
 */

/** Command names as the description lists them (the server takes any case). */
const commandNames = supportedCommands.map((c) => c.toUpperCase());

/** One argument: JSON strings, numbers and booleans are taken as their text. */
const arg: Json = { type: ['string', 'number', 'boolean'] };

/**
 * One command in a pipeline or transaction: its name, then its arguments. An
 * unknown name is that command's `{error}` in a 200 answer, so any is allowed.
 */
const anyCommand: Json = {
  type: 'array',
  minItems: 1,
  maxItems: 2 * maxCommandsPerRequest + 1,
  items: arg,
  description: `a command as a JSON array, name first: one of ${commandNames.join(', ')} (another answers its own error)`,
  example: ['SET', 'greeting', 'hello', 'EX', 60],
};

/** One command alone: an unknown name is refused (400), so the name is one of the served commands. */
const command: Json = {
  ...anyCommand,
  prefixItems: [{ type: 'string', enum: commandNames }],
  description: `a command as a JSON array, name first: one of ${commandNames.join(', ')}`,
};

const commands: Json = {
  type: 'array',
  minItems: 1,
  maxItems: maxCommandsPerRequest,
  items: anyCommand,
  example: [
    ['SET', 'greeting', 'hello'],
    ['GET', 'greeting'],
  ],
};

const result: Json = {
  type: 'object',
  properties: { result: { description: 'the reply: null, an integer, a string (base64 when asked), or an array' } },
  required: ['result'],
};
const failed: Json = {
  type: 'object',
  properties: { error: { type: 'string', examples: ["ERR wrong number of arguments for 'set' command"] } },
  required: ['error'],
};
const outcomes: Json = { type: 'array', items: { anyOf: [result, failed] } };

const syncHeader = {
  [syncTokenHeader]: {
    description: 'read-your-writes token: send the last one seen back, and no reply reflects less than it covers',
    schema: { type: 'string', pattern: '^[0-9]+$' },
  },
};

/**
 * The error answers of the protocol. The body is `{"error": "…"}` (Upstash's
 * shape, what the client reads); a request the server refuses before it
 * reaches the protocol (a path trick) gets Strata's error envelope instead.
 */
const errors = (badRequest: string): Json => {
  const body = (description: string) => ({
    description,
    content: {
      'application/json': {
        schema: {
          type: 'object',
          properties: { error: { type: ['string', 'object'] } },
          required: ['error'],
        },
      },
    },
  });
  return {
    '400': body(badRequest),
    '401': body('`Unauthorized`: no or an invalid bearer token (when authentication is on)'),
    '403': body("`NOPERM …`: the token lacks the command's scope in the namespace"),
    '404': body('no such path'),
    '413': body('the request body exceeds the limit'),
    '429': body('edge rate limit per service_id (Retry-After says when to retry)'),
    '503': body('the store, the origin or a contested key is unavailable; retry'),
    '504': body('the origin timed out'),
  };
};

/**
 * The `paths` of the Upstash protocol: the base URL (one command POSTed as a
 * JSON array), `/pipeline` and `/multi-exec` (arrays of commands), and
 * path-style commands (`/get/greeting`) with no or one argument.
 * @param parts `namespaceParam` and `keyParam` of the REST description.
 */
export function upstashOpenApiPaths(parts: {
  readonly namespaceParam: Json;
  readonly keyParam: Json & { readonly schema: Json };
}): Json {
  const scopes =
    'Bearer: a Strata JWT; each command needs the scope REST asks for in the namespace: `cache:read` (PING, GET, MGET, EXISTS, TTL, PTTL, SCAN, KEYS), `cache:write` (SET, MSET, EXPIRE, PEXPIRE, INCR, INCRBY, DECR, DECRBY), `cache:delete` (DEL), `cache:flush` (FLUSHDB, FLUSHALL). `Upstash-Encoding: base64` asks for string replies in base64.';
  const encoding = {
    name: 'Upstash-Encoding',
    in: 'header',
    description: '`base64`: every string reply in base64, except the status OK; any other value is ignored',
    schema: { type: 'string', examples: ['base64'] },
  };
  const batch = (operationId: string, summary: string) => ({
    parameters: [parts.namespaceParam],
    post: {
      operationId,
      summary,
      description: scopes,
      parameters: [encoding],
      requestBody: { required: true, content: { 'application/json': { schema: commands } } },
      responses: {
        '200': {
          description: 'one `{result}` or `{error}` per command, in order',
          headers: syncHeader,
          content: { 'application/json': { schema: outcomes } },
        },
        ...errors(
          operationId === 'upstashMultiExec'
            ? '`ERR …`: a malformed body, or a transaction that cannot run (CROSSSLOT on a Cluster, a namespace command such as FLUSHDB inside it)'
            : '`ERR …`: a malformed body',
        ),
      },
    },
  });
  const commandParam = {
    name: 'command',
    in: 'path',
    required: true,
    description: 'a command name (any case)',
    schema: { type: 'string', enum: commandNames.map((c) => c.toLowerCase()) },
    example: 'ping',
  };
  // Any text a path segment may carry (the path rules of keys, without their length limit).
  const argumentParam = {
    name: 'argument',
    in: 'path',
    required: true,
    description: 'the first argument (a key, or what the command takes)',
    schema: { type: 'string', minLength: 1, pattern: (parts.keyParam.schema as Json).pattern },
    example: 'greeting',
  };
  const single = {
    '200': {
      description: "the command's reply",
      headers: syncHeader,
      content: { 'application/json': { schema: result } },
    },
    ...errors('`ERR …`: an unknown command, or arguments the command refuses (arity, integers, options, key rules)'),
  };
  return {
    '/upstash/{namespace}': {
      parameters: [parts.namespaceParam],
      post: {
        operationId: 'upstashCommand',
        summary:
          'One Redis command over the Upstash REST protocol, in the namespace (the base URL of an `@upstash/redis` client)',
        description: scopes,
        parameters: [encoding],
        requestBody: { required: true, content: { 'application/json': { schema: command } } },
        responses: single,
      },
    },
    '/upstash/{namespace}/pipeline': batch(
      'upstashPipeline',
      'Commands run one after another, each on its own (Upstash pipeline)',
    ),
    '/upstash/{namespace}/multi-exec': batch(
      'upstashMultiExec',
      'Commands run as one transaction: all or nothing, serializable (Upstash multi-exec)',
    ),
    '/upstash/{namespace}/{command}': {
      parameters: [parts.namespaceParam, commandParam],
      get: {
        operationId: 'upstashPathCommand',
        summary: 'A path-style command without arguments, e.g. `/upstash/demo/ping`',
        description: scopes,
        parameters: [encoding],
        responses: single,
      },
    },
    '/upstash/{namespace}/{command}/{argument}': {
      parameters: [parts.namespaceParam, commandParam, argumentParam],
      get: {
        operationId: 'upstashPathCommandWithArgument',
        summary: 'A path-style command with one argument, e.g. `/upstash/demo/get/greeting`',
        description: scopes,
        parameters: [encoding],
        responses: single,
      },
    },
  };
}
