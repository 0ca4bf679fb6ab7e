// The reference web client (/play/) played by two people in two browser contexts, against the
// real binaries on Redis: chat, Play, the invite and join pop-ups, the session, a rejection,
// an expiry on screen, the IM service down, and the event stream resuming after a restart.
// Every test fails on any console error, page error or failed request it did not provoke.

import assert from 'node:assert/strict';
import { after, afterEach, before, test } from 'node:test';

import * as h from './harness.mjs';

after(h.teardown);
afterEach(h.reportFailure);
// After the failure report (hooks run in order): each test's pages and services go with it.
const ending = [];
afterEach(async () => {
  while (ending.length > 0) await ending.pop()();
});

let redis;
let browser;

before(async () => {
  redis = await h.startRedis();
  browser = await h.launchBrowser();
});

/** Both services on the shared Redis, the page allowed to call the IM service. */
async function world(game = {}) {
  const services = await h.startServices({
    redis,
    corsOrigins: ({ gameUrl }) => [gameUrl],
    env: ({ imUrl }) => ({ game: { PLAY_IM_URL: imUrl, ...game } }),
  });
  ending.push(() => services.stop());
  return services;
}

/** `name` signed in on /play/ in a browser context of their own, with the stream live. */
async function player(services, name) {
  // Tall enough for the whole page: a screenshot shows a pop-up over all of it.
  const context = await browser.newContext({ viewport: { width: 1000, height: 800 } });
  ending.push(() => context.close());
  const page = await context.newPage();
  const watch = h.watchPage(page);
  // Closing the context aborts the page's event stream: not a failure.
  watch.expectFailure(`${services.gameUrl}/v1/events?`, { kinds: ['requestfailed'], text: 'net::ERR_ABORTED' });
  let loads = 0;
  page.on('load', () => loads++);
  const token = await services.token(name);
  await page.goto(`${services.gameUrl}/play/#token=${token}`);
  await page.getByText(`Signed in as ${name}`).waitFor();
  await page.getByText('Events: live').waitFor();
  assert.equal(new URL(page.url()).hash, '', 'the token is moved out of the address bar');
  return { name, page, watch, token, loads: () => loads };
}

/** Both available, a conversation both posted in, each seeing the other as a partner. */
async function chat(alice, bob) {
  for (const { page } of [alice, bob]) await page.getByLabel('Presence').selectOption('available');
  await alice.page.getByLabel('Start a conversation with').fill(bob.name);
  await alice.page.getByRole('button', { name: 'Open' }).click();
  await say(alice, 'play?');
  await bob.page.getByRole('list', { name: 'Conversations' }).getByRole('button', { name: alice.name }).click();
  await bob.page.getByRole('log').getByText('play?').waitFor();
  await say(bob, 'sure');
  await alice.page.getByRole('log').getByText('sure').waitFor();
  for (const [me, other] of [[alice, bob], [bob, alice]]) {
    await me.page.getByRole('list', { name: 'Talking with' }).getByText(other.name).waitFor();
  }
}

async function say({ page }, text) {
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByRole('button', { name: 'Send' }).click();
}

const inviteDialog = (page) => page.getByRole('dialog', { name: 'Play with your chat partners?' });
const joinDialog = (page, host) => page.getByRole('dialog', { name: `${host} invites you to play` });

/** Waits until the session panel shows these fields (ids `session-<field>`). */
async function sessionShows({ page }, fields) {
  for (const [field, text] of Object.entries(fields)) {
    await page.locator(`#session-${field}`).getByText(text, { exact: true }).waitFor();
  }
}

/** The player's state as the game service has it, asked from Node. */
async function me(services, { token }) {
  const answer = await h.request(`${services.gameUrl}/v1/me`, { token });
  assert.equal(answer.status, 200);
  return answer.json;
}

