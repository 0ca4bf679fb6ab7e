// startRedis: a private redis-server on a free port.

import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { PORT_ATTEMPTS, STARTUP_MS } from './config.mjs';
import { freePort } from './http.mjs';
import { Proc } from './proc.mjs';
import { onTeardown } from './teardown.mjs';
import { fatalError, waitUntil } from './wait.mjs';

function redisPing(port) {
  return new Promise((ok) => {
    const socket = net.connect(port, '127.0.0.1');
    let answer = '';
    const done = (value) => {
      socket.destroy();
      ok(value);
    };
    socket.setTimeout(500, () => done(false));
    socket.on('error', () => done(false));
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (data) => {
      answer += data;
      if (answer.includes('\r\n')) done(answer.startsWith('+PONG'));
    });
  });
}

/**
 * A private `redis-server` (never 6379, no persistence) on a free port: `{url, port, stop()}`.
 * Nothing ever flushes it: each `startServices` uses key prefixes of its own.
 */
export async function startRedis() {
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'browser-redis-'));
    const proc = new Proc(`redis-${port}`, 'redis-server', [
      '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--dir', dir, '--daemonize', 'no',
    ], {}).start();
    const stop = async () => {
      await proc.stop();
      rmSync(dir, { recursive: true, force: true });
    };
    onTeardown(stop, `redis-server :${port}`);
    try {
      await waitUntil(async () => {
        if (!proc.running) throw fatalError(`redis-server exited at start-up:\n${proc.tail()}`);
        return redisPing(port);
      }, { timeout: STARTUP_MS, message: `redis-server on port ${port} to answer PING` });
      return { url: `redis://127.0.0.1:${port}`, port, stop };
    } catch (err) {
      await stop();
      if (attempt < PORT_ATTEMPTS && /Address already in use/.test(proc.tail())) continue;
      throw err;
    }
  }
}
