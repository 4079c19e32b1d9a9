// A real client library authenticating with `private_key_jwt` (RFC 7523):
// openid-client 6 with `client.PrivateKeyJwt(privateKey)` against the
// latchkey binary on a free loopback port. The client's public key is
// registered with `clients create --auth-method private_key_jwt --jwk FILE`;
// the library then signs a fresh assertion for each request: a
// client_credentials grant, and an introspection of the token it got. A
// client holding another key is refused.
//
// Environment: LATCHKEY_BIN (default: $CARGO_TARGET_DIR or target/, then
// debug/latchkey).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as jose from 'jose';
import * as oidc from 'openid-client';
import { latchkeyJson, startLatchkey } from './harness.mjs';

/// Registers a private_key_jwt client for `publicJwk`; its id.
async function registerKeyClient(server, publicJwk) {
  const file = path.join(server.tmp, 'client-public.jwk.json');
  await writeFile(file, JSON.stringify(publicJwk));
  const created = await latchkeyJson(server, [
    'clients', 'create', '--name', 'orders-service', '--kind', 'confidential',
    '--grants', 'client_credentials', '--scopes', 'orders:read', '--introspect',
    '--auth-method', 'private_key_jwt', '--jwk', file,
  ]);
  assert.equal(created.auth_method, 'private_key_jwt');
  assert.equal(created.client_secret, null);
  return created.client_id;
}

test('openid-client authenticates with private_key_jwt for a grant and an introspection', async () => {
  const server = await startLatchkey('pkjwt');
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256');
  const publicJwk = { ...(await jose.exportJWK(publicKey)), kid: 'orders-2026', alg: 'ES256', use: 'sig' };
  const clientId = await registerKeyClient(server, publicJwk);

  const config = await oidc.discovery(
    new URL(server.base), clientId, undefined,
    oidc.PrivateKeyJwt({ key: privateKey, kid: 'orders-2026' }),
    { execute: [oidc.allowInsecureRequests] },
  );
  const meta = config.serverMetadata();
  assert.ok(meta.token_endpoint_auth_methods_supported.includes('private_key_jwt'));
  assert.ok(meta.token_endpoint_auth_signing_alg_values_supported.includes('ES256'));
  assert.ok(!meta.token_endpoint_auth_methods_supported.includes('client_secret_jwt'));

  const tokens = await oidc.clientCredentialsGrant(config, { scope: 'orders:read' });
  assert.equal(tokens.token_type, 'bearer');
  assert.equal(tokens.scope, 'orders:read');

  // Each call signs a new assertion (a new jti), so a second grant works too.
  const again = await oidc.clientCredentialsGrant(config, { scope: 'orders:read' });
  assert.notEqual(again.access_token, tokens.access_token);

  const introspection = await oidc.tokenIntrospection(config, tokens.access_token);
  assert.equal(introspection.active, true);
  assert.equal(introspection.client_id, clientId);
  assert.equal(introspection.sub, clientId);

  // The same client id with a key latchkey does not know: invalid_client.
  const stranger = await jose.generateKeyPair('ES256');
  const forged = await oidc.discovery(
    new URL(server.base), clientId, undefined,
    oidc.PrivateKeyJwt({ key: stranger.privateKey, kid: 'orders-2026' }),
    { execute: [oidc.allowInsecureRequests] },
  );
  // latchkey answers 401 invalid_client with a WWW-Authenticate challenge,
  // which openid-client surfaces as the challenge error.
  await assert.rejects(
    oidc.clientCredentialsGrant(forged, { scope: 'orders:read' }),
    (err) => err.status === 401 && err.response?.status === 401,
  );
});
