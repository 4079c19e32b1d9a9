// What every interop test needs from latchkey: its debug binary, started on
// a free loopback port with a fresh SQLite database and keys folder, waited
// for until /readyz answers, and stopped (its folder removed) after the
// file's tests; plus its command line against the same database.
//
// Environment: LATCHKEY_BIN (default: $CARGO_TARGET_DIR or target/, then
// debug/latchkey).

import { after } from 'node:test';
import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, '..', '..');
const targetDir = process.env.CARGO_TARGET_DIR
  ? path.resolve(repo, process.env.CARGO_TARGET_DIR)
  : path.join(repo, 'target');
export const BINARY = process.env.LATCHKEY_BIN ?? path.join(targetDir, 'debug', 'latchkey');
const execFileAsync = promisify(execFile);

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

/// Starts `latchkey serve` named `label` (in temporary paths and failure
/// messages) with `settings` (LATCHKEY__… variables) over the defaults
/// below; resolves once it is ready, to `{ base, tmp, env }`.
export async function startLatchkey(label, settings = {}) {
  const tmp = await mkdtemp(path.join(os.tmpdir(), `latchkey-${label}-`));
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
    ...settings,
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
      throw new Error(`latchkey (${label}) did not become ready:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return { base, tmp, env };
}

/// Runs `latchkey ARGS --json` against `server`'s database; the parsed output.
export async function latchkeyJson(server, args) {
  const { stdout } = await execFileAsync(BINARY, [...args, '--json'], {
    cwd: server.tmp,
    env: server.env,
  });
  return JSON.parse(stdout);
}
