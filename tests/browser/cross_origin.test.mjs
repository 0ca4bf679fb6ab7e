// A page from another origin calls both services from a real Chromium: allowed by
// CORS_ALLOWED_ORIGINS, its fetches (bearer token, exposed X-Request-Id) and ticketed
// EventSources on both services work, replay included; from an origin not on the list, the
// browser blocks the fetches and the EventSources while the very same requests from Node are
// answered: it is the browser's CORS check, fed by the services' headers, that blocks.

import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';

import * as h from './harness.mjs';

after(h.teardown);
afterEach(h.reportFailure);

// The fixture page: helpers the tests call through page.evaluate, and a log for screenshots.
const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,"><title>cross-origin fixture</title>
<style>body{font:14px monospace;margin:1em} li{margin:.2em 0}</style></head>
<body><h1>cross-origin fixture</h1><p id="origin"></p><ol id="log"></ol>
<script>
  document.getElementById('origin').textContent = 'page origin: ' + location.origin;
  const log = (line) => {
    const li = document.createElement('li');
    li.textContent = line;
    document.getElementById('log').append(li);
  };
  // One fetch: what the page could read of the answer, or the error it got.
  window.api = async (base, method, path, { token, body, requestId } = {}) => {
    const headers = {};
    if (token) headers.authorization = 'Bearer ' + token;
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (requestId) headers['x-request-id'] = requestId;
    try {
      const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
      const text = await res.text();
      log(method + ' ' + base + path + ' -> ' + res.status);
      return { status: res.status, requestId: res.headers.get('x-request-id'), json: text ? JSON.parse(text) : null };
    } catch (err) {
      log(method + ' ' + base + path + ' -> ' + err.name + ': ' + err.message);
      return { error: err.name, message: err.message };
    }
  };
  // An EventSource whose opening, errors and events the test reads from window.streams[name].
  window.streams = {};
  window.openStream = (name, url) => {
    const s = { opened: false, errors: 0, readyStates: [], events: [] };
    const es = new EventSource(url);
    s.close = () => es.close();
    s.state = () => es.readyState;
    es.onopen = () => { s.opened = true; log('stream ' + name + ' open'); };
    es.onerror = () => { s.errors++; s.readyStates.push(es.readyState); log('stream ' + name + ' error, readyState ' + es.readyState); };
    for (const type of ['prompt', 'prompt_cancelled', 'session', 'message', 'conversation', 'presence']) {
      es.addEventListener(type, (e) => {
        s.events.push({ type, id: e.lastEventId, data: JSON.parse(e.data) });
        log('stream ' + name + ': ' + type + ' ' + e.lastEventId);
      });
    }
    window.streams[name] = s;
  };
  window.ready = true;
