/**
 * Typed client of Strata's Message Hub (docs/message-hub.md): cache
 * operations and management requests as Kafka events, answered by correlated
 * response events. Node only (kafkajs).
 *
 * - Each call produces one request event keyed `namespace:key` with the
 *   caller's JWT in the `authorization` header, and waits for the response
 *   event with its `correlation_id` on the response topic, read with
 *   `read_committed` (only answers the origin committed).
 * - Per attempt the request carries `request_ttl_ms` = `timeoutMs`, so the
 *   origin never runs a request its caller stopped waiting for.
 * - Retries (interface control document §9.2: 3, exponential back-off):
 *   after a timeout or a CACHE_005 answer, with the same `correlation_id`,
 *   so a change the origin applied already is answered with its recorded
 *   response and never applied twice.
 *
 * Errors are {@link HubClientError}s: `code` is the ICD code of an error
 * response (`CACHE_001` a get's miss is `null` instead, `CACHE_004`,
 * `AUTH_001`, `AUTH_002`, `CACHE_005`) or `TIMEOUT` when no answer came.
 */
import { randomUUID } from 'node:crypto';
import { type Consumer, Kafka, type KafkaConfig, logLevel, type Producer } from 'kafkajs';
import type { ErrorCode } from '../shared/errors.ts';
import {
  type HubRequest,
  type HubResponseData,
  hubEventVersion,
  hubHeaders,
  hubMessageKey,
  hubResponseSchema,
  hubTopics,
} from '../shared/hub.ts';
import type { FlushResponse, ReloadResponse } from '../shared/schemas.ts';

export interface HubClientOptions {
  /** Bootstrap brokers, `host:port`. */
  readonly brokers: readonly string[];
  /** The calling service (`service` of every request). */
  readonly service: string;
  /** The caller's JWT, or a function returning the current one (called before every attempt); absent when auth is off. */
  readonly token?: string | (() => string | Promise<string>) | undefined;
  /** Prefix of the topic names, as the origin's `HUB_TOPIC_PREFIX`; default none. */
  readonly topicPrefix?: string;
  /** Milliseconds one attempt waits for its answer; also the request's TTL. Default 5 000. */
  readonly timeoutMs?: number;
  /** Attempts after the first, on a timeout or CACHE_005. Default 3. */
  readonly retries?: number;
  /** First back-off, milliseconds; doubled per retry, with full jitter. Default 100. */
  readonly backoffMs?: number;
  /** TLS and SASL for the brokers, as kafkajs takes them. */
  readonly kafka?: Pick<KafkaConfig, 'ssl' | 'sasl'>;
}

/** A refused or failed hub call. */
export class HubClientError extends Error {
  /** ICD code of the error response, or `TIMEOUT` when no answer came within every attempt. */
  readonly code: ErrorCode | 'TIMEOUT';
  readonly correlationId: string;
  readonly details: Record<string, unknown>;
  constructor(
    code: ErrorCode | 'TIMEOUT',
    message: string,
    correlationId: string,
    details: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'HubClientError';
    this.code = code;
    this.correlationId = correlationId;
    this.details = details;
  }
}

/** A value read through the hub. */
export interface HubEntry {
  readonly value: Uint8Array;
  readonly contentType: string;
  readonly version: number;
  /** Epoch ms. */
  readonly expiresAtMs: number;
}

/** Options of a write: TTL in seconds (the namespace's default when absent) and the Content-Type stored. */
export interface HubWriteOptions {
  readonly ttl?: number;
  readonly contentType?: string;
}

