//! The OpenAPI document, generated from the route annotations.

use service_kit::ops::{BearerSecurity, HealthReport, StandardResponses};
use shared_types::{
    game::{
        AcceptBody, ConnectBody, EndBody, EndedReason, GameEvent, JoinTokenError, NewLobby,
        Outcome, PlayerState, Prompt, PromptCancelled, PromptKind, Reason, Session, SessionKind,
        SessionState, Verification, VerifyBody,
    },
    problem::{Problem, ProblemCode},
};
use utoipa::{Modify, OpenApi};

use crate::routes;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "game-service",
        description = "Launch a game session straight from a chat: connect, answer invite and join prompts, follow the session, stream events (browsers open the stream with a ticket from `POST /v1/events/tickets`). Browsers: with `CORS_ALLOWED_ORIGINS` set, the listed origins (exact, never a wildcard) may call every path; preflights are answered for every path; a page may send `authorization`, `content-type`, `idempotency-key`, `last-event-id` and `x-request-id` and read `x-request-id` and `retry-after`; no credentials (bearer tokens, not cookies). Another origin gets no CORS headers.",
        version = "1.0.0"
    ),
    paths(
        routes::players::connect,
        routes::players::me,
        routes::prompts::accept,
        routes::prompts::reject,
        routes::sessions::get_session,
        routes::sessions::leave,
        routes::sessions::end,
        routes::sessions::heartbeat,
        routes::join_tokens::jwks,
        routes::join_tokens::verify,
        routes::events::stream,
        routes::lobbies::open_lobby,
        service_kit::tickets::issue_ticket,
        service_kit::ops::healthz,
        service_kit::ops::readyz,
    ),
    components(schemas(
        PlayerState, Prompt, PromptKind, Session, SessionKind, SessionState, Reason,
        EndedReason, Outcome, EndBody, VerifyBody, Verification, JoinTokenError,
        AcceptBody, ConnectBody, NewLobby, PromptCancelled, GameEvent, Problem, ProblemCode, HealthReport,
        routes::events::EventFrame, routes::events::EventName,
        shared_types::tickets::EventTicket
    )),
    modifiers(&BearerSecurity, &StandardResponses, &OptionalBodies),
    tags(
        (name = "players", description = "Arriving and the player's state"),
        (name = "prompts", description = "Answering invite and join prompts"),
        (name = "sessions", description = "Game sessions"),
        (name = "events", description = "Server-sent events"),
        (name = "game servers", description = "For the game server hosting a session (scope `service`): join tokens, ending and heartbeats"),
        (name = "chat", description = "For the IM service (scope `service`): lobbies launched from a conversation"),
        (name = "operations", description = "Health and readiness"),
    )
)]
struct ApiDoc;

/// `POST /v1/prompts/{id}/accept` and `POST /v1/connect` take an optional body
/// (see [`service_kit::extract::mark_body_optional`]).
struct OptionalBodies;

impl Modify for OptionalBodies {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        for path in ["/v1/prompts/{id}/accept", "/v1/connect"] {
            service_kit::extract::mark_body_optional(openapi, path);
        }
    }
}

/// The document checked in as `openapi/game-service.json`: that of the default `GAME_MODES`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    for_modes(&crate::domain::modes::Modes::default())
}

/// The document a service with these modes serves at `/openapi.json`: every `mode` a request
/// may name is one of them (an `enum`), so that a client or a fuzzer knows which are valid.
pub fn for_modes(modes: &crate::domain::modes::Modes) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{RefOr, schema::Schema};
    let mut doc = ApiDoc::openapi();
    let mut names: Vec<serde_json::Value> = modes
        .names()
        .map(|name| serde_json::Value::String(name.to_owned()))
        .collect();
    // Optional fields: `null` is as good as leaving them out.
    names.push(serde_json::Value::Null);
    let mut schemas = doc.components.as_mut().map(|c| &mut c.schemas);
    for body in ["ConnectBody", "NewLobby"] {
        let mode = schemas
            .as_deref_mut()
            .and_then(|schemas| schemas.get_mut(body))
            .and_then(|schema| match schema {
                RefOr::T(Schema::Object(object)) => object.properties.get_mut("mode"),
                _ => None,
            });
        if let Some(RefOr::T(Schema::Object(mode))) = mode {
            mode.enum_values = Some(names.clone());
        }
    }
    doc
}

