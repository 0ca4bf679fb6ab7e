//! After the storm, before the final checks: the presence feed drained (a sentinel's own flip, made after every other, has landed), every player still offline out of what their flip closed, and how late the feed cancelled flipped players' prompts.

use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use chrono::{DateTime, Utc};
use futures_util::{StreamExt, stream};
use reqwest::Method;
use shared_types::{
    game::{PlayerState, PromptKind, Reason, SessionState},
    problem::ProblemCode,
};

use super::{
    CONCURRENT_GROUPS,
    flips::FEED_LAG,
    modes::{Closed, closed_reason},
    players::{Flip, GroupReport, Member},
    requests::brief,
};
use crate::helpers::{Replica, Service, TestWorld, eventually, invariants::fail_if_any};

/// How long the game service may take to catch up with the feed once the storm is over.
const SETTLE_WITHIN: Duration = Duration::from_secs(20);
/// A replayed event stream is read until it stays quiet this long.
const REPLAY_QUIET: Duration = Duration::from_millis(300);

/// Two players outside the storm, chatting: its host's flip after the storm is the last
/// change in the feed.
pub(super) struct Sentinel {
    pub(super) host: Member,
    pub(super) guest: Member,
}

impl Sentinel {
    pub(super) async fn new(world: &TestWorld, other: &Replica) -> anyhow::Result<Self> {
        let member = |id: &str| -> anyhow::Result<Member> {
            let primary = world.player(id)?;
            let other = primary.via(other);
            Ok(Member { primary, other })
        };
        let (host, guest) = (member("sentinel-host")?, member("sentinel-guest")?);
        world.chatting(&[&host.primary, &guest.primary]).await?;
        Ok(Self { host, guest })
    }

    /// Drains the feed: both connect (each an invite prompt naming the other), the host goes
    /// offline, and once the host's prompt is cancelled every change the feed took before
    /// (every flip of the storm) has been applied too: the game applies the feed in order.
    /// Answering the prompt then is a 409 `prompt_closed` `unavailable`. Returns how long it
    /// took, and records the host's flip.
    pub(super) async fn drain_feed(&self, report: &mut GroupReport) -> anyhow::Result<Duration> {
        self.guest.primary.connect().await?;
        let state = self.host.primary.connect().await?;
        let prompt = state
            .prompt
            .clone()
            .filter(|p| p.kind == PromptKind::Invite)
            .with_context(|| format!("the sentinel found no partner: {}", brief(&state)))?;
        let (since, wall) = (Instant::now(), Utc::now());
        self.host.primary.set_presence("offline").await?;
        report.flips.insert(
            self.host.id().to_owned(),
            Flip {
                offline_at: vec![wall],
                offline_at_end: true,
            },
        );
        let host = &self.host.other;
        eventually(
            "the sentinel's prompt cancelled by its flip (the feed drained)",
            SETTLE_WITHIN,
            || async { Ok(host.me().await?.prompt.is_none().then_some(())) },
        )
        .await?;
        let took = since.elapsed();
        let path = format!("/v1/prompts/{}/accept", prompt.id);
        let reply = host.raw(Service::Game, Method::POST, &path, None).await?;
        let closed = closed_reason(&reply.problem(409, ProblemCode::PromptClosed)?)?;
        ensure!(
            closed == Closed::Unavailable,
            "the sentinel's prompt closed {closed:?}, not `unavailable`: {}",
            reply.body
        );
        Ok(took)
    }
}

