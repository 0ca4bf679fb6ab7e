//! A group chatting while it plays (failover storms): in each round some members post in one of the group's conversations and now and then one opens another; every 201 is recorded as acknowledged, every refusal of a failing-over store counted.

use anyhow::{Context, bail};
use futures_util::future::join_all;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use reqwest::{Method, StatusCode};
use shared_types::im::{Conversation, Message};
use uuid::Uuid;

use super::{
    acknowledged::Acknowledged,
    players::{Member, Stats},
};
use crate::helpers::{Reply, Service};

/// The share of members posting in a round.
const POSTING: f64 = 0.5;
/// The chance that a member opens another conversation with the group in a round.
const OPENING: f64 = 0.05;
/// A group with more conversations open closes its oldest but the first at a round's start:
/// a soak's hundreds of rounds would otherwise reach `IM_MAX_OPEN_CONVERSATIONS` (100).
const KEEP_OPEN: usize = 8;

/// A group's conversations, the first from the storm's setup.
pub(super) struct Chatter {
    conversations: Vec<Uuid>,
    /// Taken out of `conversations` to be closed, its close refused (it may have happened):
    /// closed again before anything else, never posted to.
    closing: Option<Uuid>,
}

impl Chatter {
    pub(super) fn new(first: Uuid) -> Self {
        Self {
            conversations: vec![first],
            closing: None,
        }
    }

    /// One round's chat, each member at once; records what was acknowledged.
    pub(super) async fn round(
        &mut self,
        group: &[Member],
        round: usize,
        seed: u64,
        stats: &Stats,
        acknowledged: &mut Acknowledged,
    ) -> anyhow::Result<()> {
        let mut rng = StdRng::seed_from_u64(seed);
        if self.closing.is_none() && self.conversations.len() > KEEP_OPEN {
            self.closing = Some(self.conversations.remove(1));
        }
        if let (Some(closing), Some(closer)) = (self.closing, group.first())
            && close(closer, closing, stats)
                .await
                .with_context(|| format!("round {round}: closing a conversation"))?
        {
            self.closing = None;
        }
        let plans: Vec<(usize, Option<Uuid>, bool)> = (0..group.len())
            .map(|k| {
                let posts = rng.random_bool(POSTING);
                let into = self.conversations.choose(&mut rng).copied();
                (k, into.filter(|_| posts), rng.random_bool(OPENING))
            })
            .collect();
        let said = join_all(plans.into_iter().map(|(k, into, opens)| async move {
            let member = &group[k];
            let mut done = Acknowledged::default();
            let mut opened = None;
            if opens {
                opened = open(group, member, stats).await?;
                if let Some(id) = opened {
                    done.conversation(id, member.id());
                }
            }
            if let Some(conversation) = opened.or(into) {
                let text = format!("{} in round {round}, {}", member.id(), Uuid::new_v4());
                if let Some(message) = post(member, conversation, &text, stats).await? {
                    done.message(&message);
                }
            }
            Ok::<_, anyhow::Error>((done, opened))
        }))
        .await;
        for outcome in said {
            let (done, opened) = outcome.with_context(|| format!("round {round}: chatting"))?;
            self.conversations.extend(opened);
            acknowledged.extend(done);
        }
        Ok(())
    }
}

/// `POST /v1/conversations` with the rest of the group: its id on a 201, `None` when the
/// store refused it.
async fn open(group: &[Member], member: &Member, stats: &Stats) -> anyhow::Result<Option<Uuid>> {
    let others: Vec<&str> = group
        .iter()
        .map(Member::id)
        .filter(|id| *id != member.id())
        .collect();
    let body = serde_json::json!({ "participants": others }).to_string();
    let outcome = member
        .primary
        .raw(Service::Im, Method::POST, "/v1/conversations", Some(&body))
        .await;
    Ok(created::<Conversation>(outcome, stats)?.map(|c| c.id))
}

/// Closes `conversation`: whether it is closed (`false` when the store refused it).
async fn close(member: &Member, conversation: Uuid, stats: &Stats) -> anyhow::Result<bool> {
    let path = format!("/v1/conversations/{conversation}/close");
    let outcome = member
        .primary
        .raw(Service::Im, Method::POST, &path, None)
        .await;
    match stats.outages.im_reply(outcome)? {
        Some(reply) => reply.success().map(|_| true),
        None => Ok(false),
    }
}

/// Posts `text`: the message on a 201, `None` when the store refused it.
pub(super) async fn post(
    member: &Member,
    conversation: Uuid,
    text: &str,
    stats: &Stats,
) -> anyhow::Result<Option<Message>> {
    let body = serde_json::json!({ "text": text }).to_string();
    let path = format!("/v1/conversations/{conversation}/messages");
    let outcome = member
        .primary
        .raw(Service::Im, Method::POST, &path, Some(&body))
        .await;
    created(outcome, stats)
}

/// A 201's body, or `None` for a refusal the storm tolerates; anything else fails.
fn created<T: serde::de::DeserializeOwned>(
    outcome: anyhow::Result<Reply>,
    stats: &Stats,
) -> anyhow::Result<Option<T>> {
    let Some(reply) = stats.outages.im_reply(outcome)? else {
        return Ok(None);
    };
    if reply.status == StatusCode::CREATED {
        return reply.json().map(Some);
    }
    bail!(
        "{} {} answered {}: {}",
        reply.method,
        reply.path,
        reply.status,
        reply.body
    )
}
