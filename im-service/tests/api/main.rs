//! HTTP-level tests: the real application on a free port (in-memory store unless a test says
//! otherwise), driven with reqwest, time moved with the injected clock.

mod auth;
mod conversations;
mod helpers;
mod operations;
mod partners;
mod presence;