/// Waits (with a deadline) until every player offline at the end holds nothing their flip
/// closes: no invite prompt (an offline player has no partners), no waiting lobby they host,
/// and a join prompt only to a lobby opened after they went offline (an invite prompt made
/// while they were available may still invite them). Returns how many were waited for, and
/// how many of them hold such a join prompt.
pub(super) async fn wait_offline_players_out(
    members: &[&Member],
    report: &GroupReport,
) -> anyhow::Result<(usize, usize)> {
    let offline: Vec<(&Member, DateTime<Utc>)> = members
        .iter()
        .filter_map(|m| {
            let flip = report.flips.get(m.id()).filter(|f| f.offline_at_end)?;
            Some((*m, *flip.offline_at.last()?))
        })
        .collect();
    let count = offline.len();
    let outcomes: Vec<anyhow::Result<bool>> = stream::iter(offline)
        .map(|(member, since)| async move {
            let what = format!("{} offline, out of what their flip closes", member.id());
            let waited = eventually(&what, SETTLE_WITHIN, || async {
                let state = member.primary.me().await?;
                Ok(out_of_it(member, &state, since)
                    .await?
                    .then_some(state.prompt.is_some()))
            })
            .await;
            match waited {
                Ok(joining) => Ok(joining),
                Err(_) => {
                    let state = member.primary.me().await?;
                    anyhow::bail!("{what}: not within {SETTLE_WITHIN:?}: {}", brief(&state))
                }
            }
        })
        .buffer_unordered(CONCURRENT_GROUPS)
        .collect()
        .await;
    let mut failures = Vec::new();
    let mut joining = 0;
    for outcome in outcomes {
        match outcome {
            Ok(holds) => joining += usize::from(holds),
            Err(err) => failures.push(format!("{err:#}")),
        }
    }
    fail_if_any(
        "offline players still hold what their flip closes",
        &failures,
    )?;
    Ok((count, joining))
}

/// Whether an offline player's `state` holds nothing their flip (sent at `since`) closes.
async fn out_of_it(
    member: &Member,
    state: &PlayerState,
    since: DateTime<Utc>,
) -> anyhow::Result<bool> {
    if let Some(prompt) = &state.prompt {
        if prompt.kind == PromptKind::Invite {
            return Ok(false);
        }
        let lobby = prompt
            .session_id
            .context("a join prompt without its lobby")?;
        let lobby = member.primary.session(lobby).await?;
        // Timestamps have millisecond precision.
        return Ok(lobby.created_at + chrono::Duration::milliseconds(1) > since);
    }
    Ok(!state
        .session
        .as_ref()
        .is_some_and(|s| s.state == SessionState::Waiting && s.host.as_str() == member.id()))
}

/// How late the feed applied the flips: for each `unavailable` cancellation in a flipped
/// player's event stream, the time from their offline flip before it to the event. Fails if
/// one took longer than [`FEED_LAG`], the window the storm's checks tolerated it in. Returns
/// the cancellations seen and the longest lag.
pub(super) async fn feed_lags(
    members: &[&Member],
    report: &GroupReport,
) -> anyhow::Result<(usize, Duration)> {
    let flipped: Vec<(&Member, &Flip)> = members
        .iter()
        .filter_map(|m| Some((*m, report.flips.get(m.id())?)))
        .collect();
    let lags: Vec<anyhow::Result<Vec<Duration>>> = stream::iter(flipped)
        .map(|(member, flip)| async move {
            let events = member
                .primary
                .events(Some("0"))
                .await?
                .drain(REPLAY_QUIET)
                .await?;
            let mut lags = Vec::new();
            for event in events.iter().filter(|e| e.event == "prompt_cancelled") {
                if event.cancelled()?.reason != Reason::Unavailable {
                    continue;
                }
                let (ms, _) = event.position()?;
                let at = DateTime::<Utc>::from_timestamp_millis(i64::try_from(ms)?)
                    .context("an event id's time")?;
                let since = flip.offline_at.iter().rev().find(|t| **t <= at);
                let since = since.with_context(|| {
                    format!(
                        "{} heard a cancellation `unavailable` at {at} before any offline \
                         flip {:?}",
                        member.id(),
                        flip.offline_at
                    )
                })?;
                let lag = (at - *since).to_std().unwrap_or_default();
                ensure!(
                    lag <= FEED_LAG,
                    "{}'s prompt was cancelled `unavailable` {lag:?} after their offline flip, \
                     later than the {FEED_LAG:?} the storm tolerated (the contract: about a \
                     second)",
                    member.id()
                );
                lags.push(lag);
            }
            Ok(lags)
        })
        .buffer_unordered(CONCURRENT_GROUPS)
        .collect()
        .await;
    let mut all = Vec::new();
    for lag in lags {
        all.extend(lag?);
    }
    Ok((all.len(), all.into_iter().max().unwrap_or_default()))
}
