//! Expiry at scale: two replicas sweep the same expiry jobs; every unanswered lobby expires
//! exactly once, and every host hears it exactly once.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use futures_util::{StreamExt, stream};
use shared_types::game::{Reason, Session, SessionKind, SessionState};

use crate::helpers::{EventStream, Player, SseEvent, StateExt, WorldOptions, spawn_world_with};

const LOBBIES: usize = 100;
const TTL_SECS: u64 = 2;
/// Both replicas look for due jobs this often: they compete for every job.
const POLL_MS: u64 = 50;
/// The TTL, the sweeps and a loaded machine.
const EXPIRY_LIMIT: Duration = Duration::from_secs(TTL_SECS + 10);
/// After the last expiry, a duplicate would show up within a few sweeps.
const QUIET: Duration = Duration::from_millis(1500);

struct Lobby {
    host: Player,
    invitee: Player,
    session: Session,
    stream: EventStream,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_replicas_sweeping_every_unanswered_lobby_expires_once_and_its_host_hears_it_once()
-> anyhow::Result<()> {
    let started = Instant::now();
    let mut world = spawn_world_with(
        WorldOptions {
            invite_ttl_secs: TTL_SECS,
            ..WorldOptions::default()
        }
        .game_var("EXPIRY_POLL_MS", POLL_MS),
    )
    .await?;
    let other = world.spawn_game_replica().await?;
    let mut pairs = Vec::new();
    for i in 0..LOBBIES {
        pairs.push((
            world.player(&format!("host-{i}"))?,
            world.player(&format!("guest-{i}"))?,
        ));
    }
    let chats: Vec<anyhow::Result<uuid::Uuid>> = stream::iter(&pairs)
        .map(|(host, guest)| async { world.chatting(&[host, guest]).await })
        .buffer_unordered(32)
        .collect()
        .await;
    chats.into_iter().collect::<anyhow::Result<Vec<_>>>()?;

    // Each host holds a stream on one replica and creates the lobby through the other; the
    // invitees never answer (they never even connect).
    let lobbies: Vec<anyhow::Result<Lobby>> = stream::iter(pairs.into_iter().enumerate())
        .map(|(i, (host, invitee))| {
            let (watch, act) = if i % 2 == 0 {
                (host.clone(), host.via(&other))
            } else {
                (host.via(&other), host.clone())
            };
            async move {
                let stream = watch.events(None).await?;
                let invite = act.connect().await?.open_prompt()?.clone();
                let session = act.accept(invite.id, None).await?.live_session()?.clone();
                ensure!(
                    session.state == SessionState::Waiting,
                    "{}: expected a waiting lobby, got {session:#?}",
                    host.id
                );
                Ok(Lobby {
                    host,
                    invitee,
                    session,
                    stream,
                })
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    let mut lobbies = lobbies.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    let created = started.elapsed();

    // Every host hears its lobby turn solo (`expired`), live, on whichever replica holds the
    // stream; then nothing more about it.
    let heard: Vec<anyhow::Result<()>> = stream::iter(lobbies.iter_mut())
        .map(|lobby| async move {
            let id = lobby.session.id;
            let mut seen = Vec::new();
            let deadline = Instant::now() + EXPIRY_LIMIT;
            loop {
                let left = deadline
                    .checked_duration_since(Instant::now())
                    .with_context(|| {
                        format!("{} never heard lobby {id} expire: {seen:#?}", lobby.host.id)
                    })?;
                let Some(event) = lobby.stream.next_within(left).await? else {
                    continue;
                };
                let expired = event
                    .session()
                    .is_ok_and(|s| s.id == id && s.kind == SessionKind::Solo);
                seen.push(event);
                if expired {
                    break;
                }
            }
            seen.extend(lobby.stream.drain(QUIET).await?);
            assert_expired_once(&lobby.host.id, id, &seen, "live")
        })
        .buffer_unordered(LOBBIES)
        .collect()
        .await;
    let expired_after = started.elapsed();
    heard.into_iter().collect::<anyhow::Result<Vec<_>>>()?;

    // The same from the store: a replay from the start on the other replica.
    let checks: Vec<anyhow::Result<()>> = stream::iter(lobbies.iter().enumerate())
        .map(|(i, lobby)| {
            let host = if i % 2 == 0 {
                lobby.host.clone()
            } else {
                lobby.host.via(&other)
            };
            async move {
                let mut replay = host.events(Some("0-0")).await?;
                let replayed = replay.drain(Duration::from_millis(500)).await?;
                assert_expired_once(&host.id, lobby.session.id, &replayed, "replayed")?;

                let now = host.me().await?;
                let solo = now.solo(Reason::Expired)?;
                ensure!(
                    solo.id == lobby.session.id,
                    "{}: the lobby itself turns solo: {now:#?}",
                    host.id
                );
                ensure!(solo.pending.is_empty(), "{now:#?}");
                let seen_by_invitee = lobby.invitee.session(lobby.session.id).await?;
                ensure!(
                    seen_by_invitee.kind == SessionKind::Solo
                        && seen_by_invitee.reason == Some(Reason::Expired),
                    "{seen_by_invitee:#?}"
                );
                let invitee = lobby.invitee.me().await?;
                ensure!(
                    invitee.prompt.is_none() && invitee.session.is_none(),
                    "an invitee who never came holds nothing: {invitee:#?}"
                );
                Ok(())
            }
        })
        .buffer_unordered(32)
        .collect()
        .await;
    checks.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    eprintln!(
        "expiry at scale: {LOBBIES} lobbies created in {created:.1?}, all expired and heard by \
         {expired_after:.1?}, checked by {:.1?}",
        started.elapsed()
    );
    Ok(())
}

/// Exactly one `session` event turned the lobby solo/expired, and it was the last about it.
fn assert_expired_once(
    host: &str,
    lobby: uuid::Uuid,
    events: &[SseEvent],
    how: &str,
) -> anyhow::Result<()> {
    let about: Vec<Session> = events
        .iter()
        .filter_map(|e| e.session().ok())
        .filter(|s| s.id == lobby)
        .collect();
    let expiries = about
        .iter()
        .filter(|s| {
            s.kind == SessionKind::Solo
                && s.state == SessionState::Active
                && s.reason == Some(Reason::Expired)
        })
        .count();
    ensure!(
        expiries == 1,
        "{host} got {expiries} {how} events turning lobby {lobby} solo/expired (exactly one \
         expected): {about:#?}"
    );
    let last = about.last().context("no session events")?;
    ensure!(
        last.kind == SessionKind::Solo && last.reason == Some(Reason::Expired),
        "{host}: the last {how} event about lobby {lobby} is not its expiry: {about:#?}"
    );
    ensure!(
        about.len() == 2 && about[0].state == SessionState::Waiting,
        "{host}: {how}, expected the waiting lobby then its expiry, got {about:#?}"
    );
    let ids: Vec<&str> = events.iter().filter_map(|e| e.id.as_deref()).collect();
    let mut unique = ids.clone();
    unique.dedup();
    ensure!(
        ids.len() == events.len() && unique.len() == ids.len(),
        "{host}: {how} events without ids or with repeated ids: {events:#?}"
    );
    Ok(())
}