</script></body></html>`;

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const CORS_BLOCK = /has been blocked by CORS policy/;

let services;
let allowed; // the origin in CORS_ALLOWED_ORIGINS of both services
let other; // an origin that is not
let browser;

before(async () => {
  const redis = await h.startRedis();
  allowed = await h.staticServer({ html: PAGE });
  other = await h.staticServer({ html: PAGE });
  services = await h.startServices({ redis, corsOrigins: [allowed.origin] });
  browser = await h.launchBrowser();
});

async function open(site) {
  const { page, watch } = await h.newPage(browser);
  await page.goto(site.url);
  await page.waitForFunction(() => window.ready === true);
  return { page, watch };
}

/** `window.streams[name]` as the test can see it (events, opened, errors). */
const stream = (page, name) =>
  page.evaluate((n) => {
    const s = window.streams[n];
    return { opened: s.opened, errors: s.errors, readyStates: s.readyStates, state: s.state(), events: s.events };
  }, name);

/** Waits until stream `name` holds at least `count` events; returns them. */
async function eventsOf(page, name, count) {
  await page.waitForFunction(([n, c]) => window.streams[n].events.length >= c, [name, count], { timeout: 10_000 });
  return (await stream(page, name)).events;
}

/** An event without what is signed afresh each time a session is rendered. */
const comparable = ({ type, id, data }) => {
  const { join_token: _signedEachTime, ...rest } = data;
  return { type, id, data: rest };
};

describe('a page from an origin in CORS_ALLOWED_ORIGINS', () => {
  test('calls both services with a bearer token, reads X-Request-Id, and streams events with a ticket, replay included', { timeout: 60_000 }, async () => {
    const { page, watch } = await open(allowed);
    const user = 'cors-allowed';
    const token = await services.token(user);
    const call = (base, method, path, opts = {}) =>
      page.evaluate(([b, m, p, o]) => window.api(b, m, p, o), [base, method, path, { token, ...opts }]);

    // IM service: set presence (the caller's X-Request-Id comes back), list conversations.
    const presence = await call(services.imUrl, 'PUT', '/v1/presence', {
      body: { status: 'available' },
      requestId: 'browser-cross-origin-presence',
    });
    assert.equal(presence.error, undefined, `PUT /v1/presence from ${allowed.origin}: ${presence.message}`);
    assert.equal(presence.status, 200);
    assert.equal(presence.requestId, 'browser-cross-origin-presence', 'the exposed X-Request-Id echoes the caller\'s');
    const conversations = await call(services.imUrl, 'GET', '/v1/conversations');
    assert.equal(conversations.status, 200, JSON.stringify(conversations));
    assert.match(conversations.requestId ?? '', UUID, 'a fresh X-Request-Id is readable from the page');
    assert.ok(conversations.json !== null && typeof conversations.json === 'object', 'the page reads the JSON body');

    // Game service: a ticket, then an EventSource that opens with it.
    const issued = await call(services.gameUrl, 'POST', '/v1/events/tickets');
    assert.equal(issued.status, 201, JSON.stringify(issued));
    assert.match(issued.requestId ?? '', UUID);
    const { ticket, expires_at: expiresAt } = issued.json;
    assert.ok(typeof ticket === 'string' && ticket.length > 0, 'a ticket');
    assert.ok(Date.parse(expiresAt) > Date.now(), `the ticket expires in the future: ${expiresAt}`);
    const events = `${services.gameUrl}/v1/events?ticket=${encodeURIComponent(ticket)}`;
    await page.evaluate((url) => window.openStream('live', url), events);
    await page.waitForFunction(() => window.streams.live.opened, null, { timeout: 10_000 });

    // Talking to nobody, connect gives a solo session: the stream delivers it.
    const connected = await call(services.gameUrl, 'POST', '/v1/connect');
    assert.equal(connected.status, 200, JSON.stringify(connected));
    const solo = connected.json.session;
    assert.equal(solo.kind, 'solo');
    assert.equal(solo.reason, 'no_partner');
    const [first] = await eventsOf(page, 'live', 1);
    assert.equal(first.type, 'session');
    assert.equal(first.data.id, solo.id, 'the event is the session connect answered');
    assert.equal(first.data.reason, 'no_partner');
    assert.ok(first.id, 'the event has an id to resume from');

    // Two more events: leaving ends the session, connecting again gives a new one.
    const left = await call(services.gameUrl, 'POST', `/v1/sessions/${solo.id}/leave`);
    assert.equal(left.status, 200, JSON.stringify(left));
    const again = await call(services.gameUrl, 'POST', '/v1/connect');
    assert.equal(again.status, 200, JSON.stringify(again));
    assert.notEqual(again.json.session.id, solo.id);
    const live = await eventsOf(page, 'live', 3);
    assert.deepEqual(live.map((e) => [e.type, e.data.id, e.data.state]), [
      ['session', solo.id, 'active'],
      ['session', solo.id, 'ended'],
      ['session', again.json.session.id, 'active'],
    ]);

    // Reopened with last_event_id = the first event: what followed it is replayed, then live.
    await page.evaluate((url) => window.openStream('resumed', url), `${events}&last_event_id=${encodeURIComponent(first.id)}`);
    const replayed = await eventsOf(page, 'resumed', 2);
    assert.deepEqual(replayed.map(comparable), live.slice(1, 3).map(comparable), 'the replay is exactly what followed');
    const leftAgain = await call(services.gameUrl, 'POST', `/v1/sessions/${again.json.session.id}/leave`);
    assert.equal(leftAgain.status, 200);
    const [liveAfter, resumedAfter] = [await eventsOf(page, 'live', 4), await eventsOf(page, 'resumed', 3)];
    assert.equal(resumedAfter.length, 3, 'nothing before the last event id, nothing twice');
    assert.deepEqual(comparable(resumedAfter[2]), comparable(liveAfter[3]), 'then it goes on live');
    assert.equal((await stream(page, 'resumed')).errors, 0);

    // IM service: its own ticket opens its own stream, which tells of a conversation opened.
    const imIssued = await call(services.imUrl, 'POST', '/v1/events/tickets');
    assert.equal(imIssued.status, 201, JSON.stringify(imIssued));
    const imEvents = `${services.imUrl}/v1/events?ticket=${encodeURIComponent(imIssued.json.ticket)}`;
    await page.evaluate((url) => window.openStream('chat', url), imEvents);
    await page.waitForFunction(() => window.streams.chat.opened, null, { timeout: 10_000 });
    const opened = await call(services.imUrl, 'POST', '/v1/conversations', { body: { participants: ['cors-friend'] } });
    assert.equal(opened.status, 201, JSON.stringify(opened));
    const [told] = await eventsOf(page, 'chat', 1);
    assert.equal(told.type, 'conversation');
    assert.equal(told.data.id, opened.json.id, 'the IM stream tells of the conversation the page opened');

    await h.screenshot(page, 'cross-origin-allowed');
    // Closing the streams aborts their requests: that, and only that, is expected.
    const closed = watch.expectFailure(/\/v1\/events\?/, { kinds: ['requestfailed'], text: 'net::ERR_ABORTED' });
    await page.evaluate(() => Object.values(window.streams).forEach((s) => s.close()));
    await h.waitUntil(() => closed.matches.length === 3, { message: 'the three streams aborted' });
    watch.assertClean();
    await page.close();
  });
});

describe('a page from an origin not in CORS_ALLOWED_ORIGINS', () => {
  test('is blocked by the browser, fetch and EventSource alike, while Node gets the same answers', { timeout: 60_000 }, async () => {
    const { page, watch } = await open(other);
    const user = 'cors-other';
    const token = await services.token(user);
    const call = (base, method, path, opts = {}) =>
      page.evaluate(([b, m, p, o]) => window.api(b, m, p, o), [base, method, path, opts]);
    const fromNode = (url, opts = {}) => h.request(url, { ...opts, headers: { origin: other.origin, ...opts.headers } });

    /** The browser refused `url` for CORS: a CORS console error and a request failed with net::ERR_FAILED (not refused, not timed out). */
    async function assertCorsBlocked(expectation, url) {
      const message = await watch.waitFor((r) => r.kind === 'console' && r.text.includes(url) && CORS_BLOCK.test(r.text), {
        message: `a CORS console error naming ${url}`,
      });
      assert.match(message.text, new RegExp(`from origin '${other.origin}'`));
      const failed = await watch.waitFor((r) => r.kind === 'requestfailed' && r.url.startsWith(url), {
        message: `the failed request to ${url}`,
      });
      assert.equal(failed.text, 'net::ERR_FAILED', `a CORS block, not ${failed.text}`);
      assert.ok(expectation.matches.includes(message) && expectation.matches.includes(failed), 'declared as expected');
    }

    // A preflighted request (bearer token): the preflight is refused, the POST never sent.
    const connectUrl = `${services.gameUrl}/v1/connect`;
    const connectBlocked = watch.expectFailure(connectUrl);
    const connect = await call(services.gameUrl, 'POST', '/v1/connect', { token });
    assert.deepEqual([connect.error, connect.message], ['TypeError', 'Failed to fetch'], JSON.stringify(connect));
    await assertCorsBlocked(connectBlocked, connectUrl);
    const me = await h.request(`${services.gameUrl}/v1/me`, { token });
    assert.equal(me.status, 200);
    assert.equal(me.json.session ?? null, null, 'the blocked POST /v1/connect never reached the service');
    // From Node, with the same Origin: the refused preflight, and the request itself answered.
    const preflight = await fromNode(connectUrl, {
      method: 'OPTIONS',
      headers: { 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    assert.equal(preflight.status, 400, 'a refused preflight');
    assert.equal(preflight.headers.get('access-control-allow-origin'), null);
    const connectNode = await fromNode(connectUrl, { method: 'POST', token });
    assert.equal(connectNode.status, 200, connectNode.text);
    assert.equal(connectNode.json.session.reason, 'no_partner');
    assert.equal(connectNode.headers.get('access-control-allow-origin'), null, 'answered without CORS headers');

    // The IM service too.
    const conversationsUrl = `${services.imUrl}/v1/conversations`;
    const conversationsBlocked = watch.expectFailure(conversationsUrl);
    const conversations = await call(services.imUrl, 'GET', '/v1/conversations', { token });
    assert.equal(conversations.error, 'TypeError', JSON.stringify(conversations));
    await assertCorsBlocked(conversationsBlocked, conversationsUrl);
    const conversationsNode = await fromNode(conversationsUrl, { token });
    assert.equal(conversationsNode.status, 200, conversationsNode.text);
    assert.equal(conversationsNode.headers.get('access-control-allow-origin'), null);

    // A simple request (no preflight): the service answers, the browser withholds the answer.
    const healthUrl = `${services.gameUrl}/healthz`;
    const healthBlocked = watch.expectFailure(healthUrl);
    const health = await call(services.gameUrl, 'GET', '/healthz');
    assert.equal(health.error, 'TypeError', JSON.stringify(health));
    await assertCorsBlocked(healthBlocked, healthUrl);
    const healthNode = await fromNode(healthUrl);
    assert.equal(healthNode.status, 200);
    assert.equal(healthNode.headers.get('access-control-allow-origin'), null);

    // The EventSource, with a valid ticket: an error and CLOSED, never open.
    const issued = await h.request(`${services.gameUrl}/v1/events/tickets`, { method: 'POST', token });
    assert.equal(issued.status, 201, issued.text);
    const eventsUrl = `${services.gameUrl}/v1/events?ticket=${encodeURIComponent(issued.json.ticket)}`;
    const streamBlocked = watch.expectFailure(`${services.gameUrl}/v1/events`);
    await page.evaluate((url) => window.openStream('blocked', url), eventsUrl);
    await page.waitForFunction(() => window.streams.blocked.errors > 0, null, { timeout: 10_000 });
    await assertCorsBlocked(streamBlocked, `${services.gameUrl}/v1/events`);
    // From Node the same URL opens the stream and delivers the next event.
    const nodeStream = await h.nodeEventStream(eventsUrl, { headers: { origin: other.origin } });
    try {
      assert.equal(nodeStream.status, 200);
      assert.match(nodeStream.headers.get('content-type') ?? '', /^text\/event-stream/);
      assert.equal(nodeStream.headers.get('access-control-allow-origin'), null);
      const left = await h.request(`${services.gameUrl}/v1/sessions/${connectNode.json.session.id}/leave`, { method: 'POST', token });
      assert.equal(left.status, 200, left.text);
      const ended = await nodeStream.next((e) => e.event === 'session' && e.data.state === 'ended');
      assert.equal(ended.data.id, connectNode.json.session.id);
    } finally {
      nodeStream.close();
    }
    const blocked = await stream(page, 'blocked');
    assert.equal(blocked.opened, false, 'the EventSource never opened');
    assert.equal(blocked.state, 2, 'CLOSED: the browser does not retry a CORS failure');
    assert.deepEqual(blocked.events, [], 'the page got no event');

    // The IM service's stream, with its own valid ticket: blocked the same way.
    const imIssued = await h.request(`${services.imUrl}/v1/events/tickets`, { method: 'POST', token });
    assert.equal(imIssued.status, 201, imIssued.text);
    const imEventsUrl = `${services.imUrl}/v1/events?ticket=${encodeURIComponent(imIssued.json.ticket)}`;
    const imStreamBlocked = watch.expectFailure(`${services.imUrl}/v1/events`);
    await page.evaluate((url) => window.openStream('chat-blocked', url), imEventsUrl);
    await page.waitForFunction(() => window.streams['chat-blocked'].errors > 0, null, { timeout: 10_000 });
    await assertCorsBlocked(imStreamBlocked, `${services.imUrl}/v1/events`);
    const imNode = await h.nodeEventStream(imEventsUrl, { headers: { origin: other.origin } });
    try {
      assert.equal(imNode.status, 200, 'from Node the same IM stream opens');
      assert.equal(imNode.headers.get('access-control-allow-origin'), null);
    } finally {
      imNode.close();
    }
    const imBlocked = await stream(page, 'chat-blocked');
    assert.equal(imBlocked.opened, false, 'the IM EventSource never opened');
    assert.equal(imBlocked.state, 2);

    // Control: a refused connection fails differently, so the checks above tell a CORS block apart.
    const closedPort = await h.freePort();
    const refusedUrl = `http://127.0.0.1:${closedPort}/v1/connect`;
    const refusedExpected = watch.expectFailure(refusedUrl);
    const refusedCall = await call(`http://127.0.0.1:${closedPort}`, 'GET', '/v1/connect');
    assert.equal(refusedCall.error, 'TypeError');
    const refused = await watch.waitFor((r) => r.kind === 'requestfailed' && r.url === refusedUrl, { message: 'the refused request' });
    assert.equal(refused.text, 'net::ERR_CONNECTION_REFUSED');
    assert.ok(!refusedExpected.matches.some((r) => CORS_BLOCK.test(r.text)), 'no CORS message for a refused connection');

    await h.screenshot(page, 'cross-origin-blocked');
    watch.assertClean();
    await page.close();
  });
});
