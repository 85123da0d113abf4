import { z } from 'zod';
import { defaultEvictionPolicy, evictionPolicies } from './eviction/index.ts';
import { hubAliasSchema } from './hub.ts';
import { defaultMaxValueBytes } from './keys.ts';
import { regionSchema } from './schemas.ts';
import { warmStartSourceSchema } from './warm.ts';

/**
 * Configuration schemas (ARCHITECTURE.md §3). They parse a plain string map,
 * so they run on any runtime; only the entry points pass `process.env` in.
 */
type Env = Record<string, string | undefined>;

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
/** The items of a comma list, trimmed, empty ones dropped. */
const commaItems = (s: string): string[] =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter(Boolean);
/** A comma list of `item`s (blanks trimmed, empties dropped), at least one. */
const listOf = (item: z.ZodString) => z.string().transform(commaItems).pipe(z.array(item).min(1));
const commaList = listOf(z.string().regex(/^[^:\s]+:\d+$/, 'expected host:port'));

/** Eviction policy of the in-memory tiers (embedded store, fallback tier, edge tier): `lru`, `lfu` (with dynamic aging) or `s3fifo`. */
const evictionPolicy = z.enum(evictionPolicies).default(defaultEvictionPolicy);

/** JWT verification, the same on the edge and the origin (shared/auth.ts, docs/security.md). Unset = auth off. */
const authVars = {
  /** HS256 shared secret, at least 32 bytes. */
  AUTH_JWT_SECRET: z.string().min(32, 'must be at least 32 bytes').optional(),
  /** JWKS URL for RS256/ES256/EdDSA tokens (mutually exclusive with AUTH_JWT_SECRET). */
  AUTH_JWKS_URL: z.string().url().optional(),
  /** Required `iss` claim, when set. */
  AUTH_ISSUER: z.string().min(1).optional(),
  /** Required `aud` claim, when set. */
  AUTH_AUDIENCE: z.string().min(1).optional(),
  /** Seconds of clock skew allowed on `exp` and `nbf`. */
  AUTH_CLOCK_SKEW_SECONDS: z.coerce.number().int().min(0).max(300).default(30),
  /** Milliseconds a client has to send a whole HTTP/1.1 request (headers and body); slower ones get 408 (docs/security.md). */
  REQUEST_TIMEOUT_MS: z.coerce.number().int().min(1000).default(30_000),
  /** `production` makes the origin refuse to start without auth configured. */
  NODE_ENV: z.string().optional(),
};

/** Cache warming (docs/warming.md). */
const warmVars = {
  /** Origins (`https://host[:port]`, comma list) warm jobs may fetch values from; unset = no URL sources. */
  WARM_ALLOWED_ORIGINS: z
    .string()
    .transform(commaItems)
    .pipe(
      z.array(
        z
          .string()
          .refine(
            (o) => URL.canParse(o) && new URL(o).origin === o,
            'expected origins such as https://data.example:8443',
          ),
      ),
    )
    .optional(),
  /** Sources to warm at start-up, once per region: a JSON array of `{namespace, format, file | keys, url_template, …}`. */
  WARM_ON_START: z
    .string()
    .transform((s, ctx) => {
      try {
        return JSON.parse(s) as unknown;
      } catch {
        ctx.addIssue({ code: 'custom', message: 'expected a JSON array of warm sources' });
        return z.NEVER;
      }
    })
    .pipe(z.array(warmStartSourceSchema).min(1))
    .optional(),
  /** Seconds `/ready` waits for the start-up warming before answering ready anyway. */
  WARM_ON_START_DEADLINE_SECONDS: positiveInt.max(86_400).default(300),
};

