import { createHash } from 'node:crypto';
import type { IHeaders } from 'kafkajs';
import { bearerToken, type Principal, unauthenticated, type Verifier } from '../../shared/auth.ts';
import { CacheError, invalidInput } from '../../shared/errors.ts';
import {
  type HubAlias,
  type HubRequest,
  type HubResponse,
  type HubResponseData,
  hubEventVersion,
  hubHeaders,
  hubRequestSchema,
  hubTopics,
  requestTimeMs,
} from '../../shared/hub.ts';
import type { HubDedup } from './dedup.ts';
import { authorizeHub, changes, type HubTarget, type OperationResult, runHubRequest } from './operations.ts';

/** What the hub does with one consumed message. */
export type HubOutcome =
  /** Not a request anyone can be answered for (no JSON, no correlation id): to the dead-letter topic. */
  | { readonly kind: 'dead-letter'; readonly reason: string }
  /** One response event on `topic`; `replayed` when it is the recorded answer of a redelivered request. */
  | {
      readonly kind: 'answer';
      readonly topic: string;
      readonly key: string;
      readonly response: HubResponse;
      readonly replayed: boolean;
    };

/** A consumed message, as the handler needs it. */
export interface HubMessage {
  /** The request topic it was consumed from. */
  readonly topic: string;
  readonly key: Buffer | null;
  readonly value: Buffer | null;
  readonly headers?: IHeaders | undefined;
}

/** What a request topic carries and where its answers go by default. */
export interface HubRoute {
  /** The request event the topic carries. */
  readonly request: HubRequest['event'];
  /** The response event answering it. */
  readonly response: HubResponse['event'];
  /** The topic answers go to unless a request names an allowed `reply-to`. */
  readonly responseTopic: string;
  /** On a per-service alias topic (`HUB_ALIASES`): its event name, operation and namespace. */
  readonly alias?: { readonly event: string; readonly operation: string; readonly namespace: string } | undefined;
}

/**
 * The routes of the unprefixed topics of `shared/hub.ts`, or of `prefix` +
 * those names, and of the per-service `aliases` of the operation request
 * (topics as given; their event name is the topic without `prefix`).
 */
export function hubRoutes(prefix = '', aliases: readonly HubAlias[] = []): ReadonlyMap<string, HubRoute> {
  const aliasRoutes = aliases.map(({ topic, operation, namespace }): [string, HubRoute] => [
    topic,
    {
      request: hubTopics.operationRequest,
      response: hubTopics.operationResponse,
      responseTopic: `${prefix}${hubTopics.operationResponse}`,
      alias: { event: topic.startsWith(prefix) ? topic.slice(prefix.length) : topic, operation, namespace },
    },
  ]);
  return new Map<string, HubRoute>([
    ...aliasRoutes,
    [
      `${prefix}${hubTopics.operationRequest}`,
      {
        request: hubTopics.operationRequest,
        response: hubTopics.operationResponse,
        responseTopic: `${prefix}${hubTopics.operationResponse}`,
      },
    ],
    [
      `${prefix}${hubTopics.managementRequest}`,
      {
        request: hubTopics.managementRequest,
        response: hubTopics.managementResponse,
        responseTopic: `${prefix}${hubTopics.managementResponse}`,
      },
    ],
  ]);
}

export interface HubHandlerOptions extends HubTarget {
  /** Request topic → its route (see {@link hubRoutes}). */
  readonly routes: ReadonlyMap<string, HubRoute>;
  /** The origin's verifier; null when authentication is off (every request is then allowed, as on REST). */
  readonly verifier: Verifier | null;
  readonly dedup: HubDedup;
  /** `service` of responses: this origin's id. */
  readonly originId: string;
  /** Topics a request's `reply-to` header may name (`HUB_REPLY_TOPICS`). */
  readonly replyTopics: ReadonlySet<string>;
  /** Milliseconds a dedup record outlives its request's TTL: the longest redelivery delay (`HUB_REDELIVERY_MAX_MS`). */
  readonly redeliveryMs: number;
  /** Milliseconds a request's `timestamp` may lie ahead of this clock (`AUTH_CLOCK_SKEW_SECONDS`). */
  readonly clockSkewMs: number;
  readonly now?: () => number;
  /** Told of a request that failed for a reason that is not the caller's (logged by the caller). */
  readonly onUnexpectedError?: (error: unknown) => void;
}