export interface HubClient {
  /** The entry, or null on a miss. */
  get(namespace: string, key: string): Promise<HubEntry | null>;
  set(
    namespace: string,
    key: string,
    value: string | Uint8Array,
    options?: HubWriteOptions,
  ): Promise<{ version: number; expiresAtMs: number }>;
  delete(namespace: string, key: string): Promise<{ deleted: boolean; version: number }>;
  /** The values found; missing keys are absent from the map. */
  getMany(namespace: string, keys: readonly string[]): Promise<Map<string, Uint8Array>>;
  setMany(
    namespace: string,
    entries: Readonly<Record<string, string | Uint8Array>>,
    options?: HubWriteOptions,
  ): Promise<{ storedCount: number; versions: Record<string, number> }>;
  flush(namespace: string): Promise<FlushResponse>;
  /** One namespace's stats, or every namespace's when `namespace` is absent (the REST bodies). */
  stats(namespace?: string): Promise<unknown>;
  reload(): Promise<ReloadResponse>;
  /** Sends one request (`data` without the envelope fields the client fills) and returns the response's data, error or not. */
  request(event: HubRequest['event'], data: Record<string, unknown>): Promise<HubResponseData>;
  close(): Promise<void>;
}

const bytes = (value: string | Uint8Array) => (typeof value === 'string' ? new TextEncoder().encode(value) : value);
const base64 = (value: string | Uint8Array) => Buffer.from(bytes(value)).toString('base64');
const unbase64 = (text: string) => new Uint8Array(Buffer.from(text, 'base64'));

/**
 * Connects a producer and a response reader (its own consumer group,
 * positioned at the end of the response topics before the first request).
 */
