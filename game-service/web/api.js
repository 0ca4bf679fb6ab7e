// api.js: the documented operations of both services (openapi/*.json), one
// function each. Every call names its method and path template exactly as the
// OpenAPI document does; a test checks each pair against the documents.

/** A problem+json answer (RFC 9457), or a network failure (status 0). */
export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.code = problem.code ?? (status === 0 ? "network" : "unknown");
    this.retryAfter = problem.retryAfter;
  }
}

/** A caller of one service at `base`, authenticated by `token()`. */
export function service(base, token) {
  return async function call(method, template, { path = {}, query = {}, body } = {}) {
    const url = new URL(
      base + template.replace(/\{(\w+)\}/g, (_, name) => encodeURIComponent(path[name])),
      window.location.href,
    );
    for (const [name, value] of Object.entries(query)) {
      if (value != null) url.searchParams.set(name, String(value));
    }
    const headers = { authorization: `Bearer ${token()}` };
    if (body !== undefined) headers["content-type"] = "application/json";
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (failure) {
      throw new ApiError(0, { detail: `${base || "the game service"} is unreachable (${failure.message})` });
    }
    if (!response.ok) {
      const problem = await response.json().catch(() => ({}));
      problem.retryAfter = Number(response.headers.get("retry-after")) || undefined;
      throw new ApiError(response.status, problem);
    }
    return response.status === 204 ? null : response.json();
  };
}

/** The operations the page uses: `game` is same-origin, `im` the IM service. */
export function operations(game, im) {
  return {
    // Game service.
    connect: () => game("POST", "/v1/connect"),
    me: () => game("GET", "/v1/me"),
    // An invite's optional body names the candidates to invite; a join has none.
    accept: (id, players) =>
      game("POST", "/v1/prompts/{id}/accept", {
        path: { id },
        body: players ? { with: players } : undefined,
      }),
    reject: (id) => game("POST", "/v1/prompts/{id}/reject", { path: { id } }),
    leave: (id) => game("POST", "/v1/sessions/{id}/leave", { path: { id } }),
    ticket: () => game("POST", "/v1/events/tickets"),
    // IM service.
    imTicket: () => im("POST", "/v1/events/tickets"),
    setPresence: (status) => im("PUT", "/v1/presence", { body: { status } }),
    presence: (userId) => im("GET", "/v1/users/{user_id}/presence", { path: { user_id: userId } }),
    partners: (userId) =>
      im("GET", "/v1/users/{user_id}/partners", { path: { user_id: userId }, query: { status: "available,busy,away,offline" } }),
    conversations: () => im("GET", "/v1/conversations"),
    openConversation: (participants) => im("POST", "/v1/conversations", { body: { participants } }),
    messages: (id, after) =>
      im("GET", "/v1/conversations/{id}/messages", { path: { id }, query: { after, limit: 200 } }),
    post: (id, text) => im("POST", "/v1/conversations/{id}/messages", { path: { id }, body: { text } }),
    // Answers the caller's game PlayerState: their lobby for the conversation.
    launch: (id) => im("POST", "/v1/conversations/{id}/games", { path: { id } }),
  };
}
