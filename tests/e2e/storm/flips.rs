//! Presence flips during the storm: one member of a tenth of the groups goes `offline` in the IM service between two rounds and `available` again some rounds later, and what a flip may legally cause while the game service catches up with the presence feed.

use std::{
    ops::RangeInclusive,
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use anyhow::{Context, ensure};
use chrono::Utc;
use rand::{Rng, rngs::StdRng};
use shared_types::game::{PlayerState, PromptKind, Reason, SessionKind};

use super::{
    actions::Acted,
    players::{GroupReport, Member, Stats},
    requests::brief,
};

/// One group in this many has a member who flips.
pub(super) const FLIPPING_ONE_IN: usize = 10;
/// How long after an offline flip was sent its effects may still land. The feed is polled
/// every 500 ms and a change whose player is busy waits for the next poll; the contract says
/// "within about a second". The storm measures the real lag afterwards and fails if a
/// cancellation landed later than this (the window would then have been too short).
pub(super) const FEED_LAG: Duration = Duration::from_secs(5);
/// Rounds spent offline before going `available` again (past the last round: offline to the
/// end). A round takes about 100 ms, the feed is polled every 500 ms.
const OFFLINE_ROUNDS: RangeInclusive<usize> = 3..=8;
/// While offline, a flipper is away from the game: they act in this share of the rounds
/// only (else a prompt would mostly be answered before the feed gets to cancel it).
const ACTIVE_WHILE_OFFLINE: f64 = 0.2;

/// A group's member who flips, and when.
pub(super) struct Flipper {
    member: usize,
    /// The first round they may go offline before; they wait until the game knows them.
    offline_round: usize,
    /// Rounds they stay offline.
    offline_for: usize,
    /// The round they go available again before, once they went offline.
    available_round: Option<usize>,
    /// The game has a record of them (they connected, or hold something): the game skips a
    /// change of a player it never saw.
    known: bool,
    /// When the offline flip was sent.
    offline_since: Option<Instant>,
    /// Their IM status is `offline` now.
    offline: bool,
}

impl Flipper {
    /// A member at random goes offline before some round after the first, once the game
    /// knows them, and back a few rounds later.
    pub(super) fn plan(members: usize, rounds: usize, rng: &mut StdRng) -> Self {
        Self {
            member: rng.random_range(0..members.max(1)),
            offline_round: rng.random_range(1..rounds.max(2)),
            offline_for: rng.random_range(OFFLINE_ROUNDS),
            available_round: None,
            known: false,
            offline_since: None,
            offline: false,
        }
    }

    /// Whether member `k` is away this round: the flipper, offline, not acting.
    pub(super) fn away(&self, k: usize, rng: &mut StdRng) -> bool {
        k == self.member && self.offline && !rng.random_bool(ACTIVE_WHILE_OFFLINE)
    }

    /// Notes what the round showed of the flipper: whether the game knows them now.
    pub(super) fn note(&mut self, before: &[PlayerState], acted: &[Acted]) {
        let held = before
            .get(self.member)
            .is_some_and(|s| s.prompt.is_some() || s.session.is_some());
        let connected = acted
            .get(self.member)
            .is_some_and(|a| !a.connected.is_empty());
        self.known |= held || connected;
    }

    /// The side step before `round`'s states are read: going offline, or available again, as
    /// planned.
    pub(super) async fn step(
        &mut self,
        group: &[Member],
        round: usize,
        stats: &Stats,
        report: &mut GroupReport,
    ) -> anyhow::Result<()> {
        let due_offline =
            self.available_round.is_none() && self.known && round >= self.offline_round;
        let offline = match self.available_round {
            _ if due_offline => true,
            Some(r) if r == round => false,
            _ => return Ok(()),
        };
        let member = group.get(self.member).context("the flipper is no member")?;
        let (since, wall) = (Instant::now(), Utc::now());
        let status = if offline { "offline" } else { "available" };
        member.primary.set_presence(status).await?;
        let flip = report.flips.entry(member.id().to_owned()).or_default();
        if offline {
            self.available_round = Some(round + self.offline_for);
            self.offline_since = Some(since);
            flip.offline_at.push(wall);
            stats.went_offline.fetch_add(1, Ordering::Relaxed);
        } else {
            stats.went_available.fetch_add(1, Ordering::Relaxed);
        }
        self.offline = offline;
        flip.offline_at_end = offline;
        Ok(())
    }
}

/// What a round's presence means for one member's checks.
#[derive(Debug, Clone, Default)]
pub(super) struct RoundPresence {
    /// Their own offline flip may land during this round: their prompt may close
    /// `unavailable`, their waiting lobby may end.
    pub(super) landing: bool,
    /// A flip may change their state behind their back this round (it is theirs, or their
    /// state names the flipper): comparisons of their states before and after are off.
    pub(super) touched: bool,
    /// They are `offline` for the whole round.
    pub(super) offline: bool,
    /// Who is `offline` for the whole round: nobody's partner.
    pub(super) offline_ids: Vec<String>,
}

/// Each member's [`RoundPresence`] for a round whose states `before` were read from
/// `started` on.
pub(super) fn round_presence(
    flipper: Option<&Flipper>,
    group: &[Member],
    before: &[PlayerState],
    started: Instant,
    stats: &Stats,
) -> Vec<RoundPresence> {
    let mut presence = vec![RoundPresence::default(); group.len()];
    let Some(flipper) = flipper else {
        return presence;
    };
    let Some(id) = group.get(flipper.member).map(Member::id) else {
        return presence;
    };
    let landing = flipper
        .offline_since
        .is_some_and(|since| started < since + FEED_LAG);
    let offline_ids = if flipper.offline {
        vec![id.to_owned()]
    } else {
        Vec::new()
    };
    // The flipper's own state names those it reaches that theirs may not show: an invitee
    // with nothing open holds a hidden invitation to the flipper's waiting lobby, which the
    // flip ends.
    let flippers_state = before.get(flipper.member);
    for (k, ((member, state), who)) in presence.iter_mut().zip(before).zip(group).enumerate() {
        let own = k == flipper.member;
        let reached = flippers_state.is_some_and(|s| names(s, who.id()));
        member.landing = landing && own;
        member.touched = landing && (own || names(state, id) || reached);
        member.offline = flipper.offline && own;
        member.offline_ids.clone_from(&offline_ids);
        if member.touched {
            stats.touched_by_flips.fetch_add(1, Ordering::Relaxed);
        }
    }
    presence
}

/// Whether `state` names `id` anywhere: a candidate or host of its prompt, a host, player or
/// invitee of its session.
fn names(state: &PlayerState, id: &str) -> bool {
    let prompt = state.prompt.as_ref().is_some_and(|p| {
        p.candidates.iter().any(|c| c.as_str() == id)
            || p.host.as_ref().is_some_and(|h| h.as_str() == id)
    });
    let session = state.session.as_ref().is_some_and(|s| {
        s.host.as_str() == id
            || s.players.iter().any(|p| p.as_str() == id)
            || s.pending.iter().any(|p| p.as_str() == id)
    });
    prompt || session
}

/// A connect's answer gives nobody an offline partner: an invite prompt it made names no one
/// offline the whole round, and a connect while offline made no invite prompt and, if it made
/// a session, a solo one `no_partner`. What it made is what the state `before` did not hold.
pub(super) fn check_connect(
    before: &PlayerState,
    after: &PlayerState,
    presence: &RoundPresence,
    stats: &Stats,
) -> anyhow::Result<()> {
    let made_prompt = after
        .prompt
        .as_ref()
        .filter(|p| before.prompt.as_ref().map(|b| b.id) != Some(p.id));
    if let Some(invite) = made_prompt.filter(|p| p.kind == PromptKind::Invite) {
        ensure!(
            !presence.offline,
            "a connect while offline found partners: {}",
            brief(after)
        );
        let offline: Vec<&str> = invite
            .candidates
            .iter()
            .map(|c| c.as_str())
            .filter(|c| presence.offline_ids.iter().any(|o| o == c))
            .collect();
        ensure!(
            offline.is_empty(),
            "an invite prompt named {offline:?}, offline the whole round: {}",
            brief(after)
        );
    }
    if !presence.offline {
        return Ok(());
    }
    stats.offline_connects.fetch_add(1, Ordering::Relaxed);
    let made_session = after
        .session
        .as_ref()
        .filter(|s| before.session.as_ref().map(|b| b.id) != Some(s.id));
    if let Some(session) = made_session {
        ensure!(
            session.kind == SessionKind::Solo && session.reason == Some(Reason::NoPartner),
            "a connect while offline made something else than a solo session `no_partner`: {}",
            brief(after)
        );
        stats.offline_no_partner.fetch_add(1, Ordering::Relaxed);
    }
    Ok(())
}
