// chat.js: the chat side of the page, on the IM service: own presence, the
// people one is talking with, conversations and their messages, kept up to
// date by the IM service's event stream (stream.js) and read again whenever
// that stream (re)opens.

import { byId, el, say } from "./dom.js";

export class Chat {
  /** `join()` is what a game message's Join button does (connect, in the game panel). */
  constructor(api, me, join) {
    this.api = api;
    this.me = me;
    this.join = join;
    this.selected = null; // the conversation shown, {id, participants}
    this.lastSeq = 0; // the newest message shown of it
    this.status = byId("chat-status");
    byId("presence").addEventListener("change", (event) => this.setPresence(event.target.value));
    byId("new-conversation").addEventListener("submit", (event) => this.open(event));
    byId("post").addEventListener("submit", (event) => this.post(event));
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

  /** An IM event: the views it concerns are read again (or extended). */
  async onEvent(name, data) {
    if (name === "message" && data.conversation_id === this.selected?.id) {
      await this.attempt(() => this.loadMessages());
    }
    if (name === "presence") {
      await this.attempt(async () => this.renderPartners((await this.api.partners(this.me)).partners));
    } else {
      // A message moves its conversation up; a conversation appeared or closed.
      await this.attempt(async () => this.renderConversations((await this.api.conversations()).conversations));
      // Someone's first answer can make them a partner.
      if (name === "message") {
        await this.attempt(async () => this.renderPartners((await this.api.partners(this.me)).partners));
      }
    }
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
    await this.refresh();
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
    const list = byId("partners");
    list.replaceChildren(
      ...partners.map((partner) =>
        el("li", {}, partner.user_id, " ", el("span", { class: `badge ${partner.status}` }, partner.status)),
      ),
    );
    say(byId("no-partners"), list.children.length ? "" : "Nobody yet: both sides post in a conversation to count.");
  }
}

function others(conversation, me) {
  return conversation.participants.filter((user) => user !== me).join(", ") || me;
}
