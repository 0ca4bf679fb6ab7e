//! The world every scenario runs in: a private redis-server, the real `im-service` and
//! `game-service` binaries on free ports, and typed players that talk to both.
//!
//! - [`world`]: starting a world (its options, its Redis, both services on fresh ports).
//! - [`world_access`]: what a running world hands a test: players, game servers, tokens,
//!   raw requests, metrics and stored keys.
//! - [`world_processes`]: a running world's processes: replicas, kills, restarts, signals, logs.
//! - [`player`]: a player's typed calls to both services; [`chat`]: those that join the two.
//! - [`api`] and [`reply`]: one HTTP request, read in full, and its status and problem checks.
//! - [`assertions`]: shortcuts that read like the contract, and polling until something holds.
//! - [`process`]: starting, health-checking, signalling and killing the service binaries
//!   (optionally under a command prefix); [`one_shot`]: one run to its exit.
//! - [`nft`] and [`netns`]: nftables tables and network namespaces of a test's own, deleted
//!   on drop; [`redis_cut`]: a namespace cut off from Redis from one script call on.
//! - [`sse`]: reading a player's `text/event-stream`.
//! - [`store`]: reading what the services wrote to Redis (keys, TTLs, records).
//! - [`stub_im`]: a fake IM service that counts requests and fails, hangs or answers late.
//! - [`invariants`]: the store's invariants, read from Redis once a scenario has settled.
//! - [`churn`]: background players driving flows while a fault strikes.
//! - [`game_server`]: a game server's calls (end, heartbeat, join-token checks).

mod api;
mod assertions;
mod chat;
pub mod churn;
mod game_server;
pub mod invariants;
mod log_checks;
mod netns;
mod nft;
mod one_shot;
mod player;
mod process;
mod redis_cut;
mod reply;
mod sse;
mod store;
mod stub_im;
mod world;
mod world_access;
mod world_processes;

use std::time::Duration;

use shared_types::game::PlayerState;

use self::api::Api;
pub use self::{
    assertions::{StateExt, essence, eventually, names, sorted},
    game_server::GameServer,
    netns::Netns,
    nft::NftTable,
    one_shot::run_to_exit,
    player::Player,
    redis_cut::RedisCut,
    reply::Reply,
    sse::{EventStream, SseEvent, StreamEnd},
    store::{StoredKey, snapshot},
    stub_im::{StubIm, StubMode},
    world::{StoreChoice, TestWorld, WorldOptions, spawn_world, spawn_world_with},
    world_processes::{Placement, Replica},
};

/// The secret both services verify with; tests mint their own tokens with it.
pub const SECRET: &str = "e2e-secret-not-for-production-use-anywhere";

/// Long enough that no invitation expires in a scenario that is not about expiry.
pub const DEFAULT_INVITE_TTL_SECS: u64 = 60;

/// Any single API call: generous, so a slow machine fails on assertions, not timeouts.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Which service a raw request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Im,
    Game,
}

/// One round of the race the contract singles out (docs/CONTRACT.md, "Both at once"): `alice` and `bob` chat, both
/// connect and both accept their own invite prompt at the same moment. Returns
/// each one's state afterwards (`/v1/me`) for the caller's assertions.
pub async fn mutual_accept_round(
    world: &TestWorld,
    alice: &Player,
    bob: &Player,
    round: usize,
) -> anyhow::Result<(PlayerState, PlayerState)> {
    world.chatting(&[alice, bob]).await?;
    let (alice_state, bob_state) = tokio::join!(alice.connect(), bob.connect());
    let alice_prompt = alice_state?.open_prompt()?.clone();
    let bob_prompt = bob_state?.open_prompt()?.clone();
    let (alice_answer, bob_answer) = tokio::join!(
        alice.accept(alice_prompt.id, None),
        bob.accept(bob_prompt.id, None)
    );
    alice_answer.map_err(|e| e.context(format!("round {round}")))?;
    bob_answer.map_err(|e| e.context(format!("round {round}")))?;
    Ok((alice.me().await?, bob.me().await?))
}
