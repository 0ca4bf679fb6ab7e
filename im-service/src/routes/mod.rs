//! HTTP routes, one module per resource, and the OpenAPI document describing them.

pub mod conversations;
pub mod partners;
pub mod presence;

use std::sync::Arc;

use actix_web::web;
use shared_types::{
    im::{
        Conversation, ConversationList, Message, MessagePage, NewConversation, NewMessage, Partner,
        PartnersResponse,
    },
    presence::{Presence, PresenceStatus, PresenceUpdate},
    problem::{CONTENT_TYPE as PROBLEM_JSON, Problem, ProblemCode},
};
use utoipa::{
    Modify, OpenApi,
    openapi::{
        self, ContentBuilder, HttpMethod, PathItem, Ref, RefOr, ResponseBuilder,
        header::HeaderBuilder,
        path::{Operation, OperationBuilder},
        schema::{ObjectBuilder, Type},
        security::{HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme},
    },
};

use crate::{
    domain::{ActiveWindow, Clock},
    store::Store,
};

/// What every handler shares, registered once as app data.
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub clock: Arc<dyn Clock>,
    /// `IM_ACTIVE_WINDOW_SECS`: the partners window when the query gives none.
    pub default_window: ActiveWindow,
}

/// Registers every `/v1` route.
pub fn configure(cfg: &mut web::ServiceConfig) {
    presence::configure(cfg);
    conversations::configure(cfg);
    partners::configure(cfg);
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "IM service",
        description = "Presence, conversations and messages, and the question the game service asks: \
who is this user talking to right now? Every `/v1` operation needs `Authorization: Bearer <JWT>` \
(HS256 by default; `scope` is `player` or `service`). Errors are RFC 9457 `application/problem+json` \
with a stable `type` and `code`. Timestamps are RFC 3339 UTC with millisecond precision."
    ),
    paths(
        presence::set_presence,
        presence::get_presence,
        conversations::create_conversation,
        conversations::list_conversations,
        conversations::post_message,
        conversations::list_messages,
        conversations::close_conversation,
        partners::get_partners,
        service_kit::ops::healthz,
        service_kit::ops::readyz,
    ),
    components(schemas(
        Presence,
        PresenceStatus,
        PresenceUpdate,
        Conversation,
        ConversationList,
        NewConversation,
        Message,
        MessagePage,
        NewMessage,
        Partner,
        PartnersResponse,
        Problem,
        ProblemCode,
    )),
    tags(
        (name = "presence", description = "Who is available"),
        (name = "conversations", description = "Conversations and their messages"),
        (name = "partners", description = "Who a user is talking to right now"),
        (name = "operations", description = "Health, readiness and metrics"),
    ),
    modifiers(&CommonResponses, &MetricsPath)
)]
pub struct ApiDoc;

/// The documented shape of a problem+json response.
pub(crate) fn problem_response(description: &str) -> openapi::Response {
    ResponseBuilder::new()
        .description(description)
        .content(
            PROBLEM_JSON,
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("Problem")))
                .build(),
        )
        .build()
}

/// Adds what every `/v1` operation shares: the bearer scheme, 401, 500 and 503 (with
/// `Retry-After`), and for operations with a JSON body 413 and 415.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT with `sub`, `exp`, `iss`, `aud` and `scope` (`player` or `service`)",
                    ))
                    .build(),
            ),
        );
        for (path, item) in doc.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for operation in operations(item) {
                operation.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
                let responses = &mut operation.responses.responses;
                let mut add = |status: &str, response: openapi::Response| {
                    responses
                        .entry(status.to_owned())
                        .or_insert(RefOr::T(response));
                };
                add(
                    "401",
                    problem_response("Missing, expired, forged or wrong-audience bearer token"),
                );
                add("500", problem_response("Unexpected error (logged)"));
                let mut unavailable =
                    problem_response("The store is unreachable; nothing was changed. Retry later.");
                unavailable.headers.insert(
                    "Retry-After".to_owned(),
                    RefOr::T(
                        HeaderBuilder::new()
                            .schema(Some(
                                ObjectBuilder::new().schema_type(Type::Integer).build(),
                            ))
                            .description(Some("Seconds to wait before retrying"))
                            .build(),
                    ),
                );
                add("503", unavailable);
                if operation.request_body.is_some() {
                    add("413", problem_response("The body is larger than 16 KiB"));
                    add("415", problem_response("The body is not application/json"));
                }
            }
        }
    }
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.patch.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// `/metrics` is served by the Prometheus middleware, not by a handler: document it here.
struct MetricsPath;

impl Modify for MetricsPath {
    fn modify(&self, doc: &mut openapi::OpenApi) {
        let operation = OperationBuilder::new()
            .tags(Some(["operations"]))
            .summary(Some("Prometheus metrics"))
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
