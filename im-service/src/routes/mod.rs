//! HTTP routes, one module per resource, and the OpenAPI document describing them.

pub mod activity;
pub mod blocks;
pub mod conversations;
pub mod events;
pub mod feed;
pub mod games;
pub mod idempotency;
pub mod messages;
pub mod partners;
pub mod presence;

use std::sync::Arc;

use actix_web::web;
use service_kit::ops::{BearerSecurity, StandardResponses};
use shared_types::{
    activity::{Activity, ActivityReport, ActivityReports, PresenceChange, PresenceChanges},
    im::{
        Block, BlockList, Conversation, ConversationList, GameAnnouncement, ImEvent, LaunchGame,
        Message, MessageKind, MessagePage, NewConversation, NewMessage, Partner, PartnersResponse,
    },
    presence::{Presence, PresenceStatus, PresenceUpdate},
    problem::{Problem, ProblemCode},
};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        self, ContentBuilder, HttpMethod, PathItem, ResponseBuilder,
        path::OperationBuilder,
        schema::{ObjectBuilder, Type},
    },
};

use crate::{
    configuration::Limits,
    domain::{ActiveWindow, Clock},
    game_client::LobbyOpener,
    store::Store,
};

/// What every handler shares, registered once as app data.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// `IM_ACTIVE_WINDOW_SECS`: the partners window when the query gives none.
    pub default_window: ActiveWindow,
    /// The partners `limit` default and maximum (the store enforces the others itself).
    pub limits: Limits,
    /// Where a game launched from a conversation opens its lobby (the game service).
    pub lobbies: Arc<dyn LobbyOpener>,
}

/// Registers every `/v1` route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    presence::configure(cfg);
    activity::configure(cfg);
    feed::configure(cfg);
    conversations::configure(cfg);
    games::configure(cfg);
    partners::configure(cfg);
    blocks::configure(cfg);
    cfg.service(events::stream)
        .service(service_kit::tickets::issue_ticket);
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "IM service",
        description = "Presence, conversations and messages, and the question the game service asks: \
who is this user talking to right now? Talking takes two: a conversation makes two users partners, \
and lets each see the other's presence (their status, and their game activity as the game service reports it), once both have posted in it. Every `/v1` operation needs `Authorization: Bearer <JWT>` \
(HS256 by default; `scope` is `player` or `service`). Errors are RFC 9457 `application/problem+json` \
with a stable `type` and `code`. Timestamps are RFC 3339 UTC with millisecond precision. Browsers: with `CORS_ALLOWED_ORIGINS` set, the listed origins (exact, never a wildcard) may call every path; preflights are answered for every path; a page may send `authorization`, `content-type`, `idempotency-key`, `last-event-id` and `x-request-id` and read `x-request-id` and `retry-after`; no credentials (bearer tokens, not cookies). Another origin gets no CORS headers."
    ),
    paths(
        presence::set_presence,
        presence::get_presence,
        activity::put_activity,
        feed::presence_changes,
        conversations::create_conversation,
        conversations::list_conversations,
        messages::post_message,
        messages::list_messages,
        conversations::close_conversation,
        games::launch_game,
        partners::get_partners,
        blocks::put_block,
        blocks::delete_block,
        blocks::list_blocks,
        events::stream,
        service_kit::tickets::issue_ticket,
        service_kit::ops::healthz,
        service_kit::ops::readyz,
    ),
    components(schemas(
        Presence,
        PresenceStatus,
        PresenceUpdate,
        Activity,
        ActivityReport,
        ActivityReports,
        PresenceChange,
        PresenceChanges,
        Conversation,
        ConversationList,
        NewConversation,
        Message,
        MessagePage,
        NewMessage,
        MessageKind,
        GameAnnouncement,
        LaunchGame,
        Partner,
        PartnersResponse,
        Block,
        BlockList,
        ImEvent,
        events::ImEventFrame,
        events::ImEventName,
        shared_types::tickets::EventTicket,
        Problem,
        ProblemCode,
    )),
    tags(
        (name = "presence", description = "Who is available, and who is playing: the game service reports game activity and follows the presence feed"),
        (name = "conversations", description = "Conversations and their messages"),
        (name = "games", description = "Launching a game from a conversation (the IM service asks the game service)"),
        (name = "partners", description = "Who a user is talking to right now"),
        (name = "blocks", description = "Whom a player blocks"),
        (name = "events", description = "The user's IM events, pushed as server-sent events"),
        (name = "operations", description = "Health, readiness and metrics"),
    ),
    modifiers(&BearerSecurity, &StandardResponses, &MetricsPath, &OptionalBodies)
)]
pub struct ApiDoc;

/// `POST /v1/conversations/{id}/games` takes an optional body (see
/// [`service_kit::extract::mark_body_optional`]).
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        service_kit::extract::mark_body_optional(doc, "/v1/conversations/{id}/games");
    }
}

/// `/metrics` is served by the Prometheus middleware, not by a handler: document it here.
struct MetricsPath;

impl Modify for MetricsPath {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let operation = OperationBuilder::new()
            .tags(Some(["operations"]))
            .summary(Some("Prometheus metrics"))
            .description(Some("Request counts and latency histograms per route and status, in the Prometheus text format. Not rate limited."))
            .operation_id(Some("metrics"))
            .response(
                "200",
                ResponseBuilder::new()
                    .description("Request counts and latencies in the Prometheus text format")
                    .content(
                        "text/plain",
                        ContentBuilder::new()
                            .schema(Some(ObjectBuilder::new().schema_type(Type::String).build()))
                            .build(),
                    )
                    .build(),
            )
            .build();
        doc.paths.paths.insert(
            "/metrics".to_owned(),
            PathItem::new(HttpMethod::Get, operation),
        );
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use serde_json::{Value, json};

    #[test]
    fn the_launch_body_is_an_optional_launch_game() {
        let doc = serde_json::to_value(crate::openapi()).expect("the document serialises");
        let body = &doc["paths"]["/v1/conversations/{id}/games"]["post"]["requestBody"];
        assert_eq!(body["required"], Value::Bool(false), "{body}");
        assert_eq!(
            body["content"]["application/json"]["schema"],
            json!({"$ref": "#/components/schemas/LaunchGame"}),
            "{body}"
        );
    }
}
