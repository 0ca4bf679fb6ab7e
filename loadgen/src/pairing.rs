//! One pairing: two fresh users chat, connect, accept and join, until both streams see `active`.

use std::time::{Duration, Instant};

use shared_types::game::{PlayerState, Prompt, PromptKind, Session, SessionState};
use uuid::Uuid;

use crate::{
    api::{Api, Player},
    failure::Failure,
};

/// What one completed pairing measured.
#[derive(Debug, Clone)]
pub struct Completed {
    /// Host's connect (→ invite) and invitee's connect (→ join).
    pub connects: [Duration; 2],
    /// Host's accept (→ waiting lobby) and invitee's accept (→ active session).
    pub accepts: [Duration; 2],
    /// From sending the invitee's accept to the `active` event on the host's stream.
    pub delivery: Duration,
    /// HTTP requests made, event streams and leaves included.
    pub requests: u64,
}

/// What the run learns from one attempt.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The pairing, when both players saw their session `active`.
    pub result: Result<Completed, Failure>,
    /// The clean-up (`leave`) failures, which do not undo a completion.
    pub cleanup: Vec<Failure>,
}

/// Plays the flow for users `host` and `guest` (ids unused before this run).
pub async fn play(api: &Api, host: String, guest: String) -> Outcome {
    let mut sessions = Vec::new();
    let result = flow(api, host, guest, &mut sessions).await;
    let leaves = sessions
        .iter()
        .map(|(player, session)| api.leave(player, *session));
    let cleanup = futures_util::future::join_all(leaves)
        .await
        .into_iter()
        .filter_map(Result::err)
        .collect();
    Outcome { result, cleanup }
}

/// Both `available`, the host opens a conversation with the guest and both post in it
/// (talking takes two: only then are they partners). Five requests.
pub(crate) async fn chatting(api: &Api, host: &Player, guest: &Player) -> Result<Uuid, Failure> {
    let (a, b) = tokio::join!(api.set_available(host), api.set_available(guest));
    a?;
    b?;
    let conversation = api.open_conversation(host, guest).await?;
    let (a, b) = tokio::join!(
        api.post_message(host, conversation),
        api.post_message(guest, conversation)
    );
    a?;
    b?;
    Ok(conversation)
}

/// The measured part; every session a player ends up in is pushed to `sessions` to leave.
async fn flow(
    api: &Api,
    host: String,
    guest: String,
    sessions: &mut Vec<(Player, Uuid)>,
) -> Result<Completed, Failure> {
    let host = api.player(host)?;
    let guest = api.player(guest)?;
    let mut requests = 0;

    requests += 5;
    chatting(api, &host, &guest).await?;
    let (host_events, guest_events) = tokio::join!(api.events(&host), api.events(&guest));
    requests += 2;
    let (mut host_events, mut guest_events) = (host_events?, guest_events?);

    let started = Instant::now();
    requests += 1;
    let state = api.connect(&host).await?;
    let host_connect = started.elapsed();
    let invite = open_prompt(state, PromptKind::Invite, "connect")?;
    if !invite.candidates.iter().any(|c| c.as_str() == guest.id) {
        return Err(Failure::protocol(
            "connect",
            format!("the invite names {:?}, not {}", invite.candidates, guest.id),
        ));
    }

    let started = Instant::now();
    requests += 1;
    let state = api.accept(&host, invite.id).await?;
    let host_accept = started.elapsed();
    let lobby = session_in(state, "accept")?;
    sessions.push((host.clone(), lobby.id));
    if lobby.state != SessionState::Waiting {
        return Err(Failure::protocol(
            "accept",
            format!("the host's lobby is {:?}, not waiting", lobby.state),
        ));
    }

    let started = Instant::now();
    requests += 1;
    let state = api.connect(&guest).await?;
    let guest_connect = started.elapsed();
    let join = open_prompt(state, PromptKind::Join, "connect")?;
    if join.session_id != Some(lobby.id) {
        return Err(Failure::protocol(
            "connect",
            format!(
                "the join prompt is for {:?}, not {}",
                join.session_id, lobby.id
            ),
        ));
    }

    // The activating accept: the host's event may arrive before the answer, so both are awaited
    // together and the event is stamped when its bytes arrive.
    let deadline = tokio::time::Instant::now() + api.timeout();
    let sent = Instant::now();
    requests += 1;
    let accept = async {
        let state = api.accept(&guest, join.id).await;
        (state, sent.elapsed())
    };
    let ((state, guest_accept), host_active) = tokio::join!(
        accept,
        host_events.session_reaches(lobby.id, SessionState::Active, deadline),
    );
    let active = session_in(state?, "accept")?;
    sessions.push((guest.clone(), active.id));
    if active.id != lobby.id || active.state != SessionState::Active {
        return Err(Failure::protocol(
            "accept",
            format!(
                "the invitee is in {} ({:?}), not the active lobby",
                active.id, active.state
            ),
        ));
    }
    let host_active = host_active?;
    guest_events
        .session_reaches(lobby.id, SessionState::Active, deadline)
        .await?;
    requests += 2; // the two leaves that follow

    Ok(Completed {
        connects: [host_connect, guest_connect],
        accepts: [host_accept, guest_accept],
        delivery: host_active.saturating_duration_since(sent),
        requests,
    })
}

pub(crate) fn open_prompt(
    state: PlayerState,
    kind: PromptKind,
    step: &'static str,
) -> Result<Prompt, Failure> {
    if state.degraded {
        return Err(Failure::Degraded { step });
    }
    match state.prompt {
        Some(prompt) if prompt.kind == kind => Ok(prompt),
        other => Err(Failure::protocol(
            step,
            format!(
                "expected a {kind:?} prompt, got prompt {:?} and session {:?} (degraded: {})",
                other.map(|p| p.kind),
                state.session.map(|s| (s.kind, s.state, s.reason)),
                state.degraded
            ),
        )),
    }
}

pub(crate) fn session_in(state: PlayerState, step: &'static str) -> Result<Session, Failure> {
    state
        .session
        .ok_or_else(|| Failure::protocol(step, "no session in the answer"))
}
