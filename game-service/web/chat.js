// chat.js: the chat side of the page, on the IM service: own presence, the
// people one is talking with, conversations and their messages. The IM
// service has no event stream yet, so the open views are refreshed by polling.

import { byId, el, say } from "./dom.js";

const POLL_MS = 2000;

export class Chat {
  constructor(api, me) {
    this.api = api;
    this.me = me;
    this.selected = null; // the conversation shown, {id, participants}
    this.lastSeq = 0; // the newest message shown of it
    this.timer = null;
    this.status = byId("chat-status");
    byId("presence").addEventListener("change", (event) => this.setPresence(event.target.value));
    byId("new-conversation").addEventListener("submit", (event) => this.open(event));
    byId("post").addEventListener("submit", (event) => this.post(event));
  }

  async start() {
    await this.attempt(async () => {
      byId("presence").value = (await this.api.presence(this.me)).status;
    });
    await this.refresh();
  }

  stop() {
    window.clearTimeout(this.timer);
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
    window.clearTimeout(this.timer);
    await this.attempt(async () => {
      const [{ conversations }, { partners }] = await Promise.all([
        this.api.conversations(),
        this.api.partners(this.me),
      ]);
      this.renderConversations(conversations);
      this.renderPartners(partners);
      if (this.selected) await this.loadMessages();
    });
    this.timer = window.setTimeout(() => this.refresh(), POLL_MS);
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
    const { messages } = await this.api.messages(this.selected.id, this.lastSeq);
    const list = byId("message-list");
    for (const message of messages) {
      list.append(
        el("li", { class: message.sender === this.me ? "mine" : "theirs" },
          el("span", { class: "sender" }, message.sender), " ", message.text),
      );
      this.lastSeq = Math.max(this.lastSeq, message.seq);
    }
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
