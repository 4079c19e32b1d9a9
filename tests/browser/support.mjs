// Helpers the browser tests share: a free loopback port, and waiting for
// the latchkey child process to answer.
import net from 'node:net';

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Polls `url` until it answers 200; gives up early when `child` exits, and
// then shows what it printed (`log()`).
export async function waitUntilReady(url, deadlineMs, child, log) {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    try {
      const res = await fetch(url);
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`latchkey did not become ready at ${url}:\n${log()}`);
}
