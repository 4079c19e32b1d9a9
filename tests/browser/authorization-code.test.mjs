// The authorization code flow end to end with a real OpenID Connect client
// library (openid-client, which drives discovery, PKCE, state, nonce, the
// RFC 9207 `iss` check and id_token validation) and a real browser (Debian's
// Chromium through playwright-core) filling latchkey's own login and consent
// pages, against the latchkey binary on a free loopback port.
//
// The app is a native-style client: public, a loopback redirect registered
// without a port (RFC 8252 §7.3), third-party (so the consent page shows).
// Then: a second authorization needs no password (the browser session), the
// tokens work at /userinfo, and RP-initiated logout returns to the app. A
// second app binds its code to its DPoP key (RFC 9449 §10, `dpop_jkt`).
//
// Environment as for cookie-mode.test.mjs: LATCHKEY_BIN, CHROMIUM, ARTIFACTS.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { freePort, waitUntilReady } from './support.mjs';
import * as oidc from 'openid-client';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
  : path.join(repo, 'target');
const BINARY = process.env.LATCHKEY_BIN ?? path.join(targetDir, 'debug', 'latchkey');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = process.env.ARTIFACTS ?? path.join(repo, 'artifacts');
const HOST = 'localhost';
const PASSWORD = 'correct horse battery staple';

let tmp;
let env;
let server;
let serverLog = '';
let app;
let appPort;
let context;
let base;
const received = [];

async function startLatchkey() {
  const port = await freePort();
  base = `http://${HOST}:${port}`;
  env = {
    PATH: process.env.PATH,
    DATABASE_URL: `sqlite://${path.join(tmp, 'latchkey.db')}`,
    LATCHKEY__SERVER__HOST: '127.0.0.1',
    LATCHKEY__SERVER__PORT: String(port),
    LATCHKEY__SERVER__ISSUER: base,
    LATCHKEY__SERVER__WORKERS: '2',
    LATCHKEY__KEYS__DIR: path.join(tmp, 'keys'),
    LATCHKEY__DEMO__ENABLED: 'false',
    LATCHKEY__LOG__LEVEL: 'warn',
  };
  server = spawn(BINARY, ['serve'], { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
  server.stdout.on('data', (d) => { serverLog += d; });
  server.stderr.on('data', (d) => { serverLog += d; });
  await waitUntilReady(`http://127.0.0.1:${port}/readyz`, 60_000, server, () => serverLog);
}

// The app's loopback listener: it records what the browser brings back.
async function startApp() {
  appPort = await freePort();
  app = createServer((req, res) => {
    const url = new URL(req.url, `http://127.0.0.1:${appPort}`);
    // Chromium asks every new origin for its icon; that is not a redirect.
    if (url.pathname !== '/favicon.ico') received.push(url);
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end('<!doctype html><title>app</title><p>back in the app</p>');
  });
  await new Promise((resolve) => app.listen(appPort, '127.0.0.1', resolve));
}

async function cli(...args) {
  const { stdout } = await promisify(execFile)(BINARY, args, { cwd: tmp, env });
  return JSON.parse(stdout);
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'latchkey-code-'));
  await startLatchkey();
  await startApp();
  await mkdir(ARTIFACTS, { recursive: true });
  context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    viewport: { width: 520, height: 620 },
  });
});

