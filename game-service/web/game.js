// game.js: the game side of the page: Play, the invite and join pop-ups as
// prompts arrive, the session panel and the degraded banner. Renders the
// player's state from connect/me answers and from stream events.

import { byId, el, say, secondsUntil } from "./dom.js";

// Why a prompt closed without an answer (the `reason` of `prompt_cancelled`).
const CLOSED = {
  expired: "time ran out (expired)",
  superseded: "a partner invited you first (superseded)",
  withdrawn: "the game was called off (withdrawn)",
  full: "the game filled up before you answered (full)",
  unavailable: "you went offline in the chat (unavailable)",
};

export class Game {
  constructor(api, me) {
    this.api = api;
    this.me = me;
    this.prompt = null;
    this.session = null; // the newest session seen, kept on screen after it ends
    this.degraded = false;
    this.ticker = null;
    byId("play").addEventListener("click", () => this.play());
    byId("leave").addEventListener("click", () => this.run(() => this.api.leave(this.session.id)));
    byId("show-prompt").addEventListener("click", () => this.showPrompt());
    byId("invite-accept").addEventListener("click", () => this.answer(true));
    byId("invite-reject").addEventListener("click", () => this.answer(false));
    byId("join-accept").addEventListener("click", () => this.answer(true));
    byId("join-reject").addEventListener("click", () => this.answer(false));
    byId("invite-candidates").addEventListener("change", () => this.checkSelection());
    this.ticker = window.setInterval(() => this.tick(), 250);
  }

  stop() {
    window.clearInterval(this.ticker);
  }

  /** Connects: the prompt or session the game service has for the player. */
  play() {
    return this.run(() => this.api.connect());
  }

  /** Calls the game service and renders its `PlayerState` answer. */
  async run(call) {
    try {
      this.apply(await call());
      say(byId("game-status"), "");
    } catch (error) {
      say(byId("game-status"), error.message);
    }
  }

  async resync() {
    await this.run(() => this.api.me());
  }

  apply(state) {
    this.degraded = state.degraded;
    if (state.session || !this.session || this.session.state !== "ended") this.session = state.session;
    this.setPrompt(state.prompt);
    this.render();
  }

  onEvent(name, data) {
    if (name === "prompt") {
      this.setPrompt(data);
    } else if (name === "prompt_cancelled" && this.prompt?.id === data.prompt_id) {
      this.setPrompt(null);
      say(byId("game-status"), `Your ${this.lastPromptKind} prompt closed: ${CLOSED[data.reason] ?? data.reason}.`);
    } else if (name === "session") {
      // A fallback session says so; any other session means the IM service answered.
      this.degraded = data.reason === "im_unavailable";
      this.session = data;
    }
    this.render();
  }

  setPrompt(prompt) {
    const changed = prompt?.id !== this.prompt?.id;
    this.prompt = prompt ?? null;
    if (prompt) this.lastPromptKind = prompt.kind;
    if (changed) this.showPrompt();
  }

  /** Opens the pop-up of the open prompt (and closes the other one). */
  showPrompt() {
    const invite = byId("invite-dialog");
    const join = byId("join-dialog");
    if (invite.open) invite.close();
    if (join.open) join.close();
    const prompt = this.prompt;
    if (!prompt) return;
    if (prompt.kind === "invite") {
      byId("invite-candidates").replaceChildren(
        ...prompt.candidates.map((user) =>
          el("label", {}, el("input", { type: "checkbox", name: "with", value: user, checked: true }), ` ${user}`),
        ),
      );
      this.checkSelection();
      invite.showModal();
    } else {
      byId("join-host").textContent = prompt.host ?? prompt.candidates[0];
      join.showModal();
    }
    this.tick();
  }

  checkSelection() {
    byId("invite-accept").disabled = this.chosen().length === 0;
  }

  chosen() {
    return [...byId("invite-candidates").querySelectorAll("input:checked")].map((box) => box.value);
  }

  async answer(accept) {
    const prompt = this.prompt;
    if (!prompt) return;
    const players = prompt.kind === "invite" ? this.chosen() : null;
    // Everyone proposed stays invited: no body, as the API's default.
    const selection = players && players.length < prompt.candidates.length ? players : undefined;
    await this.run(() => (accept ? this.api.accept(prompt.id, selection) : this.api.reject(prompt.id)));
  }

  /** Counts down to the open prompt's `expires_at`, in the pop-up and the panel. */
  tick() {
    const left = this.prompt ? secondsUntil(this.prompt.expires_at) : 0;
    const text = left > 0 ? `${left} s left to answer` : "Time is up: the service is closing this prompt…";
    for (const id of ["invite-countdown", "join-countdown", "prompt-countdown"]) byId(id).textContent = text;
  }

  render() {
    byId("degraded").hidden = !this.degraded;
    const prompt = this.prompt;
    byId("open-prompt").hidden = !prompt;
    if (prompt) {
      byId("prompt-summary").textContent =
        prompt.kind === "invite"
          ? `Invitation to play with ${prompt.candidates.join(", ")}`
          : `${prompt.host ?? prompt.candidates[0]} invites you to join their game`;
    }
    const session = this.session;
    byId("session").hidden = !session;
    byId("leave").hidden = !session || session.state === "ended";
    if (!session) return;
    const fields = {
      "session-state": session.state,
      "session-kind": session.kind,
      "session-players": session.players.join(", ") || "nobody",
      "session-pending": session.pending.join(", ") || "nobody",
      "session-reason": session.reason ?? "—",
      "session-ended": session.ended_reason ?? "—",
    };
    for (const [id, value] of Object.entries(fields)) byId(id).textContent = value;
  }
}
