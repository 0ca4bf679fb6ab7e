//! How sessions end, on each store: game servers end them, heartbeats and
//! players' requests keep them alive, idle ones are abandoned once, and a
//! record pointing at something gone is repaired by connecting.

use anyhow::{Context, ensure};
use chrono::Utc;
use game_service::{
    domain::{
        engine::Refusal,
        records::{PlayerRecord, PromptRecord, SessionRecord, SessionRef},
        tx::Changes,
    },
    game::GameError,
};
use shared_types::game::{
    EndedReason, GameEvent, PlayerState, PromptKind, Reason, Session, SessionState,
};
use uuid::Uuid;

use crate::{
    helpers::{Harness, Options, StateExt, leads_somewhere, uid},
    on_both_stores,
};

/// A short idle time, so that the hand-driven clock reaches it quickly.
const IDLE: i64 = 120;
/// How coarsely life is recorded: an eighth of the idle time.
const RESOLUTION: i64 = IDLE / 8;

fn short_idle() -> Options {
    Options {
        session_idle_secs: IDLE,
        ..Options::default()
    }
}

on_both_stores!(
    a_game_server_ending_a_session_frees_every_player_and_tells_each_once,
    ending_twice_is_harmless_and_unknown_sessions_are_not_found,
    ending_a_lobby_withdraws_its_pending_invitations,
    the_last_player_leaving_ends_the_session_as_left,
    connect_repairs_a_record_that_points_at_a_session_that_is_gone_or_over,
    connect_repairs_a_join_prompt_whose_lobby_is_gone,
);

on_both_stores!(with super::short_idle();
    an_idle_session_is_abandoned_once_and_each_player_hears_it_once,
    heartbeats_alone_keep_a_session_alive_past_the_idle_time,
    a_players_requests_alone_keep_their_session_alive_past_the_idle_time,
);

/// Alice invites bob, bob joins: one active session.
async fn active_pair(h: &Harness) -> anyhow::Result<Session> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.id;
    h.accept("alice", invite).await?;
    let join = h.connect("bob").await?.prompt()?.id;
    let session = h.accept("bob", join).await?.session()?.clone();
    ensure!(session.state == SessionState::Active, "{session:?}");
    Ok(session)
}

