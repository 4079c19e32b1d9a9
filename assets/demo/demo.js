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
  $('credentials').addEventListener('submit', (e) => { e.preventDefault(); logIn(); });
  document.body.dataset.ready = 'true';
  showCookies();
}

start();
