// chat.js: the chat side of the page, on the IM service: own presence, the
// people one is talking with, conversations and their messages, kept up to
// date by the IM service's event stream (stream.js) and read again whenever
// that stream (re)opens.

import { byId, el, say } from "./dom.js";

export class Chat {
  /** `join()` is what a game message's Join button does (connect, in the game panel);
   * `launched(state)` takes the game state "Play in this chat" answered. */
  constructor(api, me, join, launched) {
    this.api = api;
    this.me = me;
    this.join = join;
    this.launched = launched;
    this.selected = null; // the conversation shown, {id, participants}
    this.lastSeq = 0; // the newest message shown of it
    this.partnerIds = new Set(); // who is listed under "Talking with"
    this.conversations = new Map(); // the listed conversations by id
    this.status = byId("chat-status");
    byId("presence").addEventListener("change", (event) => this.setPresence(event.target.value));
    byId("new-conversation").addEventListener("submit", (event) => this.open(event));
    byId("post").addEventListener("submit", (event) => this.post(event));
    byId("launch").addEventListener("click", () => this.launch());
  }

  /** Starts a game for the shown conversation: its eligible participants are invited. */
  async launch() {
    if (!this.selected) return;
    try {
      this.launched(await this.api.launch(this.selected.id));
      say(this.status, "");
    } catch (error) {
      // 409 already_playing, nobody_to_invite, 503 game_unavailable: the detail says which.
      say(this.status, `Cannot start a game here: ${error.message}`);
    }
  }

  async start() {
    await this.attempt(async () => {
      byId("presence").value = (await this.api.presence(this.me)).status;
    });
  }

  stop() {}

  /** The IM stream's state: anything but live means the chat may be stale. */
  streamStatus(text) {
    say(this.status, text === "live" ? "" : `Chat unavailable: ${text}`);
  }

  /** An IM event: only the views it concerns are read again (or extended). */
  async onEvent(name, data) {
    if (name === "presence") {
      return this.attempt(() => this.loadPartners());
    }
    if (name === "message" && data.conversation_id === this.selected?.id) {
      await this.attempt(() => this.loadMessages());
    }
    // A message moves its conversation up; a conversation appeared or closed.
    await this.attempt(() => this.loadConversations());
    // A first message can make partners (talking takes two): only then are partners read again.
    if (name === "message" && data.kind !== "game" && this.mayMakePartners(data)) {
      await this.attempt(() => this.loadPartners());
    }
  }

  /** Whether `message` can have made someone a partner who is not listed yet. */
  mayMakePartners(message) {
    if (message.sender !== this.me) return !this.partnerIds.has(message.sender);
    const conversation = this.conversations.get(message.conversation_id);
    return !conversation || conversation.participants.some((user) => user !== this.me && !this.partnerIds.has(user));
  }

  /** Runs an IM call; a failure is shown in the chat's status line, never thrown. */
  async attempt(work) {
    try {
      const result = await work();
      say(this.status, "");
      return result;
    } catch (error) {
      say(this.status, `Chat unavailable: ${error.message}`);
      return undefined;
    }
  }

  async loadConversations() {
    this.renderConversations((await this.api.conversations()).conversations);
  }

  async loadPartners() {
    this.renderPartners((await this.api.partners(this.me)).partners);
  }

  async refresh() {
    await this.attempt(async () => {
      const [{ conversations }, { partners }] = await Promise.all([
        this.api.conversations(),
        this.api.partners(this.me),
      ]);
      this.renderConversations(conversations);
      this.renderPartners(partners);
      if (this.selected) await this.loadMessages();
    });
  }

  async setPresence(status) {
    await this.attempt(() => this.api.setPresence(status));
    await this.refresh();
  }

  async open(event) {
    event.preventDefault();
    const input = byId("participants");
    const participants = input.value.split(/[\s,]+/).filter(Boolean);
    if (participants.length === 0) return;
    const conversation = await this.attempt(() => this.api.openConversation(participants));
    if (!conversation) return;
    input.value = "";
    this.select(conversation);
    await this.refresh();
  }

  async post(event) {
    event.preventDefault();
    const input = byId("message-text");
    if (!this.selected || !input.value) return;
    const sent = await this.attempt(() => this.api.post(this.selected.id, input.value));
    if (!sent) return;
    input.value = "";
    // The stream tells the rest (the conversations' order, a new partner).
    await this.attempt(() => this.loadMessages());
  }

  select(conversation) {
    if (this.selected?.id !== conversation.id) {
      this.lastSeq = 0;
      byId("message-list").replaceChildren();
    }
    this.selected = conversation;
    byId("conversation-title").textContent = `With ${others(conversation, this.me)}`;
    byId("messages").hidden = false;
    byId("message-text").focus();
  }

  async loadMessages() {
    const shown = this.selected.id;
    const { messages } = await this.api.messages(shown, this.lastSeq);
    // Reads overlap (an event and one's own post): each message is shown once, in order.
    if (this.selected?.id !== shown) return;
    const list = byId("message-list");
    for (const message of messages.filter((m) => m.seq > this.lastSeq)) {
      list.append(message.kind === "game" ? this.gameItem(message) : this.textItem(message));
      this.lastSeq = Math.max(this.lastSeq, message.seq);
    }
  }

  textItem(message) {
    return el("li", { class: message.sender === this.me ? "mine" : "theirs" },
      el("span", { class: "sender" }, message.sender), " ", message.text);
  }

  /** A game announced in the conversation: who hosts it, and a button to join. */
  gameItem(message) {
    const { host, mode, state } = message.game;
    const mine = host === this.me;
    return el("li", { class: "game" },
      el("span", { class: "sender" }, "Game"), ` ${message.text} (${mode}, ${state}) `,
      mine ? null : el("button", { type: "button", onclick: () => this.join() }, `Join ${host}'s game`));
  }

  renderConversations(conversations) {
    this.conversations = new Map(conversations.map((conversation) => [conversation.id, conversation]));
    const list = byId("conversations");
    list.replaceChildren(
      ...conversations
        .filter((conversation) => !conversation.closed)
        .map((conversation) =>
          el("li", {},
            el("button", {
              type: "button",
              "aria-pressed": conversation.id === this.selected?.id,
              onclick: () => {
                this.select(conversation);
                this.refresh();
              },
            }, others(conversation, this.me))),
        ),
    );
    say(byId("no-conversations"), list.children.length ? "" : "No conversations yet.");
  }

  renderPartners(partners) {
    this.partnerIds = new Set(partners.map((partner) => partner.user_id));
    const list = byId("partners");
    list.replaceChildren(
      ...partners.map((partner) =>
        el("li", {}, partner.user_id, " ", el("span", { class: `badge ${partner.status}` }, partner.status),
          partner.activity?.kind === "in_game"
            ? el("span", { class: "badge in-game", title: `Playing ${partner.activity.mode} since ${partner.activity.since}` }, "in game")
            : null),
      ),
    );
    say(byId("no-partners"), list.children.length ? "" : "Nobody yet: both sides post in a conversation to count.");
  }
}

function others(conversation, me) {
  return conversation.participants.filter((user) => user !== me).join(", ") || me;
}