#[cfg(test)]
#[expect(clippy::unwrap_used, clippy::expect_used, reason = "tests")]
mod tests {
    use serde_json::Value;

    fn document() -> Value {
        serde_json::to_value(super::openapi()).expect("the document serialises")
    }

    #[test]
    fn a_mode_is_one_of_the_configured_modes_or_null() {
        let modes = crate::domain::modes::Modes::parse("duel:2,squad:3").expect("valid");
        let doc = serde_json::to_value(super::for_modes(&modes)).expect("the document serialises");
        for body in ["ConnectBody", "NewLobby"] {
            let mode = &doc["components"]["schemas"][body]["properties"]["mode"];
            assert_eq!(
                mode["enum"],
                serde_json::json!(["duel", "squad", null]),
                "{body}: {mode}"
            );
        }
    }

    #[test]
    fn the_accept_body_is_an_optional_accept_body() {
        let doc = document();
        let body = &doc["paths"]["/v1/prompts/{id}/accept"]["post"]["requestBody"];
        assert_eq!(body["required"], Value::Bool(false), "{body}");
        assert_eq!(
            body["content"]["application/json"]["schema"],
            serde_json::json!({"$ref": "#/components/schemas/AcceptBody"}),
            "{body}"
        );
    }

    /// Every link names an operation of the document by its id, gives exactly
    /// that operation's path parameters, and points into a field that the
    /// response's schema (`PlayerState`: `prompt.id`, `session.id`) has.
    /// (`leave` links to `connect`, which takes no parameters.)
    #[test]
    fn every_link_leads_to_an_operation_with_its_path_parameters() {
        let doc = document();
        let mut operations = std::collections::HashMap::new();
        for item in doc["paths"].as_object().unwrap().values() {
            for operation in item.as_object().unwrap().values() {
                if let Some(id) = operation["operationId"].as_str() {
                    operations.insert(id.to_owned(), operation);
                }
            }
        }
        let mut links = 0;
        for (source, operation) in &operations {
            for (status, response) in operation["responses"].as_object().unwrap() {
                let Some(map) = response["links"].as_object() else {
                    continue;
                };
                let schema = &response["content"]["application/json"]["schema"]["$ref"];
                assert_eq!(
                    schema, "#/components/schemas/PlayerState",
                    "{source} {status}"
                );
                for (name, link) in map {
                    links += 1;
                    let target = link["operationId"].as_str().unwrap();
                    let target_operation = operations.get(target).unwrap_or_else(|| {
                        panic!("{source} {status} {name}: no operation {target}")
                    });
                    let mut wanted: Vec<&str> = target_operation["parameters"]
                        .as_array()
                        .map_or(&[][..], Vec::as_slice)
                        .iter()
                        .filter(|p| p["in"] == "path")
                        .map(|p| p["name"].as_str().unwrap())
                        .collect();
                    let no_parameters = serde_json::Map::new();
                    let parameters = link["parameters"].as_object().unwrap_or(&no_parameters);
                    let mut given: Vec<&str> = parameters.keys().map(String::as_str).collect();
                    wanted.sort_unstable();
                    given.sort_unstable();
                    assert_eq!(given, wanted, "{source} {status} {name}");
                    for expression in parameters.values() {
                        let expression = expression.as_str().unwrap();
                        assert!(
                            ["$response.body#/prompt/id", "$response.body#/session/id"]
                                .contains(&expression),
                            "{source} {status} {name}: {expression}"
                        );
                    }
                }
            }
        }
        // connect and me: accept, reject, get and leave; accept and reject: get
        // and leave; leave: connect again.
        assert_eq!(links, 13);
    }
}
