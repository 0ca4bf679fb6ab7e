//! Wire types shared by the IM service, the game service and their clients.
//!
//! # Layout
//! - [`ids`]: identifiers that parse (a [`ids::UserId`] is always valid).
//! - [`presence`]: presence statuses and the presence endpoints' bodies.
//! - [`im`]: conversations, messages and the partners answer.
//! - [`game`]: `PlayerState`, prompts, sessions, reasons and events.
//! - [`problem`]: the one RFC 9457 error body and its stable codes.
//! - [`auth`]: JWT claims, verification and minting; [`tickets`]: event-stream tickets.
//! - [`activity`]: presence both ways: game activity reports, the IM's presence feed.
//! - [`events`]: what an event of a user's stream is ([`events::Payload`]).

pub mod activity;
pub mod auth;
pub mod events;
pub mod game;
pub mod ids;
pub mod im;
pub mod presence;
pub mod problem;
pub mod tickets;

pub use ids::UserId;
