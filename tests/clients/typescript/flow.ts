// The whole flow through a TypeScript client: `paths` types generated from
// openapi/*.json by openapi-typescript (into generated/, at test time) and the
// openapi-fetch runtime client. scripts/clients_check.sh type-checks this file
// (strict: a schema change that breaks a call fails the check), compiles it
// with tsc and runs it with node:
//
//   node dist/flow.js GAME_URL IM_URL     (JWT_SECRET set, XTASK = the xtask binary)
//
// The same flow as tests/clients/python/flow.py (docs/CONTRACT.md, "The flow").
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import assert from "node:assert/strict";
import createClient from "openapi-fetch";
import type { components as Game, paths as GamePaths } from "./generated/game.js";
import type { paths as ImPaths } from "./generated/im.js";

type PlayerState = Game["schemas"]["PlayerState"];
type Session = Game["schemas"]["Session"];
type Prompt = Game["schemas"]["Prompt"];

function required(value: string | undefined): string {
  if (!value) throw new Error("usage: XTASK=… JWT_SECRET=… node dist/flow.js GAME_URL IM_URL");
  return value;
}
const gameUrl = required(process.argv[2]);
const imUrl = required(process.argv[3]);
const xtask = required(process.env.XTASK);
const run = randomBytes(4).toString("hex"); // fresh users: the services may have seen others

interface Sent {
  method: string;
  path: string;
  body: string;
}

class Player {
  readonly id: string;
  readonly sent: Sent[] = [];
  readonly game;
  readonly im;

  constructor(name: string) {
    this.id = `${name}-${run}`;
    const token = execFileSync(xtask, ["token", this.id, "--ttl", "600"], { encoding: "utf8" }).trim();
    const headers = { Authorization: `Bearer ${token}` };
    const recording = async (request: Request): Promise<Response> => {
      const body = request.body === null ? "" : await request.clone().text();
      this.sent.push({ method: request.method, path: new URL(request.url).pathname, body });
      return fetch(request);
    };
    this.game = createClient<GamePaths>({ baseUrl: gameUrl, headers, fetch: recording });
    this.im = createClient<ImPaths>({ baseUrl: imUrl, headers });
  }
}

/** The answer's data after checking its status (openapi-fetch: `data` on 2xx, `error` otherwise). */
function expect<T>(result: { data?: T; error?: unknown; response: Response }, status: number): T {
  assert.equal(result.response.status, status, `${result.response.url}: ${JSON.stringify(result.error)}`);
  assert.ok(result.data !== undefined, `${result.response.url}: no data`);
  return result.data;
}

function present<T>(value: T | null | undefined, what: string): T {
  assert.ok(value !== null && value !== undefined, `expected ${what}`);
  return value;
}

async function chatting(a: Player, b: Player): Promise<void> {
  for (const p of [a, b]) {
    const presence = expect(await p.im.PUT("/v1/presence", { body: { status: "available" } }), 200);
    assert.equal(presence.status, "available");
  }
  const chat = expect(await a.im.POST("/v1/conversations", { body: { participants: [b.id] } }), 201);
  assert.deepEqual([...chat.participants].sort(), [a.id, b.id].sort());
  for (const [p, text] of [[a, "play?"], [b, "sure"]] as const) {
    const message = expect(
      await p.im.POST("/v1/conversations/{id}/messages", { params: { path: { id: chat.id } }, body: { text } }),
      201,
    );
    assert.equal(message.text, text);
  }
}

async function invited(host: Player, guest: Player, withSubset?: string[]): Promise<Session> {
  const state: PlayerState = expect(await host.game.POST("/v1/connect"), 200);
  const prompt = present(state.prompt, "an invite prompt");
  assert.equal(prompt.kind, "invite");
  assert.deepEqual(prompt.candidates, [guest.id]);
  const path = { path: { id: prompt.id } };
  let answered;
  if (withSubset === undefined) {
    // No body at all: the document says the body is optional.
    answered = await host.game.POST("/v1/prompts/{id}/accept", { params: path });
    assert.deepEqual(host.sent.at(-1), { method: "POST", path: `/v1/prompts/${prompt.id}/accept`, body: "" });
  } else {
    answered = await host.game.POST("/v1/prompts/{id}/accept", { params: path, body: { with: withSubset } });
  }
  const lobby = present(expect(answered, 200).session, "a lobby");
  assert.equal(lobby.kind, "multiplayer");
  assert.equal(lobby.state, "waiting");
  assert.deepEqual([lobby.host, lobby.players, lobby.pending], [host.id, [host.id], [guest.id]]);
  return lobby;
}

async function joinPrompt(guest: Player, host: Player, lobby: Session): Promise<Prompt> {
  const state = expect(await guest.game.POST("/v1/connect"), 200);
  const prompt = present(state.prompt, "a join prompt");
  assert.equal(prompt.kind, "join");
  assert.deepEqual([prompt.host, prompt.session_id], [host.id, lobby.id]);
  return prompt;
}

async function acceptedFlow(): Promise<void> {
  const alice = new Player("alice");
  const bob = new Player("bob");
  await chatting(alice, bob);
  const lobby = await invited(alice, bob);
  const prompt = await joinPrompt(bob, alice, lobby);
  const joined = expect(await bob.game.POST("/v1/prompts/{id}/accept", { params: { path: { id: prompt.id } } }), 200);
  assert.equal(present(joined.session, "the session").id, lobby.id);
  for (const p of [alice, bob]) {
    const state = expect(await p.game.GET("/v1/me"), 200);
    assert.ok(state.prompt === null || state.prompt === undefined, "no prompt left open");
    const session = present(state.session, "the session");
    assert.equal(session.id, lobby.id);
    assert.equal(session.state, "active");
    assert.deepEqual([...session.players].sort(), [alice.id, bob.id].sort());
    assert.ok(session.join_token.length > 0, "a player of an active session has a join token");
    const read = expect(await p.game.GET("/v1/sessions/{id}", { params: { path: { id: lobby.id } } }), 200);
    assert.deepEqual([read.id, read.state], [lobby.id, "active"]);
  }
  console.log(`ok    accepted: both players see one active session ${lobby.id}`);
}

async function rejectedFlow(): Promise<void> {
  const carol = new Player("carol");
  const dave = new Player("dave");
  await chatting(carol, dave);
  const lobby = await invited(carol, dave, [dave.id]);
  const prompt = await joinPrompt(dave, carol, lobby);
  const rejected = expect(await dave.game.POST("/v1/prompts/{id}/reject", { params: { path: { id: prompt.id } } }), 200);
  const solo = present(rejected.session, "the invitee's solo session");
  assert.deepEqual([solo.kind, solo.reason, solo.players], ["solo", "rejected", [dave.id]]);
  const host = present(expect(await carol.game.GET("/v1/me"), 200).session, "the host's session");
  assert.deepEqual([host.kind, host.reason, host.players], ["solo", "declined", [carol.id]]);
  console.log("ok    rejected: the invitee is solo (rejected), the host's lobby ends solo (declined)");
}

await acceptedFlow();
await rejectedFlow();
console.log("2 passed, 0 failed");
