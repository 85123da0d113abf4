import { z } from 'zod';
import { keySchema, maxTagsPerEntry, namespaceSchema, tagListSchema, tagSchema, ttlSecondsSchema } from './keys.ts';

/**
 * Wire shapes of warm jobs (docs/warming.md): `POST /api/v1/jobs/warm`
 * starts one, `GET /api/v1/jobs/{id}` reports its progress, `DELETE`
 * cancels it. Runtime-free.
 */

/**
 * What the request body (or, at start-up, the file) holds:
 * - `jsonl`: one entry per line (`{"key","value","encoding","ttl","tags","content_type"}`);
 * - `csv`: a header row naming the same columns (`key,value` required; `tags` a comma list);
 * - `keys`: one key per line, each value fetched from `url_template`;
 * - `trace`: a block trace CSV (`version,time,op,size,lbn`); its `top` most requested keys are fetched from `url_template`.
 */
export const warmFormats = ['jsonl', 'csv', 'keys', 'trace'] as const;
export type WarmFormat = (typeof warmFormats)[number];

/** Most fetches of one URL source running at once. */
export const maxWarmConcurrency = 64;
/** Most keys one URL source (a `keys` body, or the hottest of a trace) may name. */
export const maxWarmKeys = 1_000_000;
/** Most failed items a job lists (the `failed` count goes on). */
export const maxListedFailures = 1_000;
/** Largest request body of a warm job, bytes. */
export const maxWarmUploadBytes = 1024 ** 3;

const wholeNumber = (name: string, min: number, max: number) =>
  z
    .string()
    .regex(/^[0-9]{1,9}$/, `${name} must be a whole number`)
    .transform(Number)
    .pipe(z.number().int().min(min, `${name} must be at least ${min}`).max(max, `${name} must be at most ${max}`));

/** The options of a job, shared by the query of `POST /api/v1/jobs/warm` and `WARM_ON_START` (as numbers there). */
const jobOptionFields = {
  namespace: namespaceSchema,
  format: z.enum(warmFormats, { error: `format must be one of ${warmFormats.join(', ')}` }),
  /** `http(s)://host/…{key}…`; the key is percent-encoded into it. Its origin must be on `WARM_ALLOWED_ORIGINS`. */
  url_template: z
    .string()
    .min(1)
    .max(2048, 'url_template is too long')
    .refine((t) => t.includes('{key}'), 'url_template must contain {key}')
    .optional(),
};

function needsTemplate(o: { format: WarmFormat; url_template?: string | undefined }, ctx: z.RefinementCtx): void {
  if ((o.format === 'keys' || o.format === 'trace') && !o.url_template) {
    ctx.addIssue({ code: 'custom', path: ['url_template'], message: `format ${o.format} needs url_template` });
  }
}

/** Query of `POST /api/v1/jobs/warm`; the body is the data in `format`. */
export const warmQuerySchema = z
  .strictObject({
    ...jobOptionFields,
    /** How many of a trace's most requested keys to load (default 1,000). */
    top: wholeNumber('top', 1, maxWarmKeys).optional(),
    /** Fetches at once (default 8). */
    concurrency: wholeNumber('concurrency', 1, maxWarmConcurrency).optional(),
    /** Retries of a failed fetch, with exponential back-off (default 3). */
    retries: wholeNumber('retries', 0, 10).optional(),
    /** Seconds, for entries that give none (default `CACHE_DEFAULT_TTL`). */
    ttl: z
      .string()
      .regex(/^[0-9]{1,12}$/, 'ttl must be a whole number of seconds')
      .transform(Number)
      .pipe(ttlSecondsSchema)
      .optional(),
  })
  .superRefine(needsTemplate);
export type WarmQuery = z.infer<typeof warmQuerySchema>;

/** One warm source of `WARM_ON_START`: the options above plus where the data is (`file` on the origin's disk, or inline `keys`). */
export const warmStartSourceSchema = z
  .strictObject({
    ...jobOptionFields,
    file: z.string().min(1).optional(),
    keys: z.array(keySchema).min(1).max(maxWarmKeys).optional(),
    top: z.number().int().min(1).max(maxWarmKeys).optional(),
    concurrency: z.number().int().min(1).max(maxWarmConcurrency).optional(),
    retries: z.number().int().min(0).max(10).optional(),
    ttl: ttlSecondsSchema.optional(),
  })
  .superRefine(needsTemplate)
  .superRefine((o, ctx) => {
    if (!o.file && !(o.format === 'keys' && o.keys))
      ctx.addIssue({ code: 'custom', path: ['file'], message: 'a source needs file (or keys, for format keys)' });
  });