/// How many events alice and bob have heard so far.
async fn heard_so_far(h: &Harness) -> anyhow::Result<[(&'static str, usize); 2]> {
    Ok([
        ("alice", h.events("alice").await?.len()),
        ("bob", h.events("bob").await?.len()),
    ])
}

/// The session as stored, read without counting as anybody's life.
async fn stored(h: &Harness, session: &Session) -> anyhow::Result<SessionRecord> {
    let at = SessionRef {
        id: session.id,
        host: session.host.clone(),
    };
    h.store.session(&at).await?.context("the session is kept")
}

/// The events `p` got after the first `seen`.
async fn new_events(h: &Harness, p: &str, seen: usize) -> anyhow::Result<Vec<GameEvent>> {
    Ok(h.events(p).await?.into_iter().skip(seen).collect())
}

fn is_free(state: &PlayerState) -> bool {
    state.prompt.is_none() && state.session.is_none()
}

/// Each of `players` heard exactly one event since `seen`: the session, ended for `reason`.
async fn each_heard_it_end_once(
    h: &Harness,
    players: &[(&str, usize)],
    id: Uuid,
    reason: EndedReason,
) -> anyhow::Result<()> {
    for (p, seen) in players {
        let events = new_events(h, p, *seen).await?;
        let heard = matches!(
            events.as_slice(),
            [GameEvent::Session(s)] if s.id == id
                && s.state == SessionState::Ended
                && s.ended_reason == Some(reason)
                && s.join_token.is_empty()
        );
        ensure!(heard, "{p} should hear the session end once: {events:?}");
    }
    Ok(())
}

async fn a_game_server_ending_a_session_frees_every_player_and_tells_each_once(
    h: Harness,
) -> anyhow::Result<()> {
    let session = active_pair(&h).await?;
    let seen = heard_so_far(&h).await?;
    let ended = h
        .end(session.id, EndedReason::Finished)
        .await?
        .context("the session exists")?;
    ensure!(ended.state == SessionState::Ended, "{ended:?}");
    ensure!(
        ended.ended_reason == Some(EndedReason::Finished),
        "{ended:?}"
    );
    ensure!(
        ended.players == session.players,
        "who played stays on record"
    );
    ensure!(
        ended.join_token.is_empty(),
        "a game server gets no player's token"
    );
    each_heard_it_end_once(&h, &seen, session.id, EndedReason::Finished).await?;
    for p in ["alice", "bob"] {
        let state = h.me(p).await?;
        ensure!(is_free(&state), "{p} is free: {state:?}");
        let read = h
            .session_seen_by(p, session.id)
            .await?
            .context("still readable")?;
        ensure!(read.state == SessionState::Ended && read.join_token.is_empty());
    }
    let again = h.connect("alice").await?;
    ensure!(
        again.prompt.is_some() || again.session.as_ref().is_some_and(|s| s.id != session.id),
        "alice starts over: {again:?}"
    );
    Ok(())
}

async fn ending_twice_is_harmless_and_unknown_sessions_are_not_found(
    h: Harness,
) -> anyhow::Result<()> {
    let solo = h.connect("alice").await?.session()?.clone();
    let first = h
        .end(solo.id, EndedReason::Aborted)
        .await?
        .context("exists")?;
    ensure!(
        first.ended_reason == Some(EndedReason::Aborted),
        "{first:?}"
    );
    let seen = h.events("alice").await?.len();
    let second = h
        .end(solo.id, EndedReason::Finished)
        .await?
        .context("exists")?;
    ensure!(second == first, "ending again changes nothing: {second:?}");
    ensure!(h.events("alice").await?.len() == seen, "and tells nobody");
    let beat = h.heartbeat(solo.id).await?.context("exists")?;
    ensure!(
        beat.state == SessionState::Ended,
        "a heartbeat revives nothing"
    );
    let unknown = Uuid::new_v4();
    ensure!(h.end(unknown, EndedReason::Finished).await?.is_none());
    ensure!(h.heartbeat(unknown).await?.is_none());
    Ok(())
}

async fn ending_a_lobby_withdraws_its_pending_invitations(h: Harness) -> anyhow::Result<()> {
    h.talk("alice", &["bob"]);
    let invite = h.connect("alice").await?.prompt()?.id;
    let lobby = h.accept("alice", invite).await?.session()?.clone();
    let join = h.connect("bob").await?.prompt()?.clone();
    ensure!(join.kind == PromptKind::Join && join.session_id == Some(lobby.id));
    let ended = h
        .end(lobby.id, EndedReason::Aborted)
        .await?
        .context("exists")?;
    ensure!(ended.pending.is_empty(), "{ended:?}");
    let bob = h.me("bob").await?;
    ensure!(is_free(&bob), "bob's join prompt is gone: {bob:?}");
    let last = h.events("bob").await?.pop();
    ensure!(
        matches!(&last, Some(GameEvent::PromptCancelled(c)) if c.prompt_id == join.id && c.reason == Reason::Withdrawn),
        "{last:?}"
    );
    match h.accept("bob", join.id).await {
        Err(GameError::Refused(Refusal::PromptClosed(Reason::Withdrawn))) => {}
        other => anyhow::bail!("accepting a withdrawn join prompt: {other:?}"),
    }
    let again = h.connect("bob").await?;
    ensure!(
        again.session.as_ref().is_none_or(|s| s.id != lobby.id),
        "{again:?}"
    );
    Ok(())
}

async fn the_last_player_leaving_ends_the_session_as_left(h: Harness) -> anyhow::Result<()> {
    let session = active_pair(&h).await?;
    h.leave("alice", session.id).await?;
    let read = h
        .session_seen_by("bob", session.id)
        .await?
        .context("visible")?;
    ensure!(read.state == SessionState::Active && read.ended_reason.is_none());
    let seen = h.events("bob").await?.len();
    h.leave("bob", session.id).await?;
    each_heard_it_end_once(&h, &[("bob", seen)], session.id, EndedReason::Left).await?;
    Ok(())
}

async fn an_idle_session_is_abandoned_once_and_each_player_hears_it_once(
    h: Harness,
) -> anyhow::Result<()> {
    let session = active_pair(&h).await?;
    let seen = heard_so_far(&h).await?;
    // A session lives idle + two resolutions after its last recorded life.
    h.advance(IDLE + 2 * RESOLUTION - 1);
    h.sweep().await?;
    ensure!(
        stored(&h, &session).await?.state == SessionState::Active,
        "not yet"
    );
    h.advance(2);
    h.sweep().await?;
    let record = stored(&h, &session).await?;
    ensure!(record.state == SessionState::Ended, "{record:?}");
    ensure!(
        record.ended_reason == Some(EndedReason::Abandoned),
        "{record:?}"
    );
    h.advance(IDLE * 3);
    h.sweep().await?;
    each_heard_it_end_once(&h, &seen, session.id, EndedReason::Abandoned).await?;
    for p in ["alice", "bob"] {
        ensure!(is_free(&h.me(p).await?), "{p} is free");
    }
    Ok(())
}

/// Keeps `session` alive for three idle times by `sign_of_life` alone, then
/// stops and checks it is abandoned: the life signal was what kept it.
async fn alive_while<F, Fut>(h: &Harness, session: &Session, sign_of_life: F) -> anyhow::Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    for _ in 0..(3 * IDLE / RESOLUTION) {
        h.advance(RESOLUTION);
        sign_of_life().await?;
        h.sweep().await?;
    }
    let record = stored(h, session).await?;
    ensure!(
        record.state == SessionState::Active,
        "kept alive: {record:?}"
    );
    h.advance(IDLE + 2 * RESOLUTION + 1);
    h.sweep().await?;
    let record = stored(h, session).await?;
    ensure!(
        record.ended_reason == Some(EndedReason::Abandoned),
        "without it, abandoned: {record:?}"
    );
    Ok(())
}

