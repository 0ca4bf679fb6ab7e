//! Event-stream tickets: a browser trades its token for a ticket that opens its stream on any replica, until it expires, and that no log ever shows.
//!
//! The steps the tests share are here; the tests, by topic, in the submodules.

mod access;
mod lifetime;
mod replicas_and_logs;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use shared_types::{
    UserId,
    auth::{Claims, DEFAULT_AUDIENCE, DEFAULT_ISSUER, Scope},
    problem::ProblemCode,
    tickets::EventTicket,
};

use crate::helpers::{
    EventStream, Player, Reply, SECRET, Service, SseEvent, StateExt, StreamEnd, WorldOptions,
    spawn_world, spawn_world_with,
};

/// Silence that means "nothing more is coming" once the scenario is over.
const QUIET: Duration = Duration::from_millis(1000);
/// `EVENT_TICKET_TTL_SECS` unless a world sets it.
const DEFAULT_TICKET_TTL_SECS: i64 = 60;
/// Clock granularity (tickets and tokens count whole seconds) plus a loaded machine.
const SLACK: chrono::Duration = chrono::Duration::seconds(2);

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A player token for `sub` expiring at `exp`, signed as the world's tokens are.
fn token(sub: &str, exp: u64) -> anyhow::Result<String> {
    let claims = Claims {
        sub: UserId::parse(sub)?,
        exp,
        iat: Some(now()),
        nbf: None,
        iss: DEFAULT_ISSUER.into(),
        aud: DEFAULT_AUDIENCE.into(),
        scope: Scope::Player,
    };
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(SECRET.as_bytes()),
    )?)
}

/// `POST /v1/events/tickets` of the game service with the player's token.
async fn issue(player: &Player) -> anyhow::Result<EventTicket> {
    player.event_ticket(Service::Game).await
}

fn query(ticket: &EventTicket, last_event_id: Option<&str>) -> String {
    match last_event_id {
        Some(id) => format!("ticket={}&last_event_id={id}", ticket.ticket),
        None => format!("ticket={}", ticket.ticket),
    }
}

/// The player's stream opened with `ticket` alone (no `Authorization`), which must work.
async fn open(
    player: &Player,
    ticket: &EventTicket,
    last_event_id: Option<&str>,
) -> anyhow::Result<EventStream> {
    match player
        .events_by_query(&query(ticket, last_event_id), &[])
        .await?
    {
        Ok(stream) => Ok(stream),
        Err(refusal) => bail!("{}'s ticket was refused: {refusal:?}", player.id),
    }
}

/// The answer to `query`, which must be a refusal (not a stream).
async fn refused(player: &Player, query: &str, headers: &[(&str, &str)]) -> anyhow::Result<Reply> {
    match player.events_by_query(query, headers).await? {
        Ok(_stream) => bail!("GET /v1/events?{query} opened {}'s stream", player.id),
        Err(refusal) => Ok(refusal),
    }
}

/// Waits (up to `within`) until `ticket` no longer opens the player's stream; the refusal.
async fn refused_within(
    player: &Player,
    ticket: &EventTicket,
    what: &str,
    within: Duration,
) -> anyhow::Result<Reply> {
    player
        .refused_within(Service::Game, &query(ticket, None), what, within)
        .await
}

fn ids(events: &[SseEvent]) -> Vec<Option<&str>> {
    events.iter().map(|e| e.id.as_deref()).collect()
}

fn event_id(event: &SseEvent) -> anyhow::Result<&str> {
    event
        .id
        .as_deref()
        .with_context(|| format!("an event without an id: {event:?}"))
}
