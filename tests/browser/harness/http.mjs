// HTTP from Node (no browser, so no CORS check): free ports, one-shot requests, event streams.

import { request as httpRequest } from 'node:http';
import net from 'node:net';

import { onTeardown } from './teardown.mjs';

const handedOut = new Set();

/** A TCP port nobody listens on right now on 127.0.0.1, never handed out before by this process. */
export async function freePort() {
  for (let i = 0; i < 100; i++) {
    const port = await new Promise((ok, fail) => {
      const server = net.createServer();
      server.once('error', fail);
      server.listen(0, '127.0.0.1', () => {
        const { port } = server.address();
        server.close(() => ok(port));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
  throw new Error('no ephemeral port that this process has not used already');
}

/**
 * One HTTP request from Node (no browser, so no CORS check): `{status, headers, text, json}`,
 * `headers` a `Headers` (`.get(name)`). `token` becomes `Authorization: Bearer`; an object
 * `body` is sent as JSON. No keep-alive: an idle pooled connection would hold up a service's
 * graceful shutdown until the pool let it go.
 */
export function request(url, { method = 'GET', token, body, headers = {}, timeout = 10_000 } = {}) {
  const all = withToken({ ...headers }, token);
  let payload = body;
  if (body !== undefined && typeof body !== 'string') {
    all['content-type'] = 'application/json';
    payload = JSON.stringify(body);
  }
  return new Promise((ok, fail) => {
    const req = httpRequest(url, { method, headers: all, agent: false, timeout }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (chunk) => (text += chunk));
      res.on('error', fail);
      res.on('end', () => {
        let json;
        try {
          json = text ? JSON.parse(text) : undefined;
        } catch {
          json = undefined;
        }
        ok({ status: res.statusCode, headers: toHeaders(res.headers), text, json });
      });
    });
    req.on('timeout', () => req.destroy(new Error(`${method} ${url}: no answer within ${timeout} ms`)));
    req.on('error', fail);
    req.end(payload);
  });
}

/** Adds `token`, if any, to `headers` as `Authorization: Bearer`; returns `headers`. */
function withToken(headers, token) {
  if (token) headers.authorization = `Bearer ${token}`;
  return headers;
}

function toHeaders(raw) {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    for (const v of Array.isArray(value) ? value : [value]) headers.append(name, v);
  }
  return headers;
}

/**
 * An event stream read from Node (no browser): resolves once the answer's headers arrived, to
 * `{status, headers, events, next(predicate, {timeout}), close()}`. `events` collects
 * `{event, id, data}` (data parsed as JSON when it is); `next` waits for the first event
 * satisfying `predicate` (seen already or to come).
 */
export function nodeEventStream(url, { token, headers = {} } = {}) {
  const all = withToken({ accept: 'text/event-stream', ...headers }, token);
  return new Promise((ok, fail) => {
    const req = httpRequest(url, { headers: all, agent: false }, (res) => {
      onTeardown(() => req.destroy(), `event stream ${new URL(url).pathname}`);
      const events = [];
      const waiters = new Set();
      let buffer = '';
      let ended = false;
      res.setEncoding('utf8');
      res.on('data', (chunk) => {
        buffer += chunk;
        let cut;
        while ((cut = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = { event: 'message', id: undefined, data: '' };
          const data = [];
          for (const line of block.split('\n')) {
            const [, field, value] = /^([^:]*):? ?(.*)$/.exec(line) ?? [];
            if (field === 'event') event.event = value;
            else if (field === 'id') event.id = value;
            else if (field === 'data') data.push(value);
          }
          if (data.length === 0) continue; // keep-alive comments, retry lines
          event.data = data.join('\n');
          try {
            event.data = JSON.parse(event.data);
          } catch {
            // not JSON: kept as text
          }
          events.push(event);
          for (const waiter of waiters) waiter();
        }
      });
      res.on('close', () => {
        ended = true;
        for (const waiter of waiters) waiter();
      });
      ok({
        status: res.statusCode,
        headers: toHeaders(res.headers),
        events,
        next(predicate = () => true, { timeout = 10_000 } = {}) {
          return new Promise((found, timedOut) => {
            const check = () => {
              const event = events.find(predicate);
              if (event || ended) {
                clearTimeout(timer);
                waiters.delete(check);
                if (event) found(event);
                else timedOut(new Error(`${url}: the stream ended; events: ${JSON.stringify(events)}`));
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              timedOut(new Error(`${url}: no such event within ${timeout} ms; events: ${JSON.stringify(events)}`));
            }, timeout);
            waiters.add(check);
            check();
          });
        },
        close: () => req.destroy(),
      });
    });
    req.on('error', fail);
    req.end();
  });
}
