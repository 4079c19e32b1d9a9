// Third-party verifiers against the real latchkey binary, one server per
// signing algorithm (keys.algorithm = RS256, ES256, EdDSA), each on a free
// loopback port with a fresh SQLite database and keys folder. A user signs
// up and logs in with `openid email`; the access token and id_token are then
// verified from the served JWKS by:
//   - jose (Node): every algorithm;
//   - jsonwebtoken (Node): RS256 and ES256; it has no EdDSA, which the test
//     pins down so the README's claim stays true;
//   - PyJWT (Python, with cryptography): every algorithm.
// The Rust jsonwebtoken crate is covered by tests/api/algorithms.rs.
//
// Environment: LATCHKEY_BIN (default: $CARGO_TARGET_DIR or target/, then
// debug/latchkey), PYTHON (default /usr/bin/python3, where Debian's
// python3-jwt and python3-cryptography live).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import path from 'node:path';
import * as jose from 'jose';
import jsonwebtoken from 'jsonwebtoken';
import { here, latchkeyJson, startLatchkey } from './harness.mjs';

const PYTHON = process.env.PYTHON ?? '/usr/bin/python3';

/// A server signing with `alg`, and a public client of it.
async function serverSigningWith(alg) {
  const server = await startLatchkey(`interop-${alg}`, { LATCHKEY__KEYS__ALGORITHM: alg });
  const created = await latchkeyJson(server, [
    'clients', 'create', '--name', 'interop', '--kind', 'public',
    '--grants', 'password,refresh_token', '--scopes', 'openid,email',
  ]);
  return { base: server.base, clientId: created.client_id };
}

async function tokensFrom(alg) {
  const { base, clientId } = await serverSigningWith(alg);
  const email = `interop-${alg.toLowerCase()}@example.com`;
  const password = 'correct horse battery staple';
  const signup = await fetch(`${base}/v1/users`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
  assert.equal(signup.status, 201, await signup.text());
  const res = await fetch(`${base}/oauth/token`, {
    method: 'POST',
    body: new URLSearchParams({
      grant_type: 'password', username: email, password, client_id: clientId, scope: 'openid email',
    }),
  });
  assert.equal(res.status, 200);
  const body = await res.json();
  const jwks = await (await fetch(`${base}/.well-known/jwks.json`)).json();
  return { issuer: base, clientId, jwks, access: body.access_token, id: body.id_token };
}

function jwkFor(jwks, token) {
  const { kid } = jose.decodeProtectedHeader(token);
  return jwks.keys.find((k) => k.kid === kid);
}

for (const alg of ['RS256', 'ES256', 'EdDSA']) {
  test(`${alg} tokens verify with jose, jsonwebtoken and PyJWT`, async () => {
    const t = await tokensFrom(alg);
    const pairs = [
      { token: t.access, audience: 'latchkey', typ: 'at+jwt' },
      { token: t.id, audience: t.clientId, typ: 'JWT' },
    ];
    const jwk = jwkFor(t.jwks, t.access);
    assert.equal(jwk.alg, alg);
    assert.equal(jose.decodeProtectedHeader(t.access).alg, alg);

    // jose: the JWKS as a verifier would hold it, algorithm pinned.
    const set = jose.createLocalJWKSet(t.jwks);
    for (const p of pairs) {
      const { payload, protectedHeader } = await jose.jwtVerify(p.token, set, {
        issuer: t.issuer, audience: p.audience, algorithms: [alg], typ: p.typ,
      });
      assert.equal(protectedHeader.alg, alg);
      assert.match(payload.sub, /^[0-9a-f-]{36}$/);
    }

    // jsonwebtoken (Node): a KeyObject from the JWK, algorithm pinned.
    const key = createPublicKey({ key: jwk, format: 'jwk' });
    for (const p of pairs) {
      const verify = () => jsonwebtoken.verify(p.token, key, {
        algorithms: [alg], issuer: t.issuer, audience: p.audience,
      });
      if (alg === 'EdDSA') {
        // jsonwebtoken 9 knows no EdDSA: it refuses the algorithm name.
        assert.throws(verify, /unknown key type "ed25519"|invalid algorithm/i);
      } else {
        assert.equal(verify().iss, t.issuer);
      }
    }

    // PyJWT: a Python service with the JWKS.
    const job = JSON.stringify({
      issuer: t.issuer,
      jwks: t.jwks,
      tokens: pairs.map((p) => ({ token: p.token, audience: p.audience })),
    });
    const py = spawn(PYTHON, [path.join(here, 'verify_pyjwt.py')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    py.stdout.on('data', (d) => { out += d; });
    py.stderr.on('data', (d) => { out += d; });
    py.stdin.end(job);
    const code = await new Promise((r) => py.once('exit', r));
    assert.equal(code, 0, `PyJWT refused a ${alg} token:\n${out}`);
    assert.equal(out.trim().split('\n').length, 2, out);
  });
}