async fn heartbeats_alone_keep_a_session_alive_past_the_idle_time(
    h: Harness,
) -> anyhow::Result<()> {
    let session = active_pair(&h).await?;
    alive_while(&h, &session, || async {
        h.heartbeat(session.id).await?.context("exists")?;
        Ok(())
    })
    .await
}

async fn a_players_requests_alone_keep_their_session_alive_past_the_idle_time(
    h: Harness,
) -> anyhow::Result<()> {
    let session = active_pair(&h).await?;
    alive_while(&h, &session, || async {
        h.me("bob").await?.session()?;
        Ok(())
    })
    .await
}

/// Writes `record` for `player` as a transition would (no lock needed for a test's set-up).
async fn plant(
    h: &Harness,
    player: &str,
    record: PlayerRecord,
    sessions: Vec<SessionRecord>,
) -> anyhow::Result<()> {
    let changes = Changes {
        players: vec![(uid(player), record)],
        sessions,
        ..Changes::default()
    };
    h.store.commit(&[], "plant", &changes).await?;
    Ok(())
}

async fn connect_repairs_a_record_that_points_at_a_session_that_is_gone_or_over(
    h: Harness,
) -> anyhow::Result<()> {
    let alice = uid("alice");
    let gone = SessionRef {
        id: Uuid::new_v4(),
        host: uid("zoe"),
    };
    let pointing = |at: &SessionRef| PlayerRecord {
        session: Some(at.clone()),
        ..PlayerRecord::default()
    };
    plant(&h, "alice", pointing(&gone), Vec::new()).await?;
    let state = h.connect("alice").await?;
    ensure!(leads_somewhere(&state), "{state:?}");
    ensure!(state.session()?.id != gone.id);

    let mut over = SessionRecord::solo(&alice, Reason::NoPartner, Utc::now(), "default");
    over.state = SessionState::Ended;
    over.ended_reason = Some(EndedReason::Finished);
    plant(&h, "alice", pointing(&over.reference()), vec![over.clone()]).await?;
    let state = h.connect("alice").await?;
    ensure!(
        leads_somewhere(&state) && state.session()?.id != over.id,
        "{state:?}"
    );

    // A live session that no longer lists her (she was dropped from it).
    let mut others = SessionRecord::solo(&uid("bob"), Reason::NoPartner, Utc::now(), "default");
    others.players = vec![uid("bob")];
    plant(
        &h,
        "alice",
        pointing(&others.reference()),
        vec![others.clone()],
    )
    .await?;
    let state = h.connect("alice").await?;
    ensure!(
        leads_somewhere(&state) && state.session()?.id != others.id,
        "{state:?}"
    );
    Ok(())
}

async fn connect_repairs_a_join_prompt_whose_lobby_is_gone(h: Harness) -> anyhow::Result<()> {
    let gone = SessionRef {
        id: Uuid::new_v4(),
        host: uid("zoe"),
    };
    let prompt = PromptRecord {
        id: Uuid::new_v4(),
        kind: PromptKind::Join,
        candidates: vec![uid("zoe")],
        lobby: Some(gone.clone()),
        expires_at: Utc::now() + chrono::Duration::seconds(600),
        mode: "default".into(),
        via: Vec::new(),
    };
    let record = PlayerRecord {
        prompt: Some(prompt.clone()),
        ..PlayerRecord::default()
    };
    plant(&h, "alice", record, Vec::new()).await?;
    let state = h.connect("alice").await?;
    ensure!(leads_somewhere(&state), "{state:?}");
    ensure!(
        state.prompt.as_ref().is_none_or(|p| p.id != prompt.id),
        "{state:?}"
    );
    let cancelled = h.events("alice").await?.into_iter().any(|e| {
        matches!(e, GameEvent::PromptCancelled(c) if c.prompt_id == prompt.id && c.reason == Reason::Withdrawn)
    });
    ensure!(cancelled, "alice hears that the join prompt is gone");
    Ok(())
}