const header = (headers: IHeaders | undefined, name: string): string | undefined => {
  const value = headers?.[name];
  const first = Array.isArray(value) ? value[0] : value;
  return first === undefined ? undefined : first.toString();
};

/**
 * The hub's request handling, Kafka aside (`consumer.ts` does the
 * transactions): decode, replay a recorded answer, check the request's TTL
 * and JWT, authorise as REST does, run, record.
 *
 * Order of checks, each answered by one `error` response with the ICD code:
 * 1. not JSON, or no `data.correlation_id` → dead-letter (nobody to answer);
 * 2. a `reply-to` not on `HUB_REPLY_TOPICS` → CACHE_004 on the default response topic;
 * 3. schema, event type or version wrong → CACHE_004;
 * 4. a change whose `correlation_id` is recorded → the recorded response when
 *    the request is the same (content and token), else CACHE_004;
 * 5. `timestamp` + `request_ttl_ms` passed → CACHE_005, nothing run;
 * 6. token missing or bad → AUTH_001; a token that expired after the
 *    request's `timestamp` is accepted while the request's TTL lasts, and
 *    no longer; grant missing → AUTH_002;
 * 7. the operation's own errors, as REST answers them.
 *
 * Set, delete and each key of set_many write an idempotency record by
 * `correlation_id` in the same store step as the change (`OnceRecord` in
 * `store/store.ts`), so a redelivery that finds no recorded response still
 * writes nothing twice and rebuilds the same versions. A change that
 * succeeded is then recorded whole (see {@link HubDedup}) before its
 * response is handed back; both for `request_ttl_ms` + `redeliveryMs`.
 * On a per-service alias topic (`HUB_ALIASES`) a request is first made the
 * operation request it stands for (CACHE_004 when it names another
 * operation, namespace or event).
 */
export function hubHandler(options: HubHandlerOptions): (message: HubMessage) => Promise<HubOutcome> {
  const now = options.now ?? Date.now;
  return async (message) => {
    const route = options.routes.get(message.topic) ?? hubRoutes().get(hubTopics.operationRequest)!;
    const defaultTopic = route.responseTopic;
    let raw: unknown;
    try {
      raw = JSON.parse(message.value?.toString('utf8') ?? '');
    } catch {
      return { kind: 'dead-letter', reason: 'value is not JSON' };
    }
    const correlationId = (raw as { data?: { correlation_id?: unknown } } | null)?.data?.correlation_id;
    if (typeof correlationId !== 'string' || correlationId.length === 0 || correlationId.length > 128) {
      return { kind: 'dead-letter', reason: 'data.correlation_id is missing or not a string of 1-128 characters' };
    }
    const key = message.key?.toString('utf8') ?? correlationId;
    const aliasError = route.alias ? fromAlias(raw as { event?: unknown; data: Record<string, unknown> }, route) : null;
    const rawData = (raw as { data: Record<string, unknown> }).data;
    const base = {
      operation: typeof rawData.operation === 'string' ? rawData.operation : 'unknown',
      correlation_id: correlationId,
      ...(typeof rawData.namespace === 'string' ? { namespace: rawData.namespace } : {}),
      ...(typeof rawData.key === 'string' ? { key: rawData.key } : {}),
    };
    const respond = (topic: string, data: HubResponseData, replayed = false): HubOutcome => ({
      kind: 'answer',
      topic,
      key,
      replayed,
      // The event names the response type whichever allowed topic it goes to.
      response: { event: route.response, version: hubEventVersion, data },
    });
    const answer = (topic: string, fields: Partial<HubResponseData>): HubOutcome =>
      respond(topic, {
        ...base,
        status: 'success',
        timestamp: new Date(now()).toISOString(),
        service: options.originId,
        ...fields,
      });
    const fail = (topic: string, error: CacheError): HubOutcome =>
      answer(topic, {
        status: 'error',
        error: { code: error.code, message: error.message, details: error.details },
      });

    const replyTo = header(message.headers, hubHeaders.replyTo);
    if (replyTo !== undefined && !options.replyTopics.has(replyTo)) {
      return fail(defaultTopic, new CacheError('CACHE_004', `reply-to topic ${replyTo} is not allowed`));
    }
    const topic = replyTo ?? defaultTopic;
    if (aliasError) return fail(topic, new CacheError('CACHE_004', aliasError));
    const parsed = hubRequestSchema.safeParse(raw);
    if (!parsed.success) return fail(topic, invalidInput(parsed.error, { operation: base.operation }));
    const request = parsed.data;
    if (request.event !== route.request) {
      return fail(topic, new CacheError('CACHE_004', `event ${request.event} does not belong on ${message.topic}`));
    }
    const token = bearerToken(header(message.headers, hubHeaders.authorization));
    const fingerprint = fingerprintOf(request, token);
    const mutating = changes(request);
    if (mutating) {
      const recorded = await options.dedup.get(correlationId);
      if (recorded) {
        if (recorded.fingerprint !== fingerprint) {
          return fail(topic, new CacheError('CACHE_004', 'correlation_id was already used by a different request'));
        }
        return respond(topic, recorded.response, true);
      }
    }
    const sentAtMs = requestTimeMs(request.data.timestamp);
    if (sentAtMs > now() + options.clockSkewMs) {
      return fail(topic, new CacheError('CACHE_004', 'timestamp is in the future'));
    }
    const deadlineMs = sentAtMs + request.data.request_ttl_ms;
    if (now() > deadlineMs) {
      return fail(
        topic,
        new CacheError('CACHE_005', 'Request expired before it was processed', {
          status: 504,
          details: { deadline: new Date(deadlineMs).toISOString() },
        }),
      );
    }
    let result: OperationResult;
    try {
      const principal = await authenticate(options.verifier, token, sentAtMs);
      authorizeHub(principal, request);
      const keepMs = request.data.request_ttl_ms + options.redeliveryMs;
      result = await runHubRequest(options, request, principal, { fingerprint, ttlMs: keepMs });
    } catch (error) {
      if (error instanceof CacheError) return fail(topic, error);
      options.onUnexpectedError?.(error);
      return fail(topic, new CacheError('CACHE_005', 'Unexpected error'));
    }
    const outcome = answer(topic, { ...result, status: 'success' });
    if (mutating && outcome.kind === 'answer') {
      await options.dedup.put(
        correlationId,
        { fingerprint, response: outcome.response.data },
        request.data.request_ttl_ms + options.redeliveryMs,
      );
    }
    return outcome;
  };
}