export type WarmStartSource = z.infer<typeof warmStartSourceSchema>;

/** One entry of a `jsonl` or `csv` source. */
export const warmEntrySchema = z.strictObject({
  key: keySchema,
  value: z.string({ error: 'value must be a string' }),
  /** `text` (UTF-8, the default) or `base64` (RFC 4648 §4). */
  encoding: z.enum(['text', 'base64']).default('text'),
  ttl: ttlSecondsSchema.optional(),
  tags: z.array(tagSchema).max(maxTagsPerEntry).default([]),
  content_type: z.string().min(1).max(256).optional(),
});
export type WarmEntry = z.infer<typeof warmEntrySchema>;

/** A CSV row (every cell a string) as a {@link warmEntrySchema} input: `ttl` a number, `tags` a comma list. */
export const warmCsvRowSchema = z
  .object({
    key: z.string(),
    value: z.string(),
    encoding: z.string().optional(),
    ttl: z.string().optional(),
    tags: z.string().optional(),
    content_type: z.string().optional(),
  })
  .transform((r) => ({
    key: r.key,
    value: r.value,
    ...(r.encoding ? { encoding: r.encoding } : {}),
    ...(r.ttl ? { ttl: /^[0-9]{1,12}$/.test(r.ttl) ? Number(r.ttl) : r.ttl } : {}),
    ...(r.tags ? { tags: tagListSchema.safeParse(r.tags).data ?? [r.tags] } : {}),
    ...(r.content_type ? { content_type: r.content_type } : {}),
  }))
  .pipe(warmEntrySchema);

export const warmJobStates = ['running', 'done', 'failed', 'cancelled'] as const;
export type WarmJobState = (typeof warmJobStates)[number];

/** An item that did not load: its key (or the line, when the line had none) and why. */
export const failedItemSchema = z.object({
  key: z.string().nullable(),
  /** 1-based line (or CSV record) of the input; null for a fetched key. */
  line: z.number().int().nullable(),
  reason: z.string(),
});
export type FailedItem = z.infer<typeof failedItemSchema>;

/** `GET /api/v1/jobs/{id}`: a job's progress. */
export const warmJobSchema = z.object({
  id: z.string(),
  namespace: namespaceSchema,
  format: z.enum(warmFormats),
  /** A running job whose replica stopped heartbeating is reported `failed`, never left running. */
  state: z.enum(warmJobStates),
  created_at: z.string(),
  updated_at: z.string(),
  finished_at: z.string().nullable(),
  /** Items to load, when known (URL sources from the start, files once read). */
  total: z.number().int().nonnegative().nullable(),
  /** Items loaded. */
  done: z.number().int().nonnegative(),
  /** Items that did not load (listed in `failed_items`, the first {@link maxListedFailures}). */
  failed: z.number().int().nonnegative(),
  /** Value bytes loaded. */
  bytes: z.number().int().nonnegative(),
  /** Input bytes read so far, and the input's size (null when unknown). */
  input_bytes: z.number().int().nonnegative(),
  input_total_bytes: z.number().int().nonnegative().nullable(),
  /** Items (done + failed) per second since the start. */
  rate_per_second: z.number().nonnegative(),
  /** Value bytes loaded per second since the start. */
  bytes_per_second: z.number().nonnegative(),
  /** Seconds left at the current rate; null when finished or unknown. */
  eta_seconds: z.number().nonnegative().nullable(),
  /** Hits / reads in the namespace on the running replica since the job started; null before any read. */
  hit_ratio: z.number().min(0).max(1).nullable(),
  failed_items: z.array(failedItemSchema),
  error: z.string().nullable(),
  /** The replica running it. */
  replica: z.string(),
});
export type WarmJob = z.infer<typeof warmJobSchema>;

/** `POST /api/v1/jobs/warm` (202). */
export const warmStartedSchema = z.object({ id: z.string(), state: z.enum(warmJobStates), href: z.string() });

/** A job id: a UUID (RFC 9562 syntax, any version, as JSON Schema's `uuid` format). */
export const jobIdSchema = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'job id must be a UUID');