test('alice and bob chat, press Play, answer the pop-ups and both see one active session', async () => {
  const services = await world();
  const alice = await player(services, 'alice');
  const bob = await player(services, 'bob');
  await chat(alice, bob);

  await alice.page.getByRole('button', { name: 'Play', exact: true }).click();
  const invite = inviteDialog(alice.page);
  await invite.waitFor();
  assert.equal(await invite.getByLabel('bob').isChecked(), true, 'the invite proposes bob, checked');
  await invite.getByText(/\d+ s left to answer/).waitFor();
  await h.screenshot(alice.page, 'invite-popup');
  await invite.getByRole('button', { name: 'Accept' }).click();
  await invite.waitFor({ state: 'hidden' });
  await sessionShows(alice, { state: 'waiting', players: 'alice', pending: 'bob' });

  await bob.page.getByRole('button', { name: 'Play', exact: true }).click();
  const join = joinDialog(bob.page, 'alice');
  await join.waitFor();
  await h.screenshot(bob.page, 'join-popup');
  // Keyboard only: the modal pop-up takes the focus on its first button, Accept.
  assert.equal(await bob.page.evaluate(() => document.activeElement?.id), 'join-accept');
  await bob.page.keyboard.press('Enter');
  await join.waitFor({ state: 'hidden' });

  // Alice learns it from her event stream: nobody reloads.
  for (const p of [alice, bob]) await sessionShows(p, { state: 'active', kind: 'multiplayer', players: 'alice, bob' });
  await h.screenshot(alice.page, 'both-playing');
  const [aliceState, bobState] = [await me(services, alice), await me(services, bob)];
  assert.equal(aliceState.session.state, 'active');
  assert.equal(aliceState.session.id, bobState.session.id);
  for (const p of [alice, bob]) {
    assert.equal(p.loads(), 1, `${p.name}'s page loaded once`);
    p.watch.assertClean();
  }
});

test("bob rejects: alice's lobby turns solo with its reason, bob plays solo", async () => {
  const services = await world();
  const alice = await player(services, 'alice');
  const bob = await player(services, 'bob');
  await chat(alice, bob);

  await alice.page.getByRole('button', { name: 'Play', exact: true }).click();
  await inviteDialog(alice.page).getByRole('button', { name: 'Accept' }).click();
  await sessionShows(alice, { state: 'waiting', pending: 'bob' });
  await bob.page.getByRole('button', { name: 'Play', exact: true }).click();
  await joinDialog(bob.page, 'alice').getByRole('button', { name: 'Reject' }).click();

  await sessionShows(alice, { state: 'active', kind: 'solo', players: 'alice', pending: 'nobody', reason: 'declined' });
  await sessionShows(bob, { state: 'active', kind: 'solo', players: 'bob', reason: 'rejected' });
  assert.equal((await me(services, alice)).session.reason, 'declined');
  for (const p of [alice, bob]) p.watch.assertClean();
});

test('an invite nobody answers counts down and expires on screen', async () => {
  const services = await world({ INVITE_TTL_SECS: '3' });
  const alice = await player(services, 'alice');
  const bob = await player(services, 'bob');
  await chat(alice, bob);

  await alice.page.getByRole('button', { name: 'Play', exact: true }).click();
  const invite = inviteDialog(alice.page);
  await invite.getByText(/[1-3] s left to answer/).waitFor();
  // The pop-up closes by itself when the service says the prompt expired.
  await invite.waitFor({ state: 'hidden', timeout: 15_000 });
  await alice.page.getByText('Your invite prompt closed: time ran out (expired).').waitFor();
  await sessionShows(alice, { state: 'active', kind: 'solo', reason: 'expired' });
  assert.equal((await me(services, alice)).session.reason, 'expired');
  for (const p of [alice, bob]) p.watch.assertClean();
});

test('with the IM service down the page says degraded and plays solo; the chat comes back by itself', async () => {
  const services = await world();
  const alice = await player(services, 'alice');

  const imDown = alice.watch.expectFailure(`${services.imUrl}/`);
  const refusedLogs = alice.watch.expectFailure('net::ERR_CONNECTION_REFUSED', { kinds: ['console'] });
  await services.stopIm();
  await alice.page.getByText(/^Chat unavailable: /).waitFor();
  await alice.page.getByRole('button', { name: 'Play', exact: true }).click();
  await alice.page.getByRole('alert').getByText('The chat service cannot be reached').waitFor();
  await sessionShows(alice, { state: 'active', kind: 'solo', reason: 'im_unavailable' });
  await h.screenshot(alice.page, 'degraded');
  assert.equal((await me(services, alice)).degraded, true);
  // The page keeps trying the IM service (its stream reconnects), and fails, as declared.
  await alice.watch.waitFor((r) => r.expected && r.kind === 'requestfailed' && r.url.startsWith(`${services.imUrl}/`), {
    message: 'a failed request to the stopped IM service',
  });
  assert.ok(imDown.matches.length > 0);

  await services.startIm();
  await alice.page.getByText(/^Chat unavailable: /).waitFor({ state: 'hidden', timeout: 15_000 });
  imDown.done();
  refusedLogs.done();
  alice.watch.assertClean();
});

