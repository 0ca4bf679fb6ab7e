// staticServer: pages on an origin of their own (a plain node:http server).

import { statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { extname, join, normalize, resolve, sep } from 'node:path';

import { freePort } from './http.mjs';
import { onTeardown } from './teardown.mjs';

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * A plain `node:http` server on a free port of 127.0.0.1 (an origin of its own): the files
 * under `root` (`index.html` for a directory), or the in-memory page `html` at `/`.
 * Returns `{url, origin, port, stop()}`; `url` ends with `/`.
 */
export async function staticServer({ root, html } = {}) {
  if ((root === undefined) === (html === undefined)) throw new Error('staticServer needs one of { root, html }');
  const base = root === undefined ? undefined : resolve(root);
  const server = createServer(async (req, res) => {
    const send = (status, type, body) => {
      res.writeHead(status, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    let path;
    try {
      path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
    } catch {
      return send(400, 'text/plain', 'bad path');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return send(405, 'text/plain', 'method not allowed');
    if (html !== undefined) {
      return path === '/' || path === '/index.html' ? send(200, TYPES['.html'], html) : send(404, 'text/plain', 'not found');
    }
    let file = normalize(join(base, path));
    if (file !== base && !file.startsWith(base + sep)) return send(403, 'text/plain', 'forbidden');
    try {
      if (statSync(file).isDirectory()) file = join(file, 'index.html');
      send(200, TYPES[extname(file)] ?? 'application/octet-stream', await readFile(file));
    } catch {
      send(404, 'text/plain', 'not found');
    }
  });
  const port = await freePort();
  await new Promise((ok, fail) => {
    server.once('error', fail);
    server.listen(port, '127.0.0.1', ok);
  });
  const stop = () =>
    new Promise((ok) => {
      server.closeAllConnections();
      server.close(() => ok());
    });
  onTeardown(stop, `static server :${port}`);
  const origin = `http://127.0.0.1:${port}`;
  return { url: `${origin}/`, origin, port, stop };
}
