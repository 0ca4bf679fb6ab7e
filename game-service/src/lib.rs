//! The game service: when a player arrives, ask the IM service who they are
//! talking to, propose playing together, and launch a multiplayer or solo session.
//!
//! # Layout
//! - [`configuration`]: settings from the environment.
//! - [`startup`]: builds the app and its background tasks; [`sweeper`]: runs due expiry jobs;
//!   [`presence_feed`]: applies the IM service's presence changes.
//! - [`domain`]: records, the transition context and the state-machine engine.
//! - [`game`]: runs transitions against the store (locks, retries, rendering).
//! - [`store`]: the store trait, its in-memory and Redis backends.
//! - [`im_client`]: the call to the IM service; [`breaker`]: its circuit breaker.
//! - [`join_tokens`]: the signed credentials game servers verify, and their keys.
//! - [`metrics`]: the game's own Prometheus series.
//! - [`routes`]: HTTP handlers, one module per resource.
//! - [`openapi`]: the generated OpenAPI document.
//! - [`play`]: the reference web client at `/play/`.

pub mod breaker;
pub mod configuration;
pub mod domain;
pub mod game;
pub mod im_client;
pub mod join_tokens;
pub mod metrics;
pub mod openapi;
pub mod play;
pub mod presence_feed;
pub mod routes;
pub mod startup;
pub mod store;
pub mod sweeper;

pub use openapi::openapi;
