// The recovery pages in a real browser with JavaScript turned off: Debian's
// Chromium, driven by playwright-core (no browser download), against a
// latchkey binary on a free loopback port with the `log` mail transport, whose
// output carries the mailed links.
//
// Sign up; the verification link's page confirms only on a button press
// (opening it uses nothing), then the address is verified. Ask for a reset;
// the reset page refuses mismatched passwords, sets a matching one, ends the
// old session, and the used link is dead afterwards.
//
// Environment: as cookie-mode.test.mjs (LATCHKEY_BIN, CHROMIUM, ARTIFACTS).

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { freePort } from './support.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
  : path.join(repo, 'target');
const BINARY = process.env.LATCHKEY_BIN ?? path.join(targetDir, 'debug', 'latchkey');
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = process.env.ARTIFACTS ?? path.join(repo, 'artifacts');
const PASSWORD = 'correct horse battery staple';
const NEW_PASSWORD = 'a brand new passphrase';

let tmp;
let server;
let serverLog = '';
let context;
let base;

async function until(what, check, deadlineMs = 30_000) {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (server.exitCode !== null) break;
    const value = await check();
    if (value) return value;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`never saw ${what}:\n${serverLog}`);
}

// The newest link of this kind in the log transport's output.
function linkIn(kind, after) {
  const re = new RegExp(`${base.replace(/[.:/]/g, '\\$&')}/${kind}\\?token=[A-Za-z0-9_-]{43}`, 'g');
  const found = serverLog.slice(after).match(re);
  return found ? found[found.length - 1] : null;
}

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'latchkey-recovery-'));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
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
      LATCHKEY__DEMO__ENABLED: 'false',
      LATCHKEY__LOG__LEVEL: 'info',
      LATCHKEY__EMAIL__TRANSPORT: 'log',
      LATCHKEY__EMAIL__POLL_INTERVAL_MS: '100',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (d) => { serverLog += d; });
  server.stderr.on('data', (d) => { serverLog += d; });
  await until('the server ready', async () => {
    try {
      return (await fetch(`${base}/readyz`)).status === 200;
    } catch {
      return false;
    }
  }, 60_000);
  await mkdir(ARTIFACTS, { recursive: true });
  context = await chromium.launchPersistentContext(path.join(tmp, 'profile'), {
    executablePath: CHROMIUM,
    headless: true,
    javaScriptEnabled: false,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
    viewport: { width: 900, height: 800 },
  });
});

after(async () => {
  await context?.close();
  if (server && server.exitCode === null) {
    server.kill('SIGTERM');
    await new Promise((r) => server.once('exit', r));
  }
  if (tmp) await rm(tmp, { recursive: true, force: true });
});

async function post(pathname, body) {
  return fetch(`${base}${pathname}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(body),
  });
}

test('verification and password reset pages work in Chromium without JavaScript', async () => {
  const email = `browser-${Date.now()}@example.com`;
  let mark = serverLog.length;
  assert.equal((await post('/v1/users', { email, password: PASSWORD })).status, 201);
  const verifyLink = await until('a verification link', () => linkIn('verify-email', mark));

  const page = await context.newPage();
  // Opening the link (as a mail scanner would) shows a form and uses nothing.
  let res = await page.goto(verifyLink);
  assert.equal(res.status(), 200);
  assert.match(res.headers()['content-security-policy'], /default-src 'none'/);
  assert.equal(await page.textContent('h1'), 'Confirm your email address');
  res = await page.goto(verifyLink);
  assert.equal(res.status(), 200, 'still usable after being opened twice');
  await page.screenshot({ path: path.join(ARTIFACTS, 'verify-email.png'), fullPage: true });
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  assert.equal(await page.textContent('h1'), 'Email address confirmed');
  res = await page.goto(verifyLink);
  assert.equal(res.status(), 400, 'the used link is dead');

  mark = serverLog.length;
  assert.equal((await post('/v1/account/password/reset', { email })).status, 202);
  const resetLink = await until('a reset link', () => linkIn('reset-password', mark));
  res = await page.goto(resetLink);
  assert.equal(res.status(), 200);
  assert.equal(await page.textContent('h1'), 'Choose a new password');
  await page.fill('#new_password', NEW_PASSWORD);
  await page.fill('#confirm_password', 'something else entirely');
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  assert.match(await page.textContent('[role=alert]'), /do not match/);
  await page.fill('#new_password', NEW_PASSWORD);
  await page.fill('#confirm_password', NEW_PASSWORD);
  await Promise.all([page.waitForNavigation(), page.click('button[type=submit]')]);
  assert.equal(await page.textContent('h1'), 'Password changed');
  await page.screenshot({ path: path.join(ARTIFACTS, 'reset-password-done.png'), fullPage: true });
  res = await page.goto(resetLink);
  assert.equal(res.status(), 400, 'the used reset link is dead');
  assert.match(serverLog, /password was changed|Your .* password was changed/);
});
