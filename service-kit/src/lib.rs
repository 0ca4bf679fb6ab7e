//! HTTP plumbing shared by the IM and game services.
//!
//! # Layout
//! - [`error`]: [`error::ApiError`], the problem+json response every handler returns.
//! - [`extract`]: JSON/path/query configs that answer in problem+json, and the 404 fallback.
//! - [`http_client`]: how the services' clients of each other classify a failed call.
//! - [`auth`]: the [`auth::Authenticated`] extractor (bearer JWT).
//! - [`body_deadline`]: a deadline on reading request bodies, HTTP/1.1 and HTTP/2 alike.
//! - [`config`]: environment-variable parsing shared by both services; [`cors`]: `CORS_ALLOWED_ORIGINS`.
//! - [`middleware`]: request ids and access logs, per-caller rate limiting.
//! - [`redis_conn`]: the Redis connection (standalone or cluster) both stores use.
//! - [`redis_replication`]: writes acknowledged only once replicas hold them (`WAIT`).
//! - [`redis_round_trips`]: the round trips to Redis counted, in all and by HTTP route.
//! - [`redis_sentinel`]: a primary found through Redis Sentinel, followed across failovers.
//! - [`ops`]: `/healthz`, `/readyz`, `/docs`; [`metrics`]: the Prometheus middleware and `/metrics`.
//! - [`shutdown`]: the SIGTERM sequence (drain, end streams, finish requests);
//!   [`event_stream`]: streams that end with a `retry` advice; [`serve`]: both, set up from the environment.
//! - [`events`]: stored, replayable, relayed per-user events and the `GET /v1/events` stream.
//! - [`tickets`]: event-stream tickets for browsers, and the stream caller extractor.
//! - [`service_token`]: the `service` token one service calls the other with.
//! - [`telemetry`]: tracing subscriber set-up.

pub mod auth;
pub mod body_deadline;
pub mod config;
pub mod cors;
pub mod error;
pub mod event_stream;
pub mod events;
pub mod extract;
pub mod http_client;
pub mod metrics;
pub mod middleware;
pub mod ops;
pub mod redis_conn;
pub mod redis_replication;
pub mod redis_round_trips;
pub mod redis_self_healing;
pub mod redis_sentinel;
pub mod serve;
pub mod service_token;
pub mod shutdown;
pub mod telemetry;
pub mod tickets;

pub use error::ApiError;