type Json = Record<string, unknown>;

/**
 * The OpenAPI paths of warm jobs (origin only), built from the same limits
 * the handlers validate with; `shared/openapi.ts` adds them.
 */
export function warmOpenApiPaths(parts: {
  readonly commonErrors: Json;
  readonly error: (description: string, code: string, message: string) => Json;
  readonly schema: (s: z.ZodType, io: 'input' | 'output') => Json;
  readonly namespacePattern: string;
  readonly ttlMinimum: number;
  readonly ttlMaximum: number;
}): Json {
  const { commonErrors, error } = parts;
  const job = {
    description: 'the job',
    content: { 'application/json': { schema: parts.schema(warmJobSchema, 'output') } },
  };
  const notFound = {
    '404': error('CACHE_001: no such job (or it finished more than a day ago)', 'CACHE_001', 'Job not found'),
  };
  const idParam = {
    name: 'id',
    in: 'path',
    required: true,
    schema: { type: 'string', format: 'uuid' },
    example: '0f8fad5b-d9cb-469f-a165-70867728950e',
  };
  const int = (name: string, minimum: number, maximum: number, description: string) => ({
    name,
    in: 'query',
    description,
    schema: { type: 'integer', minimum, maximum },
  });
  return {
    '/api/v1/jobs/warm': {
      post: {
        operationId: 'startWarmJob',
        summary:
          'Start a warm job loading entries into the namespace through the normal write path (cache:write in the namespace); the body is the data in `format`, streamed, of any length up to 1 GiB. URL sources fetch only from WARM_ALLOWED_ORIGINS: any other origin, also as a redirect target, is refused before a request is sent',
        parameters: [
          {
            name: 'namespace',
            in: 'query',
            required: true,
            schema: { type: 'string', pattern: parts.namespacePattern },
          },
          {
            name: 'format',
            in: 'query',
            required: true,
            description:
              '`jsonl`: one `{"key","value","encoding":"text|base64","ttl","tags","content_type"}` a line; `csv`: a header row naming the same columns (`tags` a comma list); `keys`: one key a line, each fetched from `url_template`; `trace`: a block trace CSV (`version,time,op,size,lbn`) whose `top` most requested keys are fetched from `url_template`',
            schema: { type: 'string', enum: [...warmFormats] },
          },
          {
            name: 'url_template',
            in: 'query',
            description:
              'required for `keys` and `trace`: `http(s)://host/…{key}…`, the key percent-encoded into it; its origin must be on WARM_ALLOWED_ORIGINS (else 400 CACHE_004)',
            schema: { type: 'string', minLength: 5, maxLength: 2048, pattern: '\\{key\\}' },
          },
          int('top', 1, maxWarmKeys, 'most requested keys of a trace to load (default 1000)'),
          int('concurrency', 1, maxWarmConcurrency, 'fetches at once (default 8)'),
          int(
            'retries',
            0,
            10,
            'retries of a failing fetch (5xx, 408, 429, network), with exponential back-off (default 3)',
          ),
          int(
            'ttl',
            parts.ttlMinimum,
            parts.ttlMaximum,
            'seconds, for entries that give none (default CACHE_DEFAULT_TTL)',
          ),
        ],
        requestBody: {
          required: false,
          content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
        },
        responses: {
          '202': {
            description: 'started; follow `href`',
            headers: { Location: { schema: { type: 'string' } } },
            content: { 'application/json': { schema: parts.schema(warmStartedSchema, 'output') } },
          },
          '413': error('CACHE_003: body over 1 GiB', 'CACHE_003', 'Warm input too large'),
          ...commonErrors,
        },
      },
    },
    '/api/v1/jobs/{id}': {
      parameters: [idParam],
      get: {
        operationId: 'getWarmJob',
        summary:
          'Progress of a job (cache:write in its namespace): done, failed (each failed item listed, the first 1000), bytes, rate, ETA, hit ratio while warming. A job whose replica stopped heartbeating is reported failed',
        responses: { '200': job, ...notFound, ...commonErrors },
      },
      delete: {
        operationId: 'cancelWarmJob',
        summary:
          'Cancel a job (cache:write in its namespace); answers the job, which ends `cancelled` at once on its replica or at its next heartbeat (about a second) from another',
        responses: { '200': job, ...notFound, ...commonErrors },
      },
    },
  };
}
