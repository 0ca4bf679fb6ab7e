//! What the services acknowledged during a storm (conversations and messages answered 201, active sessions an accept answered 200 with) and, afterwards, that every one of them is still there: the messages read back through the IM service, the sessions in the store's records and in their players' `/v1/me`.

use std::{
    collections::{BTreeSet, HashMap, HashSet},
    time::Instant,
};

use anyhow::{Context, ensure};
use futures_util::{StreamExt, stream};
use reqwest::{Method, StatusCode};
use shared_types::{
    game::{PlayerState, SessionKind, SessionState},
    im::{Message, MessagePage},
};
use uuid::Uuid;

use super::{CONCURRENT_GROUPS, players::Member, requests::brief};
use crate::helpers::{
    Service,
    invariants::{Records, fail_if_any, ids_of, text},
};

/// Messages read per page (the IM service's most).
const PAGE: usize = 200;

/// A message a 201 answered.
#[derive(Debug, Clone)]
pub(super) struct AckedMessage {
    pub(super) conversation: Uuid,
    pub(super) seq: u64,
    pub(super) sender: String,
    pub(super) text: String,
    pub(super) at: Instant,
}

/// Everything acknowledged, with when.
#[derive(Debug, Clone, Default)]
pub(super) struct Acknowledged {
    /// Conversations answered 201: (id, a participant who reads it back, when).
    pub(super) conversations: Vec<(Uuid, String, Instant)>,
    pub(super) messages: Vec<AckedMessage>,
    /// Active multiplayer sessions an accept was answered 200 with: id → the players it
    /// named, and when it was first seen.
    pub(super) sessions: HashMap<Uuid, (BTreeSet<String>, Instant)>,
}

/// How many acknowledged items were checked, for the report.
#[derive(Debug, Default)]
pub(super) struct Checked {
    pub(super) conversations: usize,
    pub(super) messages: usize,
    pub(super) sessions: usize,
    /// Sessions some of whose players never left them: still active, with those players, and
    /// in their `/v1/me`.
    pub(super) sessions_whole: usize,
}

impl Acknowledged {
    pub(super) fn conversation(&mut self, id: Uuid, reader: &str) {
        self.conversations
            .push((id, reader.to_owned(), Instant::now()));
    }

    pub(super) fn message(&mut self, message: &Message) {
        self.messages.push(AckedMessage {
            conversation: message.conversation_id,
            seq: message.seq,
            sender: message.sender.as_str().to_owned(),
            text: message.text.clone(),
            at: Instant::now(),
        });
    }

    /// An accept's 200 answer: its session, if it is an active multiplayer one (everyone in
    /// it accepted).
    pub(super) fn accepted(&mut self, state: &PlayerState) {
        let Some(session) = state
            .session
            .as_ref()
            .filter(|s| s.kind == SessionKind::Multiplayer && s.state == SessionState::Active)
        else {
            return;
        };
        let players = session.players.iter().map(|p| p.as_str().to_owned());
        let (named, _) = self
            .sessions
            .entry(session.id)
            .or_insert_with(|| (BTreeSet::new(), Instant::now()));
        named.extend(players);
    }

    pub(super) fn extend(&mut self, other: Acknowledged) {
        self.conversations.extend(other.conversations);
        self.messages.extend(other.messages);
        for (id, (players, at)) in other.sessions {
            let (named, first) = self.sessions.entry(id).or_insert((BTreeSet::new(), at));
            named.extend(players);
            *first = (*first).min(at);
        }
    }

    /// Enough recorded to prove anything: an active session per four groups and, when the
    /// groups chatted, a message per two group-rounds and a conversation opened mid-storm per
    /// ten groups (besides the setup's, one per group).
    pub(super) fn ensure_enough(
        &self,
        groups: usize,
        rounds: usize,
        chat: bool,
    ) -> anyhow::Result<()> {
        let sessions = self.sessions.len();
        ensure!(
            sessions * 4 >= groups,
            "too few acknowledged sessions recorded to prove anything: {sessions} for {groups} \
             groups (are accepts' answers still recorded?)"
        );
        if !chat {
            return Ok(());
        }
        let (messages, opened) = (
            self.messages.len(),
            self.conversations.len().saturating_sub(groups),
        );
        ensure!(
            messages * 2 >= groups * rounds && opened * 10 >= groups,
            "too few acknowledged messages or conversations recorded to prove anything: \
             {messages} messages and {opened} conversations opened mid-storm for {groups} \
             groups of {rounds} rounds (are the 201s still recorded?)"
        );
        Ok(())
    }

    /// Conversations, messages and sessions acknowledged from `from` to `to`.
    pub(super) fn between(&self, from: Instant, to: Instant) -> (usize, usize, usize) {
        let within = |at: &Instant| (from..to).contains(at);
        (
            self.conversations.iter().filter(|c| within(&c.2)).count(),
            self.messages.iter().filter(|m| within(&m.at)).count(),
            self.sessions.values().filter(|s| within(&s.1)).count(),
        )
    }
}

