import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authOptionsFromConfig, createVerifier, type Verifier } from '../../shared/auth.ts';
import { jwksIssuer, type TokenIssuer } from '../support/jwt.ts';
import { eventually } from '../support/wait.ts';

/** A JWKS key rotation as an identity provider does it, against a JWKS served over HTTP. */
describe('JWKS rotation', () => {
  let issuer: TokenIssuer;
  let verify: Verifier;
  beforeAll(async () => {
    issuer = await jwksIssuer();
    const options = authOptionsFromConfig({
      AUTH_JWKS_URL: issuer.env.AUTH_JWKS_URL,
      AUTH_ISSUER: issuer.env.AUTH_ISSUER,
      AUTH_AUDIENCE: issuer.env.AUTH_AUDIENCE,
    });
    verify = createVerifier({ ...options, jwksCooldownMs: 200 })!;
  });
  afterAll(async () => {
    await issuer?.close();
  });

  it('a token signed with a newly published key is accepted after the refetch cool-down; old tokens stay valid', async () => {
    const before = await issuer.sign({ serviceId: 'before' });
    expect((await verify(before)).serviceId).toBe('before');
    await issuer.rotate!();
    const after = await issuer.sign({ serviceId: 'after' });
    const principal = await eventually(
      'the verifier to fetch the rotated key set',
      async () => {
        try {
          return await verify(after);
        } catch {
          return null;
        }
      },
      5_000,
      50,
    );
    expect(principal.serviceId).toBe('after');
    expect((await verify(before)).serviceId).toBe('before');
  });

  it('a remembered token stops being accepted once the key set it was verified with no longer holds its key', async () => {
    const kid = issuer.nextKid!();
    const old = await issuer.sign({ serviceId: 'old-key' });
    expect((await verify(old)).serviceId).toBe('old-key');
    expect((await verify(old)).serviceId).toBe('old-key'); // answered from the verified-token cache
    await issuer.rotate!();
    issuer.retire!(kid);
    const fresh = await issuer.sign({ serviceId: 'new-key' });
    // A token under the new kid makes the verifier fetch the key set again (after the cool-down).
    await eventually(
      'the verifier to fetch the key set without the withdrawn key',
      async () => {
        try {
          return await verify(fresh);
        } catch {
          return null;
        }
      },
      5_000,
      50,
    );
    await expect(verify(old)).rejects.toMatchObject({ code: 'AUTH_001' });
  });
});
