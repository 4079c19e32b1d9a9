// latchkey cookie-mode demo. Every call goes to the server that served this
// page, with the browser's cookies; the tokens themselves are HttpOnly
// cookies that this script cannot read. Paths are relative to /demo/, so the
// page also works behind a path prefix.
'use strict';

const $ = (id) => document.getElementById(id);
let config = null;

function showCookies() {
  $('js-cookies').textContent = document.cookie === '' ? '(empty)' : document.cookie;
}

function logResponse(method, url, status, body) {
  const item = document.createElement('li');
  const line = document.createElement('div');
  line.className = 'line';
  const verb = document.createElement('span');
  verb.textContent = `${method} ${new URL(url, location.href).pathname} → `;
  const code = document.createElement('span');
  code.className = `status ${status >= 200 && status < 300 ? 'ok' : 'bad'}`;
  code.textContent = String(status);
  line.append(verb, code);
  item.append(line);
  if (body !== null) {
    const pre = document.createElement('pre');
    pre.textContent = typeof body === 'string' ? body : JSON.stringify(body, null, 2);
    item.append(pre);
  }
  $('log').prepend(item);
}

async function call(method, url, init = {}) {
  let status = 0;
  let body = null;
  try {
    const res = await fetch(url, { method, credentials: 'same-origin', ...init });
    status = res.status;
    const text = await res.text();
    try { body = text ? JSON.parse(text) : null; } catch { body = text; }
  } catch (err) {
    body = `network error: ${err}`;
  }
  logResponse(method, url, status, body);
  showCookies();
  return { status, body };
}

function form(params) {
  return { body: new URLSearchParams(params) };
}

function credentials() {
  return { email: $('email').value, password: $('password').value };
}

async function signUp() {
  const { email, password } = credentials();
  await call('POST', '../v1/users', {
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ email, password }),
  });
}

async function logIn() {
  const { email, password } = credentials();
  const res = await call('POST', '../oauth/token', form({
    grant_type: 'password',
    username: email,
    password,
    client_id: config.client_id,
    scope: config.scope,
  }));
  if (res.status === 200) await whoAmI();
}

async function whoAmI() {
  const res = await call('GET', '../userinfo');
  const sub = $('sub');
  if (res.status === 200 && res.body && res.body.sub) {
    sub.textContent = res.body.sub;
    sub.className = 'signed-in';
  } else {
    sub.textContent = 'not signed in';
    sub.className = '';
  }
}

async function refresh() {
  // No refresh_token parameter: the server takes it from the cookie.
  await call('POST', '../oauth/token', form({
    grant_type: 'refresh_token',
    client_id: config.client_id,
  }));
}

async function sessions() {
  await call('GET', '../v1/account/sessions');
}

async function logOut() {
  const res = await call('POST', '../v1/logout');
  if (res.status === 204) {
    $('sub').textContent = 'not signed in';
    $('sub').className = '';
  }
}

// "Sign in with latchkey": the authorization code flow with PKCE. The page
// never sees the password; latchkey's own login page does. The verifier and
// state wait in sessionStorage for the browser to come back with the code.
const PKCE_KEY = 'latchkey-demo-pkce';

function base64url(bytes) {
  return btoa(String.fromCharCode(...bytes))
    .replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
}

async function signInWithLatchkey() {
  const verifier = base64url(crypto.getRandomValues(new Uint8Array(32)));
  const state = base64url(crypto.getRandomValues(new Uint8Array(16)));
  const digest = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
  sessionStorage.setItem(PKCE_KEY, JSON.stringify({ verifier, state }));
  const query = new URLSearchParams({
    response_type: 'code',
    client_id: config.client_id,
    redirect_uri: config.redirect_uri,
    scope: config.scope,
    state,
    code_challenge: base64url(new Uint8Array(digest)),
    code_challenge_method: 'S256',
  });
  location.assign(`../authorize?${query}`);
}

// Back from latchkey with ?code=…&state=…&iss=… (or ?error=…): check state and
// iss (RFC 9207), then redeem the code; the tokens arrive as cookies.
async function finishSignIn() {
  const params = new URLSearchParams(location.search);
  if (!params.has('code') && !params.has('error')) return;
  history.replaceState(null, '', location.pathname);
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) ?? 'null');
  sessionStorage.removeItem(PKCE_KEY);
  if (params.has('error')) {
    logResponse('GET', '../authorize', 0, Object.fromEntries(params));
    return;
  }
  if (!saved || saved.state !== params.get('state') || params.get('iss') !== config.issuer) {
    logResponse('GET', '../authorize', 0, 'refused: state or iss does not match this sign-in');
    return;
  }
  const res = await call('POST', '../oauth/token', form({
    grant_type: 'authorization_code',
    code: params.get('code'),
    redirect_uri: config.redirect_uri,
    code_verifier: saved.verifier,
    client_id: config.client_id,
  }));
  if (res.status === 200) await whoAmI();
}

async function start() {
  const res = await fetch('config.json');
  config = await res.json();
  $('client-id').textContent = config.client_id;
  if (location.origin !== config.origin) {
    const warn = $('wrong-origin');
    warn.textContent = `This page is open at ${location.origin}, but the demo client only accepts ` +
      `${config.origin}: open ${config.origin}${location.pathname} instead.`;
    warn.hidden = false;
  }
  $('signup').addEventListener('click', signUp);
  $('login').addEventListener('click', logIn);
  $('userinfo').addEventListener('click', whoAmI);
  $('refresh').addEventListener('click', refresh);
  $('sessions').addEventListener('click', sessions);
  $('logout').addEventListener('click', logOut);
  if (config.redirect_uri) {
    $('authorize').addEventListener('click', signInWithLatchkey);
  } else {
    $('authorize').hidden = true;
  }
  $('credentials').addEventListener('submit', (e) => { e.preventDefault(); logIn(); });
  showCookies();
  await finishSignIn();
  document.body.dataset.ready = 'true';
}

start();
