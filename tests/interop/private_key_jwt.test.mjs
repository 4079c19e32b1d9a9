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

import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as jose from 'jose';
import * as oidc from 'openid-client';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
  : path.join(repo, 'target');
const BINARY = process.env.LATCHKEY_BIN ?? path.join(targetDir, 'debug', 'latchkey');
const run = promisify(execFile);

const servers = [];
after(async () => {
  for (const s of servers) {
    if (s.child.exitCode === null) {
      s.child.kill('SIGTERM');
      await new Promise((r) => s.child.once('exit', r));
    }
    await rm(s.tmp, { recursive: true, force: true });
  }
});

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startLatchkey() {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'latchkey-pkjwt-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = {
    PATH: process.env.PATH,
    DATABASE_URL: `sqlite://${path.join(tmp, 'latchkey.db')}`,
    LATCHKEY__SERVER__HOST: '127.0.0.1',
    LATCHKEY__SERVER__PORT: String(port),
    LATCHKEY__SERVER__ISSUER: base,
    LATCHKEY__SERVER__WORKERS: '1',
    LATCHKEY__KEYS__DIR: path.join(tmp, 'keys'),
    LATCHKEY__DEMO__ENABLED: 'false',
    LATCHKEY__LOG__LEVEL: 'warn',
  };
  let log = '';
  const child = spawn(BINARY, ['serve'], { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => { log += d; });
  child.stderr.on('data', (d) => { log += d; });
  servers.push({ child, tmp });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/readyz`)).status === 200) break;
    } catch {
      // not listening yet
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      throw new Error(`latchkey did not become ready:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { base, tmp, env };
}

/// Registers a private_key_jwt client for `publicJwk`; its id.
async function registerKeyClient({ tmp, env }, publicJwk) {
  const file = path.join(tmp, 'client-public.jwk.json');
  await writeFile(file, JSON.stringify(publicJwk));
  const { stdout } = await run(BINARY, [
    'clients', 'create', '--name', 'orders-service', '--kind', 'confidential',
    '--grants', 'client_credentials', '--scopes', 'orders:read', '--introspect',
    '--auth-method', 'private_key_jwt', '--jwk', file, '--json',
  ], { cwd: tmp, env });
  const created = JSON.parse(stdout);
  assert.equal(created.auth_method, 'private_key_jwt');
  assert.equal(created.client_secret, null);
  return created.client_id;
}

test('openid-client authenticates with private_key_jwt for a grant and an introspection', async () => {
  const server = await startLatchkey();
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