/** Origin configuration fields; {@link originConfigSchema} adds the checks across fields. */
const originConfigFields = z.object({
  ...authVars,
  /** Keys for encryption at rest: `id:base64,…` (32-byte AES-256 keys), first = current (shared/crypto.ts). */
  ENCRYPTION_KEYS: z.string().min(1).optional(),
  /** Namespaces whose every write is encrypted at rest (comma list); needs ENCRYPTION_KEYS. */
  ENCRYPTED_NAMESPACES: z
    .string()
    .transform(commaItems)
    .pipe(z.array(z.string().regex(/^[a-z0-9_-]{1,64}$/, 'expected namespaces')))
    .optional(),
  ORIGIN_PORT: port.default(8080),
  ORIGIN_HOST: z.string().default('127.0.0.1'),
  /** Standalone Redis, `redis://[user:password@]host:port[/db]` or `rediss://` for TLS. */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\/[^\s/]/, 'expected redis://host:port or rediss://host:port, e.g. redis://127.0.0.1:6379')
    .pipe(z.string().url())
    .optional(),
  /** Refuse to start (`true`) when Redis does not answer at start-up, instead of starting degraded on the local tier. */
  REDIS_REQUIRED_AT_START: z.stringbool().default(false),
  REDIS_CLUSTER_NODES: commaList.optional(),
  /** Seconds, when a write gives no TTL. */
  CACHE_DEFAULT_TTL: positiveInt.default(3600),
  /** Path of a JSON file of cache profiles (per namespace or key prefix: TTL, grace, consistency); unset = none. */
  CACHE_PROFILES: z.string().min(1).optional(),
  /** Lifetime of a refresh lease, ms: how long one caller alone may refresh a stale or missing key. */
  LEASE_TTL_MS: positiveInt.default(10_000),
  /** β of probabilistic early refresh (XFetch, Vattani et al., VLDB 2015); 0 turns it off. */
  XFETCH_BETA: z.coerce.number().min(0).max(100).default(1),
  /** Longest a lock acquire waits for a held lock, seconds (docs/locks.md); larger `wait` values count as this. */
  LOCK_MAX_WAIT_SECONDS: z.coerce.number().min(0).max(30).default(30),
  /** Byte budget of the embedded memory store. */
  MEMORY_STORE_MAX_BYTES: positiveInt.default(256 * 1024 * 1024),
  /** Eviction policy of the embedded memory store and the fallback tier. */
  EVICTION_POLICY: evictionPolicy,
  /** `AUTH` password for Redis (standalone URL may carry its own; Cluster nodes use this). */
  REDIS_PASSWORD: z.string().min(1).optional(),
  /** Connect to Redis Cluster nodes with TLS (`true`/`false`). Standalone uses a `rediss://` URL instead. */
  REDIS_TLS: z.stringbool().default(false),
  /** PEM file of the CA(s) that signed the Redis nodes' certificates (REDIS_TLS); unset = the system trust store. */
  REDIS_TLS_CA_FILE: z.string().min(1).optional(),
  /** Milliseconds one Redis call may take before it counts as failed and the local tier answers. */
  REDIS_CALL_TIMEOUT_MS: positiveInt.default(300),
  /** Redis Sentinel addresses `host:port,...`; with REDIS_SENTINEL_MASTER the origin follows that master through failover (docs/redis-sentinel.md). */
  REDIS_SENTINELS: commaList.optional(),
  /** Name of the master the sentinels monitor (`sentinel monitor <name> ...`); needs REDIS_SENTINELS. */
  REDIS_SENTINEL_MASTER: z.string().min(1).optional(),
  /** Replicas that must acknowledge each write (`WAIT n timeout` after it); 0 = asynchronous replication only. */
  REDIS_WAIT_REPLICAS: z.coerce.number().int().min(0).max(16).default(0),
  /** Milliseconds a write waits for REDIS_WAIT_REPLICAS acknowledgements before it answers anyway (the `WAIT` timeout). */
  REDIS_WAIT_TIMEOUT_MS: positiveInt.default(100),
  /** Milliseconds to open a TCP (and TLS) connection to one Redis node or sentinel before the attempt counts as failed. */
  REDIS_CONNECT_TIMEOUT_MS: positiveInt.default(1_000),
  /** Milliseconds before the first reconnect attempt; each further attempt doubles it, up to REDIS_RECONNECT_MAX_MS. */
  REDIS_RECONNECT_BASE_MS: positiveInt.default(50),
  /** Milliseconds: the cap on the reconnect back-off. */
  REDIS_RECONNECT_MAX_MS: positiveInt.default(2_000),
  /** Values larger than this many bytes are stored compressed with zstd when that saves space (docs/compression.md); 0 = never compress. */
  COMPRESS_MIN_BYTES: z.coerce.number().int().min(0).default(1024),
  /** Attempts for an idempotent Redis read (1 = no retry); retries back off exponentially with jitter. */
  REDIS_READ_ATTEMPTS: positiveInt.max(5).default(2),
  /** Failure ratio over the window that opens the circuit breaker (ICD §9.2 `threshold`), in (0, 1). */
  BREAKER_THRESHOLD: z.coerce.number().gt(0).lt(1).default(0.5),
  /** Seconds of the breaker's sampling window (ICD §9.2 `window`). */
  BREAKER_WINDOW_SECONDS: positiveInt.default(60),
  /** Calls the window must hold before the breaker may open (ICD §9.2 `min_requests`). */
  BREAKER_MIN_REQUESTS: positiveInt.default(20),
  /** Milliseconds an open breaker waits before a half-open probe. */
  BREAKER_HALF_OPEN_AFTER_MS: positiveInt.default(5_000),
  /** Milliseconds between background recovery rounds (probe, write-back); 0 = only requests trigger them. */
  BREAKER_RECOVERY_INTERVAL_MS: z.coerce.number().int().min(0).default(1_000),
  /** Byte budget of clean copies in the origin's local fallback tier. */
  LOCAL_TIER_MAX_BYTES: positiveInt.default(64 * 1024 * 1024),
  /** Byte budget of writes accepted during a Redis outage; past it such writes answer 503 CACHE_005. */
  LOCAL_TIER_MAX_DIRTY_BYTES: positiveInt.default(64 * 1024 * 1024),
  /** Largest value, bytes. */
  MAX_VALUE_BYTES: positiveInt.default(defaultMaxValueBytes),
  /** Purges kept for replay to reconnecting edges. */
  PURGE_BUFFER_SIZE: positiveInt.default(10_000),
  /**
   * Which purge log the origin uses: `auto` = the region's log on the store's
   * Redis (a Redis Stream every replica shares) when the store is Redis or
   * Redis Cluster, else this process's memory; `none` = this process's
   * memory even on Redis, only for a deliberate single replica.
   */
  PURGE_BUS: z.enum(['auto', 'none']).default('auto'),
  /** Redis key prefix of the region's purge log (`<prefix>:stream`, `<prefix>:meta`); keep one `{hash tag}` for Redis Cluster. Replicas of one region share it. */
  PURGE_LOG_KEY: z
    .string()
    .regex(/^[^{}]*\{[^{}]+\}[^{}]*$/, 'expected one {hash tag}')
    .default('{strata:purge-log}'),
  /** Seconds the Redis purge log keeps a purge; an edge further behind (or away longer) gets `reset`. */
  PURGE_LOG_RETENTION_SECONDS: positiveInt.default(3_600),
  /** Redis replicas that must hold a purge before its change is acknowledged (`WAIT`); unset = 1 when the log's master has replicas, else 0. */
  PURGE_LOG_WAIT_REPLICAS: z.coerce.number().int().min(0).max(16).optional(),
  /** Milliseconds `WAIT` may take; past it the change answers 503 CACHE_005 (the client retries). */
  PURGE_LOG_WAIT_TIMEOUT_MS: positiveInt.default(1_000),
  /**
   * Milliseconds a change's intent may stay open in the Redis purge log
   * before a replica treats its writer as dead and recovers it (logs a purge
   * of its keys at the versions the store holds). Bounds how long an edge can serve a
   * value older than a change whose origin crashed mid-write.
   */
  PURGE_INTENT_TIMEOUT_MS: positiveInt.default(3_000),
  /**
   * Seconds between staleness canary probes: the origin writes a canary key
   * and measures how long its purge takes to reach every edge subscribed to
   * it (`strata_purge_canary_lag_seconds`, `/ready` detail). 0 (default) = off;
   * 5 suits production. Its purges reach every edge like any other.
   */
  PURGE_CANARY_SECONDS: z.coerce.number().int().min(0).default(0),
  /**
   * Fault injection for crash tests only: the origin SIGKILLs itself after the
   * change's intent is in the purge log and before the store write
   * (`crash-after-intent`), after the store took a change and before its purge
   * is logged (`crash-after-store-write`), or after the purge is logged and
   * before the change is acknowledged (`crash-after-log-append`). Never set in
   * production.
   */
  STRATA_FAULT: z.enum(['crash-after-intent', 'crash-after-store-write', 'crash-after-log-append']).optional(),
  /**
   * Milliseconds between `heartbeat` events on the purge stream; at most a
   * third of the edges' `EDGE_LEASE_MS` so a lease survives a lost heartbeat.
   * Default 1000 (or `PURGE_HEARTBEAT_SECONDS` × 1000 when only that is set).
   */
  PURGE_HEARTBEAT_MS: positiveInt.optional(),
  /** Seconds between heartbeats: the older spelling of `PURGE_HEARTBEAT_MS`, still honoured when that is unset. */
  PURGE_HEARTBEAT_SECONDS: positiveInt.optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'silent']).default('info'),
  /**
   * Answer unary binary gRPC-web calls over HTTP/1.1 on a fast path with the
   * same bytes as Connect's handler (docs/grpc.md); `false` sends every call
   * through Connect. Off by itself while tracing is on.
   */
  GRPC_UNARY_FAST_PATH: z.stringbool().default(true),
  /** A file of `KEY=VALUE` lines that overrides the environment; re-read on every reload (`POST /api/v1/reload`, SIGHUP). */
  STRATA_CONFIG_FILE: z.string().min(1).optional(),
  /** Kafka bootstrap brokers `host:port,...`; unset = in-process invalidation source, no consumer (docs/kafka.md). */
  KAFKA_BROKERS: commaList.optional(),
  /** Topic of invalidation events (ARCHITECTURE.md §4). */
  KAFKA_INVALIDATION_TOPIC: z.string().min(1).default('cache.invalidation'),
  /** Consumer group; one per region, so every region sees every event. Default `strata-origin-<STRATA_REGION>` (`strata-origin` in region `local`). */
  KAFKA_GROUP_ID: z.string().min(1).optional(),
  /** Kafka client id, for broker logs and quotas. */
  KAFKA_CLIENT_ID: z.string().min(1).default('strata-origin'),
  /** Dead-letter topic for undecodable or invalid events; default `<KAFKA_INVALIDATION_TOPIC>.dlq`. */
  KAFKA_DLQ_TOPIC: z.string().min(1).optional(),
  /** A group with no committed offset starts at the oldest event (`true`) or only new ones (`false`). */
  KAFKA_FROM_BEGINNING: z.stringbool().default(false),
  /** Milliseconds without heartbeat before the broker evicts a consumer (broker minimum 6000). */
  KAFKA_SESSION_TIMEOUT_MS: positiveInt.default(30_000),
  /** Milliseconds between consumer heartbeats (well under the session timeout). */
  KAFKA_HEARTBEAT_INTERVAL_MS: positiveInt.default(3_000),
  /**
   * Milliseconds between sampling fetches of the consumer's partitions beside its long-poll (0–1000; 0 = off,
   * the default): a new event then waits at most about this long for a fetch, instead of up to one round trip to
   * the broker. Costs 1000 ÷ this fetches per second per replica and up to 16 more connections (docs/kafka.md).
   */
  KAFKA_FETCH_SAMPLE_MS: z.coerce.number().int().min(0).max(1_000).default(0),
  /** Connect to Kafka with TLS (`true`/`false`); the broker's certificate is checked against KAFKA_SSL_CA_FILE or the system trust store. */
  KAFKA_SSL: z.stringbool().default(false),
  /** PEM file of the CA(s) that signed the brokers' certificates; needs KAFKA_SSL=true. */
  KAFKA_SSL_CA_FILE: z.string().min(1).optional(),
  /** SASL mechanism (PLAIN, RFC 4616; SCRAM, RFC 5802 / RFC 7677); unset = no SASL. Needs KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD. */
  KAFKA_SASL_MECHANISM: z.enum(['plain', 'scram-sha-256', 'scram-sha-512']).optional(),
  /** SASL user name (KAFKA_SASL_MECHANISM). */
  KAFKA_SASL_USERNAME: z.string().min(1).optional(),
  /** SASL password (KAFKA_SASL_MECHANISM); never logged. */
  KAFKA_SASL_PASSWORD: z.string().min(1).optional(),
  /** This origin's region: events it forwards carry it as `origin_region`; events from it are not applied again here (docs/regions.md). */
  STRATA_REGION: regionSchema.default('local'),
  /**
   * Forward this region's purges to the invalidation topic for other regions (with KAFKA_BROKERS and a Redis store);
   * default: on when STRATA_REGION is set to a region other than `local`.
   */
  REGION_FORWARD: z.stringbool().optional(),
  /** Milliseconds the forwarder lease lasts without renewal: a dead forwarding replica is replaced within about this. */
  REGION_FORWARD_LEASE_MS: positiveInt.min(500).default(5_000),
  /**
   * Idempotent Kafka producers (one connection each to every broker they send to) the region forwarder sends
   * through; a key's event goes behind that key's send still in flight, on the same producer, so they stay in
   * order. More lets a purge leave while another produce is in flight; 1 sends one batch at a time.
   */
  REGION_FORWARD_PRODUCERS: positiveInt.max(32).default(4),
  /** Invalidation event ids remembered for idempotency (a bounded LRU window). */
  INVALIDATION_DEDUP_WINDOW: positiveInt.default(100_000),
  /** Answer cache operations and management requests over Kafka (the Message Hub, docs/message-hub.md). Needs `KAFKA_BROKERS`. */
  HUB_ENABLED: z.stringbool().default(false),
  /** Prefix of the hub's topic names (`<prefix>cache.operation.request`, ...); default none. */
  HUB_TOPIC_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9._-]*$/, 'letters, digits, ".", "_" and "-" only')
    .default(''),
  /** Consumer group of the hub (and prefix of its transactional ids); default `<consumer group>-hub`. */
  HUB_GROUP_ID: z.string().min(1).optional(),
  /** Topics a request's `reply-to` header may name; default the two response topics (with `HUB_TOPIC_PREFIX`). */
  HUB_REPLY_TOPICS: listOf(z.string().regex(/^[A-Za-z0-9._-]{1,249}$/, 'expected Kafka topic names')).optional(),
  /**
   * Per-service topics accepted as aliases of the operation request topic, comma-separated
   * `<topic>=<operation>:<namespace>` (e.g. `cache.char.get=get:character,cache.char.set=set:character`); default none.
   */
  HUB_ALIASES: z.string().transform(commaItems).pipe(z.array(hubAliasSchema).min(1)).optional(),
  /** Dead-letter topic of requests nobody can be answered for; default `<prefix>cache.hub.dlq`. */
  HUB_DLQ_TOPIC: z.string().min(1).optional(),
  /** Milliseconds a change's dedup record outlives its request's TTL: the longest redelivery delay allowed for. */
  HUB_REDELIVERY_MAX_MS: positiveInt.default(600_000),
  /** Crash tests only: SIGKILL the origin after a hub transaction applied its requests, before it commits. */
  HUB_FAULT: z.enum(['crash-before-commit']).optional(),
  /** Seconds between `cache.health.status` events (ICD §3.1.2) on Kafka; 0 = none. Needs `KAFKA_BROKERS`. */
  HEALTH_EVENT_INTERVAL_SECONDS: z.coerce.number().int().min(0).default(30),
  /** Topic of the health events. */
  KAFKA_HEALTH_TOPIC: z.string().min(1).default('cache.health.status'),
  /**
   * Publish `cache.item.updated` and obey `config.cache.update` and `control.cache.action` on Kafka
   * (docs/message-hub.md); needs `KAFKA_BROKERS`.
   */
  HUB_EVENTS_ENABLED: z.stringbool().default(false),
  /** Topic of the item events this origin publishes. */
  KAFKA_ITEM_UPDATED_TOPIC: z.string().min(1).default('cache.item.updated'),
  /** Topic of the policy changes this origin obeys; its dead letters go to `<topic>.dlq`. */
  KAFKA_CONFIG_UPDATE_TOPIC: z.string().min(1).default('config.cache.update'),
  /** Topic of the flush, purge and reload commands this origin obeys; its dead letters go to `<topic>.dlq`. */
  KAFKA_CONTROL_TOPIC: z.string().min(1).default('control.cache.action'),
  /** Milliseconds the item event publisher's lease lasts without renewal: a dead publisher is replaced within about this. */
  HUB_EVENTS_LEASE_MS: positiveInt.min(500).default(5_000),
  /** `service_id` of this origin in health events and logs; default the host name and port. */
  ORIGIN_ID: z.string().min(1).max(128).optional(),
  /** Seconds between the dashboard's points (`/api/v1/stats`). */
  STATS_SAMPLE_SECONDS: positiveInt.max(60).default(2),
  /** Seconds of history `/api/v1/stats` keeps (the dashboard's window). */
  STATS_WINDOW_SECONDS: positiveInt.max(86_400).default(600),
  /** OTLP/HTTP collector base URL (e.g. `http://127.0.0.1:4318`); traces go to `<url>/v1/traces`. Unset = no tracing. */
  OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
  /** `service.name` of exported spans. */
  OTEL_SERVICE_NAME: z.string().min(1).optional(),
  ...warmVars,
});