export async function createHubClient(options: HubClientOptions): Promise<HubClient> {
  const prefix = options.topicPrefix ?? '';
  const timeoutMs = options.timeoutMs ?? 5_000;
  const retries = options.retries ?? 3;
  const backoffMs = options.backoffMs ?? 100;
  const kafka = new Kafka({
    clientId: `strata-hub-client-${options.service}`,
    brokers: [...options.brokers],
    logLevel: logLevel.NOTHING,
    ...options.kafka,
  });
  const responseTopics = [hubTopics.operationResponse, hubTopics.managementResponse].map((t) => `${prefix}${t}`);
  const producer: Producer = kafka.producer({ idempotent: true, allowAutoTopicCreation: false });
  const consumer: Consumer = kafka.consumer({ groupId: `strata-hub-client-${randomUUID()}`, maxWaitTimeInMs: 50 });
  const waiting = new Map<string, (data: HubResponseData) => void>();
  const admin = kafka.admin();
  await admin.connect();
  const ends = await Promise.all(
    responseTopics.map(async (topic) => ({ topic, offsets: await admin.fetchTopicOffsets(topic) })),
  );
  await admin.disconnect();
  await Promise.all([producer.connect(), consumer.connect()]);
  for (const topic of responseTopics) await consumer.subscribe({ topic });
  const joined = new Promise<void>((resolve) => consumer.on(consumer.events.GROUP_JOIN, () => resolve()));
  await consumer.run({
    eachMessage: async ({ message }) => {
      const id = message.headers?.[hubHeaders.correlationId]?.toString();
      if (!id || !waiting.has(id)) return;
      try {
        const parsed = hubResponseSchema.parse(JSON.parse(message.value?.toString('utf8') ?? ''));
        waiting.get(id)?.(parsed.data);
      } catch {
        // Not a response of ours: ignored; the call times out and retries.
      }
    },
  });
  // Answers produced after this client connected, and none before: its own group starts where the topics ended then.
  for (const { topic, offsets } of ends) {
    for (const { partition, high } of offsets) consumer.seek({ topic, partition, offset: high });
  }
  await joined;

  const tokenNow = async () => (typeof options.token === 'function' ? await options.token() : options.token);

  const attempt = async (request: HubRequest, topic: string): Promise<HubResponseData | null> => {
    const id = request.data.correlation_id;
    const answered = new Promise<HubResponseData | null>((resolve) => {
      const timer = setTimeout(() => {
        waiting.delete(id);
        resolve(null);
      }, timeoutMs);
      waiting.set(id, (data) => {
        clearTimeout(timer);
        waiting.delete(id);
        resolve(data);
      });
    });
    const token = await tokenNow();
    await producer.send({
      topic,
      messages: [
        {
          key: hubMessageKey(request),
          value: JSON.stringify(request),
          headers: token ? { [hubHeaders.authorization]: `Bearer ${token}` } : {},
        },
      ],
    });
    return await answered;
  };

  const request = async (event: HubRequest['event'], data: Record<string, unknown>): Promise<HubResponseData> => {
    const correlationId = randomUUID();
    const topic = `${prefix}${event}`;
    let last: HubResponseData | null = null;
    for (let n = 0; n <= retries; n++) {
      if (n > 0) await new Promise((r) => setTimeout(r, Math.random() * backoffMs * 2 ** (n - 1)));
      const full = {
        event,
        version: hubEventVersion,
        data: {
          ...data,
          service: options.service,
          correlation_id: correlationId,
          timestamp: new Date().toISOString(),
          request_ttl_ms: timeoutMs,
        },
      } as HubRequest;
      last = await attempt(full, topic);
      if (last && !(last.status === 'error' && last.error?.code === 'CACHE_005')) return last;
    }
    if (last) return last;
    throw new HubClientError('TIMEOUT', `no answer within ${retries + 1} attempts of ${timeoutMs} ms`, correlationId);
  };

  const ok = async (event: HubRequest['event'], data: Record<string, unknown>): Promise<HubResponseData> => {
    const answer = await request(event, data);
    if (answer.status === 'success') return answer;
    const error = answer.error ?? { code: 'CACHE_005' as const, message: 'error response without an error' };
    throw new HubClientError(error.code, error.message, answer.correlation_id, error.details ?? {});
  };
  const op = hubTopics.operationRequest;
  const mgmt = hubTopics.managementRequest;

  return {
    async get(namespace, key) {
      try {
        const a = await ok(op, { operation: 'get', namespace, key, encoding: 'base64' });
        return {
          value: unbase64(a.value ?? ''),
          contentType: a.content_type ?? '',
          version: a.version ?? 0,
          expiresAtMs: a.expires_at_ms ?? 0,
        };
      } catch (error) {
        if (error instanceof HubClientError && error.code === 'CACHE_001') return null;
        throw error;
      }
    },
    async set(namespace, key, value, write = {}) {
      const a = await ok(op, {
        operation: 'set',
        namespace,
        key,
        value: base64(value),
        encoding: 'base64',
        ttl: write.ttl,
        content_type: write.contentType ?? (typeof value === 'string' ? 'text/plain; charset=utf-8' : undefined),
      });
      return { version: a.version ?? 0, expiresAtMs: a.expires_at_ms ?? 0 };
    },
    async delete(namespace, key) {
      const a = await ok(op, { operation: 'delete', namespace, key });
      return { deleted: a.deleted ?? false, version: a.version ?? 0 };
    },
    async getMany(namespace, keys) {
      const a = await ok(op, { operation: 'get_many', namespace, keys: [...keys], encoding: 'base64' });
      return new Map(Object.entries(a.values ?? {}).map(([k, v]) => [k, unbase64(v)]));
    },
    async setMany(namespace, entries, write = {}) {
      const encoded = Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, base64(v)]));
      const a = await ok(op, {
        operation: 'set_many',
        namespace,
        entries: encoded,
        encoding: 'base64',
        ttl: write.ttl,
        content_type: write.contentType,
      });
      return { storedCount: a.stored_count ?? 0, versions: a.versions ?? {} };
    },
    async flush(namespace) {
      return (await ok(mgmt, { operation: 'flush', namespace })).result as FlushResponse;
    },
    async stats(namespace) {
      return (await ok(mgmt, { operation: 'stats', namespace })).result;
    },
    async reload() {
      return (await ok(mgmt, { operation: 'reload' })).result as ReloadResponse;
    },
    request,
    async close() {
      await Promise.all([producer.disconnect(), consumer.disconnect()]);
    },
  };
}