/// Every acknowledged item is still there (see the module's doc); `left` are the sessions
/// players left (player, session), `states` everyone's `/v1/me` after the storm.
pub(super) async fn check_acknowledged(
    acknowledged: &Acknowledged,
    members: &[&Member],
    left: &HashSet<(String, Uuid)>,
    records: &Records,
    states: &[PlayerState],
) -> anyhow::Result<Checked> {
    let mut checked = Checked::default();
    let mut violations = Vec::new();
    let by_id: HashMap<&str, &PlayerState> =
        states.iter().map(|s| (s.player_id.as_str(), s)).collect();
    for (id, (players, _)) in &acknowledged.sessions {
        checked.sessions += 1;
        let Some(stored) = records.sessions.get(&id.to_string()) else {
            violations.push(format!(
                "session {id}, acknowledged active with {players:?}, is not in the store"
            ));
            continue;
        };
        // Whoever did not leave it is still in it, and it is where they are: nothing else
        // takes a player out of an active session (nothing expires or is abandoned in a storm).
        let stayed: Vec<&String> = players
            .iter()
            .filter(|p| !left.contains(&((*p).clone(), *id)))
            .collect();
        if stayed.is_empty() {
            continue;
        }
        let stored_players = ids_of(stored, "players");
        let elsewhere: Vec<String> = stayed
            .iter()
            .filter(|p| {
                let session = by_id.get(p.as_str()).and_then(|s| s.session.as_ref());
                session.is_none_or(|s| s.id != *id)
            })
            .map(|p| {
                by_id
                    .get(p.as_str())
                    .map_or(format!("{p} unknown"), |s| brief(s))
            })
            .collect();
        if text(stored, "state") != "active"
            || !stayed.iter().all(|p| stored_players.contains(p))
            || !elsewhere.is_empty()
        {
            violations.push(format!(
                "session {id} was acknowledged active with {players:?}; {stayed:?} never left \
                 it, but it is stored as {stored} and they are in {elsewhere:?}"
            ));
            continue;
        }
        checked.sessions_whole += 1;
    }
    let messages = check_messages(acknowledged, members).await;
    fail_if_any("acknowledged sessions, and lost", &violations)?;
    (checked.conversations, checked.messages) = messages?;
    Ok(checked)
}

/// Every acknowledged conversation is there, with every acknowledged message in it, as the
/// IM service answers a participant; how many of each were checked.
pub(super) async fn check_messages(
    acknowledged: &Acknowledged,
    members: &[&Member],
) -> anyhow::Result<(usize, usize)> {
    let mut violations = Vec::new();
    let mut expected: HashMap<Uuid, (String, Vec<&AckedMessage>)> = HashMap::new();
    for (id, reader, _) in &acknowledged.conversations {
        expected
            .entry(*id)
            .or_insert_with(|| (reader.clone(), Vec::new()));
    }
    for message in &acknowledged.messages {
        expected
            .entry(message.conversation)
            .or_insert_with(|| (message.sender.clone(), Vec::new()))
            .1
            .push(message);
    }
    let players: HashMap<&str, &Member> = members.iter().map(|m| (m.id(), *m)).collect();
    let players = &players;
    let read: Vec<anyhow::Result<Vec<String>>> = stream::iter(expected)
        .map(|(conversation, (reader, messages))| async move {
            let reader = players
                .get(reader.as_str())
                .with_context(|| format!("{reader} is no player of the storm"))?;
            let kept = read_all(reader, conversation).await?;
            let Some(kept) = kept else {
                return Ok(vec![format!(
                    "conversation {conversation} was acknowledged but is gone (404 to {})",
                    reader.id()
                )]);
            };
            let mut missing = Vec::new();
            for message in messages {
                let found = kept.get(&message.seq);
                if found
                    .is_none_or(|m| m.sender.as_str() != message.sender || m.text != message.text)
                {
                    missing.push(format!(
                        "message {} of conversation {conversation} ({:?} by {}) was \
                         acknowledged, but the conversation holds {found:?}",
                        message.seq, message.text, message.sender
                    ));
                }
            }
            Ok(missing)
        })
        .buffer_unordered(CONCURRENT_GROUPS)
        .collect()
        .await;
    for missing in read {
        violations.extend(missing?);
    }
    let conversations = acknowledged
        .conversations
        .iter()
        .map(|c| c.0)
        .chain(acknowledged.messages.iter().map(|m| m.conversation))
        .collect::<BTreeSet<_>>()
        .len();
    fail_if_any(
        "acknowledged conversations and messages, and lost",
        &violations,
    )?;
    Ok((conversations, acknowledged.messages.len()))
}

/// Every message `conversation` keeps, by seq; `None` if it is gone (404).
async fn read_all(
    reader: &Member,
    conversation: Uuid,
) -> anyhow::Result<Option<HashMap<u64, Message>>> {
    let mut kept = HashMap::new();
    let mut after = 0;
    loop {
        let path = format!("/v1/conversations/{conversation}/messages?after={after}&limit={PAGE}");
        let reply = reader
            .primary
            .raw(Service::Im, Method::GET, &path, None)
            .await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        let page: MessagePage = reply.ok()?.json()?;
        let last = page.messages.last().map(|m| m.seq);
        let full = page.messages.len() == PAGE;
        kept.extend(page.messages.into_iter().map(|m| (m.seq, m)));
        match last {
            Some(seq) if full => {
                ensure!(seq > after, "paging {conversation} went backwards");
                after = seq;
            }
            _ => return Ok(Some(kept)),
        }
    }
}
