// app.js: signs the player in with a token (pasted, picked from this tab's
// recent ones, or passed in the URL fragment, which browsers never send to a
// server), then starts the chat, the game panel and the event stream.

import { operations, service } from "./api.js";
import { Chat } from "./chat.js";
import { byId, el, say } from "./dom.js";
import { Game } from "./game.js";
import { EventFeed } from "./stream.js";

const RECENT_KEY = "play-from-chat.recent-tokens";

/** The claims of a JWT, unverified: only to show who is signed in. */
function claims(token) {
  try {
    const payload = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload));
  } catch {
    return null;
  }
}

function recentTokens() {
  try {
    const now = Date.now() / 1000;
    return JSON.parse(sessionStorage.getItem(RECENT_KEY) ?? "[]").filter(
      (token) => (claims(token)?.exp ?? 0) > now,
    );
  } catch {
    return [];
  }
}

function remember(token) {
  const tokens = [token, ...recentTokens().filter((other) => other !== token)].slice(0, 5);
  sessionStorage.setItem(RECENT_KEY, JSON.stringify(tokens));
}

function showSignIn(message) {
  byId("app").hidden = true;
  byId("account").hidden = true;
  byId("sign-in").hidden = false;
  say(byId("sign-in-status"), message);
  byId("recent").replaceChildren(
    ...recentTokens().map((token) =>
      el("li", {}, el("button", { type: "button", onclick: () => signIn(token) }, `Continue as ${claims(token).sub}`)),
    ),
  );
  byId("token").focus();
}

let config = { im_url: "" }; // config.json: where the browser reaches the IM service
let running = null; // {chat, game, feed} of the signed-in player

function signOut(message) {
  if (running) for (const part of Object.values(running)) part.stop();
  running = null;
  showSignIn(message);
}

function signIn(token) {
  const who = claims(token);
  if (!who?.sub) return showSignIn("That is not a token: paste the JWT of a player.");
  if ((who.exp ?? 0) <= Date.now() / 1000) return showSignIn(`The token of ${who.sub} has expired.`);
  remember(token);
  const api = operations(service("", () => token), service(config.im_url, () => token));
  byId("sign-in").hidden = true;
  byId("app").hidden = false;
  byId("account").hidden = false;
  byId("who").textContent = `Signed in as ${who.sub}`;
  const game = new Game(api, who.sub);
  const chat = new Chat(api, who.sub, () => game.play(), (state) => game.apply(state));
  const feed = new EventFeed("/v1/events", ["prompt", "prompt_cancelled", "session"], api.ticket, {
    event: (name, data) => game.onEvent(name, data),
    status: (text) => (byId("stream-status").textContent = `Events: ${text}`),
    // Whatever happened while the stream was down, the state is read again.
    opened: () => game.resync(),
    fatal: (error) => signOut(`Signed out: ${error.message}`),
  });
  const chatFeed = new EventFeed(`${config.im_url}/v1/events`, ["message", "conversation", "presence"], api.imTicket, {
    event: (name, data) => chat.onEvent(name, data),
    status: (text) => chat.streamStatus(text),
    // The chat is read again whenever its stream (re)opens: nothing missed stays missing.
    opened: () => chat.refresh(),
    fatal: (error) => chat.streamStatus(error.message),
  });
  running = { chat, game, feed, chatFeed };
  chat.start();
  feed.start();
  chatFeed.start();
}

async function main() {
  const response = await fetch("config.json", { cache: "no-store" });
  config = await response.json();
  byId("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn(byId("token").value.trim());
  });
  byId("sign-out").addEventListener("click", () => signOut(""));
  const fragment = new URLSearchParams(window.location.hash.slice(1));
  const token = fragment.get("token");
  if (token) {
    // Out of the address bar (and of screenshots); this tab remembers it.
    history.replaceState(null, "", window.location.pathname);
    signIn(token);
  } else {
    showSignIn("");
  }
}

main().catch((error) => showSignIn(`The page could not start: ${error.message}`));
