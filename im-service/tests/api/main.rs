//! HTTP-level tests: the real application on a free port (in-memory store unless a test says
//! otherwise), driven with reqwest, time moved with the injected clock.

mod activity;
mod auth;
mod authorization;
mod blocks;
mod conversations;
mod docs;
/// The docs-page checker, shared with the game service's API suite.
#[path = "../../../game-service/tests/api/helpers/docs.rs"]
mod docs_check;
mod feed;
mod game_messages;
mod helpers;
mod idempotency;
mod launch;
mod messages;
mod operations;
mod partners;
mod presence;