after(async () => {
  await context?.close();
  app?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function authorize(config, page, redirectUri) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const before = received.length;
  await page.goto(url.href);
  return { verifier, state, nonce, before };
}

async function backInApp(page, before) {
  await page.waitForURL((u) => u.port === String(appPort));
  assert.equal(received.length, before + 1);
  return received[received.length - 1];
}

test('openid-client completes the code flow through latchkey\'s pages in Chromium', async () => {
  const redirectUri = `http://127.0.0.1:${appPort}/callback`;
  const client = await cli('clients', 'create', '--name', 'Example Notes', '--kind', 'public',
    '--grants', 'authorization_code,refresh_token', '--scopes', 'openid,email',
    '--redirect-uri', 'http://127.0.0.1/callback',
    '--post-logout-redirect-uri', `http://127.0.0.1:${appPort}/signed-out`, '--json');
  const email = `ada-${Date.now() % 100000}@example.com`;
  const signup = await fetch(`${base}/v1/users`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  assert.equal(signup.status, 201);

  const config = await oidc.discovery(new URL(base), client.client_id, undefined, oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
  assert.equal(config.serverMetadata().authorization_endpoint, `${base}/authorize`);

  // First authorization: login page, consent page, back to the app.
  const page = await context.newPage();
  let flow = await authorize(config, page, redirectUri);
  await page.waitForSelector('form input#email');
  assert.match(await page.title(), /Sign in to Example Notes/);
  assert.equal(await page.locator('label[for="email"]').count(), 1);
  assert.equal(await page.locator('label[for="password"]').count(), 1);
  await page.screenshot({ path: path.join(ARTIFACTS, 'login-page.png') });
  await page.fill('#email', email);
  await page.fill('#password', PASSWORD);
  await page.press('#password', 'Enter');
  await page.waitForSelector('button[value="allow"]');
  assert.match(await page.textContent('h1'), /Allow Example Notes\?/);
  await page.screenshot({ path: path.join(ARTIFACTS, 'consent-page.png') });
  await page.click('button[value="allow"]');
  let callback = await backInApp(page, flow.before);
  assert.equal(callback.searchParams.get('iss'), base);

  let tokens = await oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: flow.verifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
    idTokenExpected: true,
  });
  const claims = tokens.claims();
  assert.match(claims.sub, /^[0-9a-f-]{36}$/);
  assert.equal(claims.email, email);
  assert.ok(claims.auth_time > 0);
  assert.ok(tokens.refresh_token?.startsWith('lk_rt_'));
  const info = await oidc.fetchUserInfo(config, tokens.access_token, claims.sub);
  assert.equal(info.sub, claims.sub);

  // Second authorization: the browser session and the remembered consent
  // send the browser straight back, no page in between.
  flow = await authorize(config, page, redirectUri);
  callback = await backInApp(page, flow.before);
  tokens = await oidc.authorizationCodeGrant(config, callback, {
    pkceCodeVerifier: flow.verifier,
    expectedState: flow.state,
    expectedNonce: flow.nonce,
  });
  assert.equal(tokens.claims().sub, claims.sub);

  // Refresh through the library.
  const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token);
  assert.notEqual(refreshed.refresh_token, tokens.refresh_token);

  // RP-initiated logout: confirm, then back to the app's signed-out page.
  const before = received.length;
  const logoutUrl = oidc.buildEndSessionUrl(config, {
    id_token_hint: tokens.id_token,
    post_logout_redirect_uri: `http://127.0.0.1:${appPort}/signed-out`,
    state: 'bye',
  });
  await page.goto(logoutUrl.href);
  await page.click('button[value="yes"]');
  const out = await backInApp(page, before);
  assert.equal(out.pathname, '/signed-out');
  assert.equal(out.searchParams.get('state'), 'bye');
  const cookies = await context.cookies(base);
  assert.equal(cookies.filter((c) => c.name === '__Host-lk_session').length, 0);

  // Signed out at latchkey: the next authorization asks for the password.
  await authorize(config, page, redirectUri);
  await page.waitForSelector('form input#password');
  await page.close();
});

test('a mobile app binds its code to its DPoP key (dpop_jkt) through openid-client', async () => {
  const redirectUri = `http://127.0.0.1:${appPort}/callback`;
  const client = await cli('clients', 'create', '--name', 'Example Phone', '--kind', 'public',
    '--grants', 'authorization_code,refresh_token', '--scopes', 'openid,email',
    '--redirect-uri', 'http://127.0.0.1/callback', '--json');
  const email = `grace-${Date.now() % 100000}@example.com`;
  const signup = await fetch(`${base}/v1/users`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  assert.equal(signup.status, 201);
  const config = await oidc.discovery(new URL(base), client.client_id, undefined, oidc.None(), {
    execute: [oidc.allowInsecureRequests],
  });
  const DPoP = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));

  // The thumbprint goes out with the request, through the login and consent
  // pages, and comes back bound into the code.
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    dpop_jkt: await DPoP.calculateThumbprint(),
  });
  const page = await context.newPage();
  const before = received.length;
  await page.goto(url.href);
  await page.waitForSelector('form input#email');
  await page.fill('#email', email);
  await page.fill('#password', PASSWORD);
  await page.press('#password', 'Enter');
  await page.waitForSelector('button[value="allow"]');
  await page.click('button[value="allow"]');
  const callback = await backInApp(page, before);
  await page.close();

  // Another key (whoever intercepted the redirect) is refused, and the
  // code stays good for the app's own key.
  const thief = oidc.getDPoPHandle(config, await oidc.randomDPoPKeyPair('ES256'));
  await assert.rejects(
    oidc.authorizationCodeGrant(config, callback, { pkceCodeVerifier: verifier, expectedState: state },
      undefined, { DPoP: thief }),
    (err) => err.error === 'invalid_dpop_proof',
  );
  const tokens = await oidc.authorizationCodeGrant(config, callback,
    { pkceCodeVerifier: verifier, expectedState: state }, undefined, { DPoP });
  assert.equal(tokens.token_type, 'dpop');
  const info = await oidc.fetchUserInfo(config, tokens.access_token, tokens.claims().sub, { DPoP });
  assert.equal(info.email, email);
});