/** Kafka security settings that only make sense together: one issue per variable, one line each. */
function checkKafkaSecurity(c: z.infer<typeof originConfigFields>, ctx: z.RefinementCtx): void {
  if (c.KAFKA_SSL_CA_FILE && !c.KAFKA_SSL)
    ctx.addIssue({ code: 'custom', path: ['KAFKA_SSL_CA_FILE'], message: 'needs KAFKA_SSL=true' });
  for (const name of ['KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD'] as const) {
    if (c.KAFKA_SASL_MECHANISM && !c[name])
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: `required with KAFKA_SASL_MECHANISM=${c.KAFKA_SASL_MECHANISM}`,
      });
    if (!c.KAFKA_SASL_MECHANISM && c[name])
      ctx.addIssue({
        code: 'custom',
        path: [name],
        message: 'needs KAFKA_SASL_MECHANISM (plain, scram-sha-256 or scram-sha-512)',
      });
  }
}

/** The consumer group: `KAFKA_GROUP_ID`, else `strata-origin-<STRATA_REGION>` (`strata-origin` in region `local`). */
export function kafkaGroupId(config: Pick<OriginConfig, 'KAFKA_GROUP_ID' | 'STRATA_REGION'>): string {
  if (config.KAFKA_GROUP_ID) return config.KAFKA_GROUP_ID;
  return config.STRATA_REGION === 'local' ? 'strata-origin' : `strata-origin-${config.STRATA_REGION}`;
}

