//! The IM service: presence, conversations, messages, and the answer to "who is this user
//! talking to right now?" that the game service asks.
//!
//! # Layout
//! - [`configuration`]: [`configuration::Settings`], [`configuration::Limits`] and
//!   [`configuration::GameSettings`] read from the environment.
//! - [`startup`]: [`startup::Application`], the server bound and ready to run.
//! - [`routes`]: one module per resource (presence, conversations, games, partners, blocks)
//!   and the OpenAPI document.
//! - [`domain`]: rules without I/O: participant lists, message text, the partner rule (talking
//!   takes two, blocks), who sees whose presence, the clock.
//! - [`store`]: the [`store::Store`] trait with its in-memory and Redis backends.
//! - [`game_client`]: opening a lobby on the game service for a game launched from a chat.
//! - [`metrics`]: the service's own Prometheus series.

pub mod configuration;
pub mod domain;
pub mod game_client;
pub mod metrics;
pub mod routes;
pub mod startup;
pub mod store;

use utoipa::OpenApi;

/// The OpenAPI 3.1 document of the service, as served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::ApiDoc::openapi()
}
