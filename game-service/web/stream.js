// stream.js: a user's event stream (the game service's or the IM service's),
// opened the browser way. An EventSource cannot send Authorization, so each
// (re)connection first asks for a ticket, then opens
// `GET /v1/events?ticket=…&last_event_id=…`, resuming right after the last
// event this page saw.

export class EventFeed {
  /**
   * @param {string} url  the service's `/v1/events`
   * @param {string[]} names  the event names to listen to
   * @param {() => Promise<{ticket: string}>} issueTicket  its `POST /v1/events/tickets`
   * @param {{event(name, data), status(text), opened(), fatal(error)}} on
   */
  constructor(url, names, issueTicket, on) {
    this.url = url;
    this.names = names;
    this.issueTicket = issueTicket;
    this.on = on;
    this.lastEventId = null;
    this.failures = 0;
    this.source = null;
    this.timer = null;
    this.stopped = false;
  }

  async start() {
    if (this.stopped) return;
    this.on.status(this.failures ? "reconnecting…" : "connecting…");
    let ticket;
    try {
      ({ ticket } = await this.issueTicket());
    } catch (error) {
      if (error.status === 401 || error.status === 403) return this.on.fatal(error);
      return this.retry();
    }
    if (this.stopped) return;
    const url = new URL(this.url, window.location.href);
    url.searchParams.set("ticket", ticket);
    if (this.lastEventId) url.searchParams.set("last_event_id", this.lastEventId);
    const source = new EventSource(url);
    this.source = source;
    source.onopen = () => {
      this.failures = 0;
      this.on.status("live");
      this.on.opened();
    };
    for (const name of this.names) {
      source.addEventListener(name, (message) => {
        if (message.lastEventId) this.lastEventId = message.lastEventId;
        this.on.event(name, JSON.parse(message.data));
      });
    }
    // The stream ended (replica draining, token expired) or never opened. The
    // ticket may have expired meanwhile: reconnect ourselves with a fresh one.
    source.onerror = () => {
      source.close();
      if (this.source === source) this.retry();
    };
  }

  /** Exponential backoff with jitter, 1 s to 30 s, so replicas are not stampeded. */
  retry() {
    if (this.stopped) return;
    this.failures += 1;
    this.on.status("reconnecting…");
    const ceiling = Math.min(30_000, 1000 * 2 ** (this.failures - 1));
    this.timer = window.setTimeout(() => this.start(), ceiling / 2 + Math.random() * (ceiling / 2));
  }

  stop() {
    this.stopped = true;
    window.clearTimeout(this.timer);
    this.source?.close();
    this.source = null;
  }
}
