// End-to-end test of cookie mode in a real browser: Debian's Chromium,
// driven by playwright-core (no browser download), against a latchkey
// binary spawned on a free loopback port with a fresh database and keys.
//
// The demo page logs in; document.cookie holds neither token; /userinfo
// works through the cookie; a page on another loopback port (same site, so
// the browser does attach the cookies) can neither refresh, log out, nor
// change anything; refresh rotates the cookie; logout clears it.
//
// Environment: LATCHKEY_BIN (default: $CARGO_TARGET_DIR or target/, then
// debug/latchkey), CHROMIUM (default /usr/bin/chromium), ARTIFACTS (default
// artifacts/ at the repository root; the screenshot goes there).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { freePort, waitUntilReady } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
  : path.join(repo, 'target');
const BINARY = process.env.LATCHKEY_BIN ?? path.join(targetDir, 'debug', 'latchkey');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = process.env.ARTIFACTS ?? path.join(repo, 'artifacts');
// Browsers treat http://localhost as a secure context, so Secure and
// __Host- cookies work over plain http here.
const HOST = 'localhost';
const PASSWORD = 'correct horse battery staple';

let tmp;
let server;
let serverLog = '';
let attacker;
let context;
let base;
let attackerBase;

async function startLatchkey() {
  const port = await freePort();
  base = `http://${HOST}:${port}`;
  server = spawn(BINARY, ['serve'], {
    cwd: tmp,
    env: {
      PATH: process.env.PATH,
      DATABASE_URL: `sqlite://${path.join(tmp, 'latchkey.db')}`,
      LATCHKEY__SERVER__HOST: '127.0.0.1',
      LATCHKEY__SERVER__PORT: String(port),
      LATCHKEY__SERVER__ISSUER: base,
      LATCHKEY__SERVER__WORKERS: '2',
      LATCHKEY__KEYS__DIR: path.join(tmp, 'keys'),
      LATCHKEY__DEMO__ENABLED: 'true',
      LATCHKEY__LOG__LEVEL: 'warn',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (d) => { serverLog += d; });
  server.stderr.on('data', (d) => { serverLog += d; });
  await waitUntilReady(`http://127.0.0.1:${port}/readyz`, 60_000, server, () => serverLog);
}

// A page on another port of the same host: another origin, but the same
// site, so SameSite=Strict does not keep the user's cookies off its requests.
async function startAttacker() {
  const port = await freePort();
  attackerBase = `http://${HOST}:${port}`;
  attacker = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>not the app</title>
      <form id="logout" method="post" action="${base}/v1/logout"></form>
      <form id="refresh" method="post" action="${base}/oauth/token">
        <input name="grant_type" value="refresh_token"><input name="client_id" id="cid">
      </form>`);
  });
  await new Promise((resolve) => attacker.listen(port, '127.0.0.1', resolve));
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'latchkey-browser-'));
  await startLatchkey();
  await startAttacker();
  await mkdir(ARTIFACTS, { recursive: true });
  context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
    viewport: { width: 1100, height: 900 },
  });
});

after(async () => {
  await context?.close();
  attacker?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function tokenCookies() {
  const all = await context.cookies();
  const at = all.filter((c) => c.name === '__Host-lk_at');
  const rt = all.filter((c) => c.name === '__Secure-lk_rt');
  return { at, rt, access: at[0]?.value, refresh: rt[0]?.value };
}

async function clickAndWait(page, button, pathname, method = 'POST') {
  const before = await page.locator('#log li').count();
  const [response] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === pathname && r.request().method() === method),
    page.click(button),
  ]);
  // Let the page render what it received (entries are prepended).
  await page.waitForFunction(
    ({ pathname, before }) => {
      const items = [...document.querySelectorAll('#log li .line')];
      return items.slice(0, items.length - before).some((l) => l.textContent.includes(pathname));
    },
    { pathname, before },
    { polling: 100 },
  );
  return response;
}

test('cookie mode in Chromium: login, cookies out of reach, refresh, cross-origin refusal, logout', async () => {
  const page = await context.newPage();
  await page.goto(`${base}/demo/`);
  await page.waitForSelector('body[data-ready="true"]');
  const clientId = (await page.textContent('#client-id')).trim();
  assert.match(clientId, /^[0-9a-f-]{36}$/);
  assert.equal(await page.isHidden('#wrong-origin'), true, 'the page is at the issuer origin');

  // Sign up, then log in.
  const email = `browser-${Date.now()}@example.com`;
  await page.fill('#email', email);
  await page.fill('#password', PASSWORD);
  const signup = await clickAndWait(page, '#signup', '/v1/users');
  assert.equal(signup.status(), 201);
  const userId = (await signup.json()).id;
  const login = await clickAndWait(page, '#login', '/oauth/token');
  assert.equal(login.status(), 200);
  const loginBody = await login.json();
  assert.deepEqual(Object.keys(loginBody).sort(), ['expires_in', 'scope', 'token_type']);

  // The browser holds both cookies, HttpOnly, Secure and SameSite=Strict...
  const jar = await tokenCookies();
  assert.equal(jar.at.length, 1);
  assert.equal(jar.rt.length, 2, 'refresh cookie at /oauth/token and /v1/logout');
  for (const c of [...jar.at, ...jar.rt]) {
    assert.equal(c.httpOnly, true, c.name);
    assert.equal(c.secure, true, c.name);
    assert.equal(c.sameSite, 'Strict', c.name);
  }
  assert.equal(jar.at[0].path, '/');
  assert.deepEqual(jar.rt.map((c) => c.path).sort(), ['/oauth/token', '/v1/logout']);
  assert.match(jar.access, /^eyJ/);
  assert.match(jar.refresh, /^lk_rt_/);

  // ...and the page's JavaScript sees neither.
  const visible = await page.evaluate(() => document.cookie);
  assert.ok(!visible.includes('lk_at') && !visible.includes('lk_rt'), visible);
  assert.ok(!visible.includes(jar.access) && !visible.includes(jar.refresh));
  assert.equal((await page.textContent('#js-cookies')).trim(), '(empty)');

  // /userinfo works through the cookie (the page called it after login).
  await page.waitForFunction((id) => document.querySelector('#sub').textContent === id, userId, { polling: 100 });
  const who = await clickAndWait(page, '#userinfo', '/userinfo', 'GET');
  assert.equal(who.status(), 200);
  assert.equal((await who.json()).sub, userId);
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-after-login.png'), fullPage: true });

  // A page on another port of the same host: the browser attaches the
  // user's cookies to its requests, and the Origin check refuses them all.
  const evil = await context.newPage();
  await evil.goto(`${attackerBase}/`);
  const refused = [];
  evil.on('response', (r) => {
    if (r.url().startsWith(base)) refused.push(`${r.request().method()} ${new URL(r.url()).pathname} ${r.status()}`);
  });
  const outcome = await evil.evaluate(async ({ base, clientId }) => {
    const form = `grant_type=refresh_token&client_id=${clientId}`;
    const headers = { 'Content-Type': 'application/x-www-form-urlencoded' };
    const tries = {
      refreshNoCors: () => fetch(`${base}/oauth/token`, { method: 'POST', mode: 'no-cors', credentials: 'include', headers, body: form }),
      refreshCors: () => fetch(`${base}/oauth/token`, { method: 'POST', credentials: 'include', headers, body: form }),
      logoutNoCors: () => fetch(`${base}/v1/logout`, { method: 'POST', mode: 'no-cors', credentials: 'include' }),
      readUserinfo: () => fetch(`${base}/userinfo`, { credentials: 'include' }),
      deleteSessions: () => fetch(`${base}/v1/account/sessions/x`, { method: 'DELETE', credentials: 'include' }),
      changePassword: () => fetch(`${base}/v1/account/password`, {
        method: 'POST', credentials: 'include', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ current_password: 'x', new_password: 'yyyyyyyyyy' }),
      }),
    };
    const out = {};
    for (const [name, run] of Object.entries(tries)) {
      try {
        const res = await run();
        out[name] = `answered ${res.type} ${res.status}`;
      } catch (err) {
        out[name] = `blocked ${err.name}`;
      }
    }
    return out;
  }, { base, clientId });
  // No answer is readable by the foreign page (no CORS for its origin)...
  assert.deepEqual(outcome, {
    refreshNoCors: 'answered opaque 0',
    refreshCors: 'blocked TypeError',
    logoutNoCors: 'answered opaque 0',
    readUserinfo: 'blocked TypeError',
    deleteSessions: 'blocked TypeError',
    changePassword: 'blocked TypeError',
  });
  // ...and top-level form posts, which do carry the cookies, are refused too.
  for (const form of ['#logout', '#refresh']) {
    if (form === '#refresh') await evil.fill('#cid', clientId);
    const [nav] = await Promise.all([evil.waitForNavigation(), evil.evaluate((f) => document.querySelector(f).submit(), form)]);
    assert.equal(nav.status(), 403, form);
    await evil.goto(`${attackerBase}/`);
  }
  // The requests that reached the server were all refused with 403; the
  // preflighted ones never got past their preflight.
  for (const line of refused) assert.match(line, / 403$/, line);
  assert.ok(refused.some((l) => l.startsWith('POST /oauth/token')), refused.join('\n'));
  assert.ok(refused.some((l) => l.startsWith('POST /v1/logout')), refused.join('\n'));
  assert.ok(!refused.some((l) => l.startsWith('DELETE') || l.includes('/password')), refused.join('\n'));
  // Nothing changed: same cookies, the session still answers.
  const afterAttack = await tokenCookies();
  assert.equal(afterAttack.access, jar.access);
  assert.equal(afterAttack.refresh, jar.refresh);
  await evil.close();
  const still = await clickAndWait(page, '#userinfo', '/userinfo', 'GET');
  assert.equal(still.status(), 200);

  // Refresh from the page rotates both cookies.
  const refreshed = await clickAndWait(page, '#refresh', '/oauth/token');
  assert.equal(refreshed.status(), 200);
  const rotated = await tokenCookies();
  assert.notEqual(rotated.refresh, jar.refresh);
  assert.notEqual(rotated.access, jar.access);
  assert.equal(new Set(rotated.rt.map((c) => c.value)).size, 1, 'both refresh cookies rotate together');

  // The session list shows this session as current.
  const sessions = await clickAndWait(page, '#sessions', '/v1/account/sessions', 'GET');
  assert.equal(sessions.status(), 200);
  const list = (await sessions.json()).sessions;
  assert.equal(list.length, 1);
  assert.equal(list[0].current, true);
  assert.equal(list[0].client_id, clientId);

  // Logout revokes the session and clears every cookie.
  const out = await clickAndWait(page, '#logout', '/v1/logout');
  assert.equal(out.status(), 204);
  const cleared = await tokenCookies();
  assert.equal(cleared.at.length + cleared.rt.length, 0);
  const gone = await clickAndWait(page, '#userinfo', '/userinfo', 'GET');
  assert.equal(gone.status(), 401);
  await page.screenshot({ path: path.join(ARTIFACTS, 'demo-after-logout.png'), fullPage: true });
});

test('the demo\'s "Sign in with latchkey" runs the code flow; the page never sees the password', async () => {
  const email = `code-${Date.now() % 100000}@example.com`;
  const signup = await fetch(`${base}/v1/users`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  assert.equal(signup.status, 201);
  const page = await context.newPage();
  await page.goto(`${base}/demo/`);
  await page.waitForSelector('body[data-ready="true"]');
  await page.click('#authorize');
  // latchkey's own login page (first-party demo client: no consent page).
  await page.waitForURL((u) => u.pathname.endsWith('/authorize'));
  await page.fill('#email', email);
  await page.fill('#password', PASSWORD);
  await page.press('#password', 'Enter');
  await page.waitForURL((u) => u.pathname.endsWith('/demo/'));
  await page.waitForSelector('#sub.signed-in');
  assert.equal(new URL(page.url()).search, '', 'the code is gone from the address bar');
  assert.equal(await page.evaluate(() => document.cookie), '');
  const jar = await tokenCookies();
  assert.ok(jar.access && jar.refresh, 'the tokens arrived as HttpOnly cookies');
  await page.close();
});
