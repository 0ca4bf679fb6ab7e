// startServices: im-service and game-service from BIN_DIR, on a private Redis, with tokens minted by xtask.

import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { BIN_DIR, PORT_ATTEMPTS, STARTUP_MS } from './config.mjs';
import { freePort, request } from './http.mjs';
import { Proc } from './proc.mjs';
import { onTeardown } from './teardown.mjs';
import { fatalError, waitUntil } from './wait.mjs';

const execFileAsync = promisify(execFile);

/** `BIN_DIR/<name>`, refusing a missing binary or one older than its sources (per cargo's
 * `<name>.d`), unless `E2E_ALLOW_STALE` is set: a test of yesterday's code proves nothing. */
export function binary(name, { checkFresh = true } = {}) {
  const path = join(BIN_DIR, name);
  if (!existsSync(path)) {
    throw new Error(`${path} does not exist: run \`cargo build --workspace --bins\` first`);
  }
  if (checkFresh && !process.env.E2E_ALLOW_STALE) {
    const built = statSync(path).mtimeMs;
    let depInfo = '';
    try {
      depInfo = readFileSync(`${path}.d`, 'utf8');
    } catch {
      // no dep-info: nothing to compare with
    }
    const deps = (depInfo.split('\n')[0] ?? '').split(': ')[1] ?? '';
    for (const dep of deps.replaceAll('\\ ', '\0').split(/\s+/).filter(Boolean)) {
      const file = dep.replaceAll('\0', ' ');
      if (!existsSync(file) || statSync(file).mtimeMs > built) {
        throw new Error(
          `${path} is older than ${file}: run \`cargo build --workspace --bins\` (or set E2E_ALLOW_STALE=1 to test the old binary)`,
        );
      }
    }
  }
  return path;
}

async function waitReady(proc, url, port) {
  try {
    await waitUntil(async () => {
      if (!proc.running) throw fatalError(`${proc.label} exited during start-up`);
      const res = await request(`${url}/readyz`, { timeout: 1_000 });
      return res.status === 200;
    }, { timeout: STARTUP_MS, message: `${proc.label} on port ${port} to answer /readyz` });
  } catch (err) {
    if (!proc.running) await proc.exited; // its last words are in the tail
    const wrapped = new Error(`${err.message}\n${proc.label} output:\n${proc.tail()}`);
    wrapped.portTaken = /Address already in use/i.test(proc.tail());
    throw wrapped;
  }
}

let worlds = 0;
/** Every `startServices` result's `logs`. */
const started = [];

/** The tail of the output of every `startServices` so far, one string each, for `reportFailure`. */
export function servicesLogs() {
  return started.map((world) => world.logs());
}

/**
 * Starts `im-service` and `game-service` from `BIN_DIR` on free ports, on `redis` (from
 * `startRedis`) with key prefixes of their own, a random JWT secret and a join-token key made
 * by `openssl genpkey -algorithm ed25519`; resolves once both answer `/readyz`.
 *
 * - `corsOrigins`: array (or comma-separated string) set as `CORS_ALLOWED_ORIGINS` on both.
 * - `env`: `{ im: {...}, game: {...} }` extra variables per service (they win over the
 *   defaults), e.g. `{ game: { INVITE_TTL_SECS: '5', IM_TIMEOUT_MS: '300' } }`.
 * - Both may instead be functions of `{ imUrl, gameUrl, imPort, gamePort }`, for values that
 *   name the services themselves: the page at `${gameUrl}/play/` calls the IM service, so
 *   `corsOrigins: ({ gameUrl }) => [gameUrl]`, `env: ({ imUrl }) => ({ game: { PLAY_IM_URL: imUrl } })`.
 *
 * Returns:
 * - `imUrl`, `gameUrl`, `imPort`, `gamePort`, `secret`;
 * - `token(user, { service = false, ttl = 3600 })`: a token minted by `xtask token`;
 * - `stopIm({ signal = 'SIGTERM' })` / `startIm()`: the IM service goes away and comes back on
 *   the same port (the game service then sees it down, then up again);
 *   `stopGame()` / `startGame()` likewise;
 * - `logs()`: the tail of both services' output (full logs in `LOG_DIR`);
 * - `stop()`: stops both (also done by `teardown()`).
 */
