// A real DPoP client (openid-client 6, RFC 9449 built in: `getDPoPHandle`)
// against the latchkey binary on a free loopback port: a password grant
// (openid-client has no helper for it, so `genericGrantRequest` with the
// DPoP handle), a refresh, `/userinfo` and the account API, every request
// with a fresh proof from the client's own key. Then the same tokens without
// the key: the refresh token and the access token are refused.
//
// Run twice: with server nonces off (the default) and on
// (`dpop.require_nonce`), where openid-client must pick up the server's
// `DPoP-Nonce` and retry.
//
// Environment: LATCHKEY_BIN (default: $CARGO_TARGET_DIR or target/, then
// debug/latchkey).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import { latchkeyJson, startLatchkey } from './harness.mjs';

const PASSWORD = 'correct horse battery staple';

/// A server (with nonces required or not), a public client that must use
/// DPoP, and a signed-up user of it.
async function dpopServer(requireNonce) {
  const server = await startLatchkey('dpop', {
    LATCHKEY__DPOP__REQUIRE_NONCE: String(requireNonce),
  });
  const { base } = server;
  const created = await latchkeyJson(server, [
    'clients', 'create', '--name', 'phone', '--kind', 'public', '--require-dpop',
    '--grants', 'password,refresh_token', '--scopes', 'openid,email',
  ]);
  const email = `dpop-${requireNonce}@example.com`;
  const signup = await fetch(`${base}/v1/users`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  assert.equal(signup.status, 201, await signup.text());
  return { base, clientId: created.client_id, email };
}

for (const requireNonce of [false, true]) {
  test(`openid-client binds tokens with DPoP (server nonces ${requireNonce ? 'on' : 'off'})`, async () => {
    const { base, clientId, email } = await dpopServer(requireNonce);
    const config = await oidc.discovery(new URL(base), clientId, undefined, oidc.None(), {
      execute: [oidc.allowInsecureRequests],
    });
    assert.deepEqual(
      [...config.serverMetadata().dpop_signing_alg_values_supported].sort(),
      ['ES256', 'EdDSA', 'PS256', 'RS256'],
    );
    const key = await oidc.randomDPoPKeyPair('ES256');
    const dpop = oidc.getDPoPHandle(config, key);

    // Password grant: openid-client has no helper, the generic one carries DPoP.
    const tokens = await oidc.genericGrantRequest(
      config, 'password', { username: email, password: PASSWORD, scope: 'openid email' }, { DPoP: dpop },
    );
    assert.equal(tokens.token_type, 'dpop');
    const sub = tokens.claims().sub;

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token, undefined, { DPoP: dpop });
    assert.equal(refreshed.token_type, 'dpop');
    assert.notEqual(refreshed.refresh_token, tokens.refresh_token);

    const info = await oidc.fetchUserInfo(config, refreshed.access_token, sub, { DPoP: dpop });
    assert.equal(info.email, email);
    const sessions = await oidc.fetchProtectedResource(
      config, refreshed.access_token, new URL(`${base}/v1/account/sessions`), 'GET', undefined, undefined,
      { DPoP: dpop },
    );
    assert.equal(sessions.status, 200);
    assert.equal((await sessions.json()).sessions.length, 1);

    // Without the key, the tokens are worth nothing.
    const bearer = await fetch(`${base}/userinfo`, {
      headers: { Authorization: `Bearer ${refreshed.access_token}` },
    });
    assert.equal(bearer.status, 401);
    assert.match(bearer.headers.get('www-authenticate'), /^DPoP /);
    const stolen = await fetch(`${base}/oauth/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'refresh_token', refresh_token: refreshed.refresh_token, client_id: clientId,
      }),
    });
    assert.equal(stolen.status, 400);
    // Another key is refused as well, and changes nothing for the owner.
    const thief = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
    await assert.rejects(
      oidc.refreshTokenGrant(config, refreshed.refresh_token, undefined, { DPoP: thief }),
      (err) => err.error === 'invalid_grant' || err.cause?.error === 'invalid_grant',
    );
    const again = await oidc.refreshTokenGrant(config, refreshed.refresh_token, undefined, { DPoP: dpop });
    assert.equal(again.token_type, 'dpop');
  });
}
