import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningOrigin } from '../../origin/server.ts';
import { errorEnvelopeSchema } from '../../shared/errors.ts';
import { type PurgePollResponse, purgePollResponseSchema } from '../../shared/schemas.ts';
import { purge } from '../conformance/purge-bus.ts';
import { hs256Issuer, type TokenIssuer } from '../support/jwt.ts';
import { originFor } from '../support/stack.ts';

/**
 * `GET /api/v1/purges` on a real origin (memory store, in-process bus):
 * pages of the log in order, the head for a reader without a position, a
 * reset for a position of another incarnation, CACHE_004 for a malformed
 * position or limit, and the `purge:read` scope in every namespace.
 */
describe('purge log poll route', () => {
  let origin: RunningOrigin;
  let other: RunningOrigin;
  let issuer: TokenIssuer;
  let token: string;

  beforeAll(async () => {
    issuer = hs256Issuer();
    origin = await originFor(issuer.env);
    other = await originFor();
    token = await issuer.sign({ serviceId: 'edge', scope: ['purge:read'], ns: ['*'] });
  });
  afterAll(async () => {
    await origin?.close();
    await other?.close();
    await issuer?.close();
  });

  const poll = (query: string, bearer: string | null = token) =>
    fetch(`${origin.url}/api/v1/purges${query}`, { headers: bearer ? { Authorization: `Bearer ${bearer}` } : {} });
  const page = async (query: string): Promise<PurgePollResponse> => {
    const res = await poll(query);
    expect(res.status).toBe(200);
    return purgePollResponseSchema.parse(await res.json());
  };

  it('without a position it reads nothing and tells the head; then pages follow in order up to the limit', async () => {
    const start = await page('');
    expect(start.entries).toEqual([]);
    expect(start.reset).toBeNull();
    expect(start.tail_live).toBe(true);
    const published = [];
    for (const key of ['p1', 'p2', 'p3']) published.push(await origin.bus.publish(purge(key)));
    const first = await page(`?after=${encodeURIComponent(start.head)}&limit=2`);
    expect(first.entries.map((e) => e.keys[0])).toEqual(['p1', 'p2']);
    const second = await page(`?after=${encodeURIComponent(first.entries.at(-1)!.position)}&limit=2`);
    expect(second.entries.map((e) => e.keys[0])).toEqual(['p3']);
    expect(second.entries[0]!.position).toBe(published[2]!.message.position);
    expect(second.head).toBe(published[2]!.message.position);
  });

  it('a position from another incarnation of the log gets a reset and no entries', async () => {
    const foreign = (await other.bus.publish(purge('elsewhere'))).message.position;
    const answer = await page(`?after=${encodeURIComponent(foreign)}`);
    expect(answer.entries).toEqual([]);
    expect(answer.reset).not.toBeNull();
    expect(answer.reset!.position).toBe(origin.bus.health().position);
  });

  it.each([
    ['a position with spaces', '?after=not%20a%20position'],
    ['an empty position', '?after='],
    ['a limit of 0', '?limit=0'],
    ['a limit over 1000', '?limit=1001'],
    ['a limit that is not a number', '?limit=many'],
  ])('%s answers 400 CACHE_004 in the error envelope', async (_name, query) => {
    const res = await poll(query);
    expect(res.status).toBe(400);
    expect(errorEnvelopeSchema.parse(await res.json()).error.code).toBe('CACHE_004');
  });

  it('needs purge:read in every namespace: 401 without a token, 403 without the scope or with one namespace', async () => {
    expect((await poll('', null)).status).toBe(401);
    const noScope = await issuer.sign({ scope: ['cache:read'], ns: ['*'] });
    expect((await poll('', noScope)).status).toBe(403);
    const oneNamespace = await issuer.sign({ scope: ['purge:read'], ns: ['tenant-a'] });
    expect((await poll('', oneNamespace)).status).toBe(403);
  });
});