export async function startServices({ redis, corsOrigins, env = {} } = {}) {
  if (!redis?.url) throw new Error('startServices needs { redis } from startRedis()');
  const imBin = binary('im-service');
  const gameBin = binary('game-service');
  const xtask = binary('xtask', { checkFresh: false }); // it only mints tokens
  const secret = randomBytes(48).toString('base64');
  const keyDir = mkdtempSync(join(tmpdir(), 'browser-keys-'));
  onTeardown(() => rmSync(keyDir, { recursive: true, force: true }), `join-token key ${keyDir}`);
  const joinKey = join(keyDir, 'join-token.pem');
  await execFileAsync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', joinKey]);
  const world = `w${process.pid}-${++worlds}-${randomBytes(3).toString('hex')}`;

  for (let attempt = 1; ; attempt++) {
    const imPort = await freePort();
    const gamePort = await freePort();
    const imUrl = `http://127.0.0.1:${imPort}`;
    const gameUrl = `http://127.0.0.1:${gamePort}`;
    // Either may name the services' own URLs, known only now.
    const urls = { imUrl, gameUrl, imPort, gamePort };
    const origins = typeof corsOrigins === 'function' ? corsOrigins(urls) : corsOrigins;
    const list = Array.isArray(origins) ? origins.join(',') : origins;
    const cors = list ? { CORS_ALLOWED_ORIGINS: list } : {};
    const extra = (typeof env === 'function' ? env(urls) : env) ?? {};
    const im = new Proc(`im-${world}`, imBin, [], {
      BIND_ADDR: `127.0.0.1:${imPort}`,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `${world}-im`,
      JWT_SECRET: secret,
      // "Play in this chat" calls the game service.
      GAME_URL: gameUrl,
      ...cors,
      ...extra.im,
    });
    const game = new Proc(`game-${world}`, gameBin, [], {
      BIND_ADDR: `127.0.0.1:${gamePort}`,
      REDIS_URL: redis.url,
      REDIS_KEY_PREFIX: `${world}-game`,
      JWT_SECRET: secret,
      IM_URL: imUrl,
      JOIN_TOKEN_KEY_FILE: joinKey,
      ...cors,
      ...extra.game,
    });
    const stop = async () => {
      await Promise.all([game.stop(), im.stop()]);
    };
    onTeardown(stop, `services ${world} (im :${imPort}, game :${gamePort})`);
    im.start();
    game.start();
    try {
      await Promise.all([waitReady(im, imUrl, imPort), waitReady(game, gameUrl, gamePort)]);
    } catch (err) {
      await stop();
      if (attempt < PORT_ATTEMPTS && err.portTaken) continue;
      throw err;
    }

    const restart = (proc, url, port) => async () => {
      if (proc.running) throw new Error(`${proc.label} is still running`);
      proc.start();
      await waitReady(proc, url, port);
    };
    const logs = () => `--- im-service (${im.label}):\n${im.tail()}\n--- game-service (${game.label}):\n${game.tail()}`;
    started.push({ logs });
    return {
      imUrl,
      gameUrl,
      imPort,
      gamePort,
      secret,
      async token(user, { service = false, ttl = 3600 } = {}) {
        const args = ['token', user, '--ttl', String(ttl), ...(service ? ['--service'] : [])];
        const { stdout } = await execFileAsync(xtask, args, {
          env: { PATH: process.env.PATH, JWT_SECRET: secret },
        });
        return stdout.trim();
      },
      stopIm: (opts) => im.stop(opts),
      startIm: restart(im, imUrl, imPort),
      stopGame: (opts) => game.stop(opts),
      startGame: restart(game, gameUrl, gamePort),
      logs,
      stop,
    };
  }
}
