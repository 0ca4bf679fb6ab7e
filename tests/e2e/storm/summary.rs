//! What a storm did, printed before it is required to have done enough.

use std::{
    sync::atomic::Ordering,
    time::{Duration, Instant},
};

use super::{
    CONCURRENT_GROUPS, Config,
    acknowledged::Checked,
    applied::FlipTally,
    capacity::Tally,
    players::{GroupReport, Stats},
};

/// Everything the report names.
pub(super) struct Summary<'a> {
    pub(super) config: &'a Config,
    pub(super) groups: usize,
    pub(super) players: usize,
    pub(super) flipping: usize,
    pub(super) stats: &'a Stats,
    pub(super) report: &'a GroupReport,
    pub(super) tally: &'a Tally,
    pub(super) flipped: &'a FlipTally,
    pub(super) acknowledged: &'a Checked,
    pub(super) reanswered: usize,
    pub(super) offline_at_end: usize,
    pub(super) invited_offline: usize,
    pub(super) lags: usize,
    pub(super) max_lag: Duration,
    pub(super) drained: Duration,
    pub(super) started: Instant,
    pub(super) setup_time: Duration,
    pub(super) storm_time: Duration,
    pub(super) settle_time: Duration,
    pub(super) checks_started: Instant,
}

impl Summary<'_> {
    pub(super) fn print(&self) {
        let s = self;
        eprintln!(
            "storm: seed {seed}: {pairs} pairs + {trios} trios = {players} players, {rounds} rounds, \
             {groups} groups {CONCURRENT_GROUPS} at a time, 2 replicas\n\
             storm: {requests} game requests ({busy} busy retries), {conflicts} answers refused as \
             closed or contrary\n\
             storm: actions {actions:?}\n\
             storm: connects answered {connects:?}\n\
             storm: checked {mutual} mutual accepts, {strict} reconnects/double connects compared, \
             {contrary} contrary answer races, {reanswered} prompts answered again\n\
             storm: modes asked {asked:?}; stored sessions per mode {by_mode:?}: {lobbies} lobbies \
             of their invite's mode ({turned_solo} turned solo), {solo_default} other solo sessions \
             of the default, {joins} join prompts of their lobby's; sessions at their mode's size \
             {at_cap:?}\n\
             storm: full: {refused_full} answers refused `full` (each then holding nothing: \
             {nothing_seen}), {cancelled_full} prompts cancelled `full` in the records, \
             {nothing_full} players left holding nothing after one\n\
             storm: flips: {flippers} players in {flipping} groups went offline {went_offline} times \
             and available {went_available}; {offline_at_end} offline at the end ({invited_offline} \
             invited since, holding a join prompt); {refused_unavailable} \
             answers refused `unavailable`, {cancelled_unavailable} prompts cancelled `unavailable` in \
             the records ({lags} heard, the longest {max_lag:.1?} after the flip), {ended_offline} \
             lobbies ended by their host going offline; {offline_connects} connects while offline \
             ({offline_no_partner} solo `no_partner`); {touched} member-rounds compared loosely; \
             {applied} last changes applied; the feed drained {drained:.1?} after the sentinel's flip\n\
             storm: setup {setup_time:.1?}, storm {storm_time:.1?}, settle {settle_time:.1?}, \
             checks {checks:.1?}, total {total:.1?}",
            seed = s.config.seed,
            pairs = s.config.pairs,
            trios = s.config.trios,
            rounds = s
                .config
                .rounds
                .min(s.stats.rounds_played.load(Ordering::Relaxed) / s.groups.max(1)),
            groups = s.groups,
            requests = s.stats.requests.load(Ordering::Relaxed),
            busy = s.stats.busy_retries.load(Ordering::Relaxed),
            conflicts = s.stats.refused.load(Ordering::Relaxed),
            actions = s.report.actions,
            connects = s
                .stats
                .connects
                .lock()
                .map(|c| c.clone())
                .unwrap_or_default(),
            mutual = s.stats.mutual_checked.load(Ordering::Relaxed),
            strict = s.stats.strict_reconnects.load(Ordering::Relaxed),
            contrary = s.stats.contrary_races.load(Ordering::Relaxed),
            asked = s.report.modes_asked,
            by_mode = s.tally.sessions_by_mode,
            at_cap = s.tally.at_cap_by_mode,
            turned_solo = s.tally.lobbies_turned_solo,
            solo_default = s.tally.solo_default,
            lobbies = s.tally.lobbies_matched,
            joins = s.tally.joins_matched,
            nothing_seen = s.stats.nothing_after_full.load(Ordering::Relaxed),
            cancelled_full = s.tally.cancelled_full,
            nothing_full = s.tally.nothing_after_full,
            flippers = s.report.flips.len().saturating_sub(1),
            flipping = s.flipping,
            went_available = s.stats.went_available.load(Ordering::Relaxed),
            refused_unavailable = s.stats.refused_unavailable.load(Ordering::Relaxed),
            cancelled_unavailable = s.flipped.cancelled_unavailable,
            ended_offline = s.flipped.lobbies_ended_offline,
            offline_connects = s.stats.offline_connects.load(Ordering::Relaxed),
            offline_no_partner = s.stats.offline_no_partner.load(Ordering::Relaxed),
            touched = s.stats.touched_by_flips.load(Ordering::Relaxed),
            applied = s.flipped.applied,
            checks = s.checks_started.elapsed(),
            total = s.started.elapsed(),
            players = s.players,
            refused_full = s.stats.refused_full.load(Ordering::Relaxed),
            went_offline = s.stats.went_offline.load(Ordering::Relaxed),
            reanswered = s.reanswered,
            offline_at_end = s.offline_at_end,
            invited_offline = s.invited_offline,
            lags = s.lags,
            max_lag = s.max_lag,
            drained = s.drained,
            setup_time = s.setup_time,
            storm_time = s.storm_time,
            settle_time = s.settle_time,
        );
        let a = s.acknowledged;
        eprintln!(
            "storm: acknowledged, and found again afterwards: {} conversations, {} messages, {} \
             active sessions ({} of them still active with everyone who never left them, \
             where those players are)",
            a.conversations, a.messages, a.sessions, a.sessions_whole
        );
    }
}