/**
 * Turns a request on a per-service alias topic into the operation request it
 * stands for, in place: `event` becomes `cache.operation.request`, and
 * `operation` and `namespace` default to the alias's.
 * @returns why the request does not fit the alias (answered CACHE_004), or null.
 */
function fromAlias(raw: { event?: unknown; data: Record<string, unknown> }, route: HubRoute): string | null {
  const alias = route.alias!;
  const { data } = raw;
  data.operation ??= alias.operation;
  data.namespace ??= alias.namespace;
  if (raw.event !== undefined && raw.event !== alias.event && raw.event !== route.request) {
    return `event ${String(raw.event)} does not belong on the ${alias.event} topic`;
  }
  raw.event = route.request;
  if (data.operation !== alias.operation || data.namespace !== alias.namespace) {
    return `${alias.event} carries ${alias.operation} on namespace ${alias.namespace} only`;
  }
  return null;
}

/**
 * The caller: the token verified now, or — when it has expired since — as of
 * the request's `timestamp` (the request's TTL, checked before, is the only
 * grace). Without a verifier authentication is off.
 * @throws CacheError AUTH_001 for a missing or bad token, CACHE_005 when the key set cannot be fetched.
 */
async function authenticate(
  verifier: Verifier | null,
  token: string | undefined,
  sentAtMs: number,
): Promise<Principal | undefined> {
  if (!verifier) return undefined;
  if (!token) throw unauthenticated();
  try {
    return await verifier(token);
  } catch (error) {
    if (!(error instanceof CacheError) || error.code !== 'AUTH_001') throw error;
    return await verifier(token, sentAtMs);
  }
}

/** What makes two deliveries the same request: content and credential, not `timestamp` or `request_ttl_ms`. */
function fingerprintOf(request: HubRequest, token: string | undefined): string {
  const { timestamp: _t, request_ttl_ms: _ttl, ...content } = request.data;
  return createHash('sha256')
    .update(`${request.event}\n${token ?? ''}\n${JSON.stringify(content)}`)
    .digest('base64url');
}