/** Origin configuration, parsed from env vars. */
/** The Message Hub consumes Kafka: `HUB_ENABLED=true` without `KAFKA_BROKERS` is one issue on `HUB_ENABLED`. */
function checkHub(c: z.infer<typeof originConfigFields>, ctx: z.RefinementCtx): void {
  if (c.HUB_ENABLED && !c.KAFKA_BROKERS)
    ctx.addIssue({ code: 'custom', path: ['HUB_ENABLED'], message: 'needs KAFKA_BROKERS' });
}

export const originConfigSchema = originConfigFields.superRefine(checkKafkaSecurity).superRefine(checkHub);
export type OriginConfig = z.infer<typeof originConfigSchema>;

/** Default milliseconds between purge-stream heartbeats: a third of the default edge lease. */
export const defaultPurgeHeartbeatMs = 1_000;

/** Milliseconds between purge-stream heartbeats: `PURGE_HEARTBEAT_MS`, else `PURGE_HEARTBEAT_SECONDS` × 1000, else 1000. */
export function purgeHeartbeatMs(config: Pick<OriginConfig, 'PURGE_HEARTBEAT_MS' | 'PURGE_HEARTBEAT_SECONDS'>): number {
  return (
    config.PURGE_HEARTBEAT_MS ??
    (config.PURGE_HEARTBEAT_SECONDS === undefined ? defaultPurgeHeartbeatMs : config.PURGE_HEARTBEAT_SECONDS * 1000)
  );
}

