//! After the storm: the chat knows who plays. A sample of the players in an active session show `in_game` for that session in their IM presence (read with a `service` token), within a few seconds; a sample of the others show no activity.

use std::time::Duration;

use futures_util::{StreamExt, stream};
use rand::{rngs::StdRng, seq::IndexedRandom};
use reqwest::Method;
use shared_types::{
    activity::Activity,
    game::{PlayerState, SessionState},
    presence::Presence,
};
use uuid::Uuid;

use super::{CONCURRENT_GROUPS, requests::brief};
use crate::helpers::{Service, TestWorld, eventually, invariants::fail_if_any};

/// Players checked of each kind (in an active session; not).
const SAMPLE: usize = 150;
/// The activity reports are jobs delivered in batches: a few seconds after the last change.
const WITHIN: Duration = Duration::from_secs(15);

/// Checks a sample of `states` (everyone's, after the storm); returns how many players were
/// seen in game and how many without activity.
pub(super) async fn check_in_game(
    world: &TestWorld,
    states: &[PlayerState],
    rng: &mut StdRng,
) -> anyhow::Result<(usize, usize)> {
    let auth = format!("Bearer {}", world.service_token()?);
    let playing = |s: &&PlayerState| {
        s.session
            .as_ref()
            .is_some_and(|s| s.state == SessionState::Active)
    };
    let (active, idle): (Vec<&PlayerState>, Vec<&PlayerState>) = states.iter().partition(playing);
    let mut sample: Vec<(&PlayerState, Option<(Uuid, &str)>)> = Vec::new();
    for state in active.choose_multiple(rng, SAMPLE) {
        sample.push((
            *state,
            state.session.as_ref().map(|s| (s.id, s.mode.as_str())),
        ));
    }
    sample.extend(idle.choose_multiple(rng, SAMPLE).map(|s| (*s, None)));
    let auth = &auth;
    let outcomes: Vec<anyhow::Result<()>> = stream::iter(sample.iter().copied())
        .map(|(state, session)| async move {
            let id = state.player_id.as_str();
            let path = format!("/v1/users/{id}/presence");
            let read = || async {
                let presence: Presence = world
                    .raw(Service::Im, Method::GET, &path, Some(auth.as_str()), None)
                    .await?
                    .ok()?
                    .json()?;
                Ok::<_, anyhow::Error>(presence)
            };
            let shows = |presence: &Presence| match (&presence.activity, session) {
                (None, None) => true,
                (
                    Some(Activity::InGame {
                        session_id, mode, ..
                    }),
                    Some((expected, of)),
                ) => *session_id == expected && mode == of,
                _ => false,
            };
            let what = format!("{id}'s IM presence showing activity {session:?}");
            let seen = eventually(&what, WITHIN, || async {
                Ok(shows(&read().await?).then_some(()))
            })
            .await;
            if seen.is_err() {
                let presence = read().await?;
                let player = world.player(id)?;
                let shown = match &presence.activity {
                    Some(Activity::InGame { session_id, .. }) => {
                        format!("{:?}", player.session(*session_id).await)
                    }
                    None => "nothing".to_owned(),
                };
                anyhow::bail!(
                    "{what}: not within {WITHIN:?}: {presence:?}; the game has them in {}; the \
                     session the chat shows: {shown}",
                    brief(&player.me().await?)
                );
            }
            Ok(())
        })
        .buffer_unordered(CONCURRENT_GROUPS)
        .collect()
        .await;
    let failures: Vec<String> = outcomes
        .into_iter()
        .filter_map(|o| o.err().map(|e| format!("{e:#}")))
        .collect();
    fail_if_any("the chat does not know who plays", &failures)?;
    let in_game = sample.iter().filter(|(_, s)| s.is_some()).count();
    Ok((in_game, sample.len() - in_game))
}