test('a game announced in the conversation shows live with a Join button that connects', async () => {
  const services = await world();
  const alice = await player(services, 'alice');
  const bob = await player(services, 'bob');
  await chat(alice, bob);
  const { conversations } = (await h.request(`${services.imUrl}/v1/conversations`, { token: alice.token })).json;
  // What the game service posts when alice's lobby opens (a service token may, nobody else).
  const posted = await h.request(`${services.imUrl}/v1/conversations/${conversations[0].id}/messages`, {
    method: 'POST',
    token: await services.token('game-service', { service: true }),
    body: {
      text: 'alice opened a game',
      kind: 'game',
      game: { session_id: '0b9b5ce1-55a3-4b8c-a1f5-6d1c3b2a9e10', host: 'alice', mode: 'default', state: 'waiting' },
    },
  });
  assert.equal(posted.status, 201, posted.text);
  // Both see it without reloading; only bob, who is not its host, gets a Join button.
  const log = (p) => p.page.getByRole('log');
  for (const p of [alice, bob]) await log(p).getByText('alice opened a game (default, waiting)').waitFor();
  assert.equal(await log(alice).getByRole('button').count(), 0, 'no Join button for the host');
  await log(bob).getByRole('button', { name: "Join alice's game" }).click();
  // Join connects: bob, who talks with alice, is asked to play with her.
  await inviteDialog(bob.page).getByLabel('alice').waitFor();
  for (const p of [alice, bob]) {
    assert.equal(p.loads(), 1);
    p.watch.assertClean();
  }
});

test('"Play in this chat" opens a lobby for the conversation: bob is asked at once and both play', async () => {
  const services = await world();
  const alice = await player(services, 'alice');
  const bob = await player(services, 'bob');
  await chat(alice, bob);

  await alice.page.getByRole('button', { name: 'Play in this chat' }).click();
  await sessionShows(alice, { state: 'waiting', players: 'alice', pending: 'bob' });
  // bob pressed nothing: the join prompt reached his page through the stream.
  const join = joinDialog(bob.page, 'alice');
  await join.waitFor();
  // The lobby is announced in the conversation, live on both pages.
  for (const p of [alice, bob]) await p.page.getByRole('log').getByText(/alice started a game \(default\)/).waitFor();
  await join.getByRole('button', { name: 'Accept' }).click();
  for (const p of [alice, bob]) await sessionShows(p, { state: 'active', players: 'alice, bob' });
  // Playing shows in the chat: each sees the other "in game", live from the IM stream.
  for (const [me, other] of [[alice, bob], [bob, alice]]) {
    await me.page.getByRole('list', { name: 'Talking with' }).getByRole('listitem').filter({ hasText: other.name }).getByText('in game').waitFor();
  }
  // Again while playing: the page says why not, and nothing changes.
  const refused = alice.watch.expectFailure(/\/v1\/conversations\/[^/]+\/games|409/);
  await alice.page.getByRole('button', { name: 'Play in this chat' }).click();
  await alice.page.getByText(/Cannot start a game here: .*already/).waitFor();
  assert.ok(refused.matches.some((r) => r.status === 409), 'the 409 came from the IM service');
  assert.equal((await me(services, alice)).session.state, 'active');
  for (const p of [alice, bob]) {
    assert.equal(p.loads(), 1);
    p.watch.assertClean();
  }
});

test('after a game-service restart the stream resumes right after the last event the page saw', async () => {
  const services = await world();
  const alice = await player(services, 'alice');
  // Talking to nobody: a solo session, announced on alice's stream.
  await alice.page.getByRole('button', { name: 'Play', exact: true }).click();
  await sessionShows(alice, { state: 'active', reason: 'no_partner' });
  const replay = await h.nodeEventStream(`${services.gameUrl}/v1/events`, {
    token: alice.token,
    headers: { 'last-event-id': '0' },
  });
  const lastSeen = await replay.next((event) => event.event === 'session');
  replay.close();

  const streams = [];
  alice.page.on('request', (request) => {
    const url = new URL(request.url());
    if (url.pathname === '/v1/events') streams.push(url);
  });
  const gameDown = alice.watch.expectFailure(`${services.gameUrl}/`);
  const refusedLogs = alice.watch.expectFailure('net::ERR_CONNECTION_REFUSED', { kinds: ['console'] });
  await services.stopGame();
  await alice.page.getByText('Events: reconnecting…').waitFor();
  await services.startGame();
  await alice.page.getByText('Events: live').waitFor({ timeout: 30_000 });
  gameDown.done();
  refusedLogs.done();

  const resumed = streams.at(-1);
  assert.ok(resumed, 'the page opened its stream again');
  assert.ok(resumed.searchParams.get('ticket'), 'with a ticket');
  assert.equal(resumed.searchParams.get('last_event_id'), lastSeen.id);
  // And the stream is live: leaving shows the session ended, without a reload.
  await alice.page.getByRole('button', { name: 'Leave' }).click();
  await sessionShows(alice, { state: 'ended', ended: 'left' });
  assert.equal(alice.loads(), 1);
  alice.watch.assertClean();
});