/** Edge configuration, parsed from env vars (or Workers bindings). */
export const edgeConfigSchema = z
  .object({
    ...authVars,
    /** Requests per second per `service_id` at the edge (token bucket refill); 0 = no rate limit (docs/security.md). */
    EDGE_RATE_LIMIT_RPS: z.coerce.number().min(0).default(0),
    /** Largest burst per `service_id` (bucket size); default twice the rate, at least 1. */
    EDGE_RATE_LIMIT_BURST: positiveInt.optional(),
    /** The edge's own JWT toward the origin (API calls, purge stream, stats); needs the origin's grants (docs/security.md). */
    EDGE_ORIGIN_TOKEN: z.string().min(1).optional(),
    EDGE_PORT: port.default(8787),
    EDGE_HOST: z.string().default('127.0.0.1'),
    ORIGIN_URL: z.string().url().default('http://127.0.0.1:8080'),
    /**
     * Seconds: cap on how long the edge keeps an entry. Not the staleness
     * bound (the lease is: `EDGE_LEASE_MS`), only a cap on memory held for cold keys.
     */
    EDGE_MAX_TTL_SECONDS: positiveInt.default(300),
    /** Milliseconds an edge remembers an origin miss (negative caching); any write or purge of the key clears it. 0 = off. */
    EDGE_NEGATIVE_TTL_MS: z.coerce.number().int().min(0).default(0),
    /** Byte budget of the near-user tier. */
    EDGE_MAX_BYTES: positiveInt.default(64 * 1024 * 1024),
    /**
     * Node edge: bytes of origin bodies read between two full garbage
     * collections, so that filled and evicted values do not pile up in
     * resident memory; `auto` = an eighth of `EDGE_MAX_BYTES`, at least 4 MiB.
     * Default 0 = off (V8 alone decides): each collection costs CPU on misses.
     */
    EDGE_GC_EVERY_BYTES: z.union([z.literal('auto'), z.coerce.number().int().min(0)]).default(0),
    /** Eviction policy of the near-user tier. */
    EVICTION_POLICY: evictionPolicy,
    /** Largest value the edge accepts on a write, bytes. */
    MAX_VALUE_BYTES: positiveInt.default(defaultMaxValueBytes),
    /** Milliseconds an origin call may take before the edge answers CACHE_005. */
    EDGE_ORIGIN_TIMEOUT_MS: positiveInt.default(5_000),
    /**
     * Milliseconds without a byte on the purge stream (heartbeats included)
     * before the edge replaces it; at most `EDGE_LEASE_MS`. Default: `EDGE_LEASE_MS`.
     */
    EDGE_PURGE_IDLE_TIMEOUT_MS: positiveInt.optional(),
    /**
     * Milliseconds an edge may serve from its tier after the origin last
     * confirmed (heartbeat or poll with `tail_live`) that its view of the purge
     * log is complete. Past it the edge renews, then revalidates per key.
     */
    EDGE_LEASE_MS: positiveInt.default(3_000),
    /**
     * Milliseconds a polling edge (Workers) lets its view of the purge log age
     * before it polls again (`GET /api/v1/purges`); less than `EDGE_LEASE_MS`.
     */
    EDGE_PURGE_POLL_MS: positiveInt.default(1_000),
    /**
     * Workers only: keep a second tier in the colo's Cache API
     * (`caches.default`), shared by the isolates of a colo, behind each
     * isolate's memory tier. Other runtimes ignore it.
     */
    EDGE_CACHE_API: z.stringbool().default(false),
    /** Name of this edge in logs and the origin's edge list. */
    EDGE_ID: z.string().min(1).max(64).optional(),
    /** Seconds between this edge's stats reports to the origin's dashboard (`POST /api/v1/edges/stats`); 0 = none. */
    EDGE_STATS_INTERVAL_SECONDS: z.coerce.number().int().min(0).default(5),
    /** OTLP/HTTP collector base URL (e.g. `http://127.0.0.1:4318`); traces go to `<url>/v1/traces`. Unset = no tracing. */
    OTEL_EXPORTER_OTLP_ENDPOINT: z.string().url().optional(),
    /** `service.name` of exported spans. */
    OTEL_SERVICE_NAME: z.string().min(1).optional(),
    LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'silent']).default('info'),
  })
  .refine((c) => c.EDGE_PURGE_POLL_MS < c.EDGE_LEASE_MS, {
    path: ['EDGE_PURGE_POLL_MS'],
    message: 'must be less than EDGE_LEASE_MS',
  })
  .refine((c) => c.EDGE_PURGE_IDLE_TIMEOUT_MS === undefined || c.EDGE_PURGE_IDLE_TIMEOUT_MS <= c.EDGE_LEASE_MS, {
    path: ['EDGE_PURGE_IDLE_TIMEOUT_MS'],
    message: 'must be at most EDGE_LEASE_MS',
  });
export type EdgeConfig = z.infer<typeof edgeConfigSchema>;

/**
 * Parses `env` with `schema`; on failure throws one Error whose message names
 * each bad variable and what is wrong, e.g. `EDGE_PORT: expected number`.
 */
export function parseConfig<S extends z.ZodType>(schema: S, env: Env): z.infer<S> {
  const result = schema.safeParse(stripEmpty(env));
  if (result.success) return result.data;
  const lines = result.error.issues.map((i) => `${i.path.join('.') || '(config)'}: ${i.message}`);
  throw new Error(`invalid configuration: ${lines.join('; ')}`);
}

// An empty variable means "unset", as in most shells' `VAR= cmd`.
function stripEmpty(env: Env): Env {
  return Object.fromEntries(Object.entries(env).filter(([, v]) => v !== undefined && v !== ''));
}
