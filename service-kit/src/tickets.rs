//! Event-stream tickets, stored so that any replica accepts what another issued.
//!
//! A browser's `EventSource` cannot send `Authorization`: the page trades its
//! token for a short-lived ticket (`POST /v1/events/tickets`) and opens
//! `GET /v1/events?ticket=…`. Only a SHA-256 of the ticket is stored, under
//! `<prefix>:ticket:<hash>`, with the player and the token's own expiry (a
//! stream never outlives the credential it came from), for
//! `EVENT_TICKET_TTL_SECS`. A ticket may open several streams while it lives
//! (an `EventSource` reconnects with the same URL).

use std::{
    collections::HashMap,
    future::Future,
    pin::Pin,
    str::FromStr,
    sync::Mutex,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use actix_web::{FromRequest, HttpRequest, dev::Payload, post, web};
use anyhow::Context;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use rand::RngCore;
use sha2::{Digest, Sha256};
use shared_types::{UserId, auth::Caller, tickets::EventTicket};

use crate::{ApiError, redis_conn::RedisConn, redis_replication::Replication};

/// Default `EVENT_TICKET_TTL_SECS`: long enough to open a stream, short enough to leak nothing.
pub const DEFAULT_TICKET_TTL_SECS: u64 = 60;
/// Random bytes in a ticket (256 bits: unguessable).
const TICKET_BYTES: usize = 32;
/// Past this many live tickets the in-memory store drops the expired ones.
const MEMORY_PRUNE_AT: usize = 4096;

/// Who a ticket speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub player: UserId,
    /// The expiry of the token it was issued for (seconds since the epoch).
    pub token_expires_at: u64,
}

/// Issues and redeems tickets.
pub struct Tickets {
    backend: Backend,
    ttl: Duration,
}

enum Backend {
    /// The in-memory store's twin: one process.
    /// By digest: the holder and when the ticket dies (ms since the epoch).
    Memory(Mutex<HashMap<String, (Holder, u64)>>),
    Redis {
        conn: RedisConn,
        prefix: String,
    },
}

impl Tickets {
    /// Kept in this process only (with the in-memory store).
    pub fn in_memory(ttl: Duration) -> Self {
        Self {
            backend: Backend::Memory(Mutex::new(HashMap::new())),
            ttl,
        }
    }

    /// Kept in Redis under `<prefix>:ticket:…`: every replica redeems them.
    pub fn in_redis(conn: RedisConn, prefix: &str, ttl: Duration) -> Self {
        Self {
            backend: Backend::Redis {
                conn,
                prefix: prefix.to_owned(),
            },
            ttl,
        }
    }

    /// A service's tickets, lasting `EVENT_TICKET_TTL_SECS`: in Redis beside
    /// its other keys when it has a `redis_url` (any replica redeems them),
    /// else in this process.
    pub fn from_env(redis_url: Option<&str>, cluster: bool, prefix: &str) -> anyhow::Result<Self> {
        let ttl = Self::ttl_from_env()?;
        Ok(match redis_url {
            Some(url) => {
                let conn = RedisConn::connect(url, cluster)?.replicated(Replication::from_env()?);
                Self::in_redis(conn, prefix, ttl)
            }
            None => Self::in_memory(ttl),
        })
    }

    /// `EVENT_TICKET_TTL_SECS` (at least 1).
    pub fn ttl_from_env() -> anyhow::Result<Duration> {
        let secs: u64 = crate::config::env_or("EVENT_TICKET_TTL_SECS", DEFAULT_TICKET_TTL_SECS)?;
        anyhow::ensure!(secs >= 1, "EVENT_TICKET_TTL_SECS must be at least 1");
        Ok(Duration::from_secs(secs))
    }

    /// A new ticket for `caller`, living `EVENT_TICKET_TTL_SECS` or until the token expires.
    pub async fn issue(&self, caller: &Caller) -> Result<EventTicket, ApiError> {
        // Milliseconds: a ticket of a one-second TTL lives a whole second.
        let now = unix_now_ms();
        let ttl = u64::try_from(self.ttl.as_millis()).unwrap_or(u64::MAX);
        let until = now
            .saturating_add(ttl)
            .min(caller.expires_at.saturating_mul(1000));
        let mut bytes = [0u8; TICKET_BYTES];
        rand::rng().fill_bytes(&mut bytes);
        let ticket = URL_SAFE_NO_PAD.encode(bytes);
        let holder = Holder {
            player: caller.user_id.clone(),
            token_expires_at: caller.expires_at,
        };
        match &self.backend {
            Backend::Memory(map) => {
                let mut map = map
                    .lock()
                    .map_err(|_| ApiError::unexpected(&anyhow::anyhow!("ticket map poisoned")))?;
                if map.len() >= MEMORY_PRUNE_AT {
                    map.retain(|_, (_, until)| *until > now);
                }
                map.insert(digest(&ticket), (holder, until));
            }
            Backend::Redis { conn, prefix } => {
                let value = format!("{}\n{}", holder.player, holder.token_expires_at);
                // An absolute expiry: the key dies exactly at `expires_at`.
                redis::cmd("SET")
                    .arg(key(prefix, &ticket))
                    .arg(value)
                    .arg("PXAT")
                    .arg(until)
                    .query_async::<()>(&mut conn.clone())
                    .await
                    .context("storing an event-stream ticket")
                    .map_err(|err| ApiError::store_unavailable(&err))?;
            }
        }
        let expires_at =
            chrono::DateTime::from_timestamp_millis(i64::try_from(until).unwrap_or(i64::MAX))
                .unwrap_or_default();
        Ok(EventTicket { ticket, expires_at })
    }

    /// Who `ticket` speaks for; `None` when it is unknown or expired.
    pub async fn redeem(&self, ticket: &str) -> Result<Option<Holder>, ApiError> {
        match &self.backend {
            Backend::Memory(map) => {
                let map = map
                    .lock()
                    .map_err(|_| ApiError::unexpected(&anyhow::anyhow!("ticket map poisoned")))?;
                Ok(map
                    .get(&digest(ticket))
                    .filter(|(holder, until)| {
                        let now = unix_now_ms();
                        *until > now && holder.token_expires_at.saturating_mul(1000) > now
                    })
                    .map(|(holder, _)| holder.clone()))
            }
            Backend::Redis { conn, prefix } => {
                let value: Option<String> = redis::cmd("GET")
                    .arg(key(prefix, ticket))
                    .query_async(&mut conn.clone())
                    .await
                    .context("reading an event-stream ticket")
                    .map_err(|err| ApiError::store_unavailable(&err))?;
                Ok(value
                    .and_then(|v| parse_holder(&v))
                    .filter(|holder| holder.token_expires_at.saturating_mul(1000) > unix_now_ms()))
            }
        }
    }
}

fn digest(ticket: &str) -> String {
    let hash = Sha256::digest(ticket.as_bytes());
    hash.iter().map(|b| format!("{b:02x}")).collect()
}

fn key(prefix: &str, ticket: &str) -> String {
    format!("{prefix}:ticket:{}", digest(ticket))
}

fn parse_holder(value: &str) -> Option<Holder> {
    let (player, expires) = value.split_once('\n')?;
    Some(Holder {
        player: UserId::from_str(player).ok()?,
        token_expires_at: expires.parse().ok()?,
    })
}

fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// The player opening an event stream: by `Authorization: Bearer` (scope
/// `player`), or by `?ticket=` (both: they must name the same player).
#[derive(Debug, Clone)]
pub struct StreamPlayer {
    pub player: UserId,
    /// When the stream must end: the token's expiry (seconds since the epoch).
    pub expires_at: u64,
    /// `last_event_id` of the query (the `Last-Event-ID` header's twin).
    pub last_event_id: Option<String>,
}

#[derive(serde::Deserialize)]
struct StreamQuery {
    ticket: Option<String>,
    last_event_id: Option<String>,
}

impl FromRequest for StreamPlayer {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let query = web::Query::<StreamQuery>::from_query(req.query_string())
                .map_err(|_| ApiError::invalid("the query must be ticket=…&last_event_id=…"))?
                .into_inner();
            // A bearer token, when sent, must be a player's (as on every player endpoint).
            let by_token = if req
                .headers()
                .contains_key(actix_web::http::header::AUTHORIZATION)
            {
                let crate::auth::Authenticated(caller) =
                    crate::auth::Authenticated::extract(&req).await?;
                if caller.is_service() {
                    return Err(ApiError::forbidden(
                        "this endpoint is for players: use a token with scope `player`",
                    ));
                }
                Some(caller)
            } else {
                None
            };
            let (player, expires_at) = match (&query.ticket, by_token) {
                (None, None) => {
                    return Err(ApiError::unauthorized(
                        "missing Authorization header or ticket (POST /v1/events/tickets)",
                    ));
                }
                (None, Some(caller)) => (caller.user_id, caller.expires_at),
                (Some(ticket), by_token) => {
                    let tickets = req.app_data::<web::Data<Tickets>>().ok_or_else(|| {
                        ApiError::unexpected(&anyhow::anyhow!("no Tickets registered"))
                    })?;
                    let holder = tickets
                        .redeem(ticket)
                        .await?
                        .filter(|h| by_token.as_ref().is_none_or(|c| c.user_id == h.player))
                        .ok_or_else(|| {
                            ApiError::unauthorized(
                                "the ticket is unknown, expired or another player's",
                            )
                        })?;
                    (holder.player, holder.token_expires_at)
                }
            };
            Ok(Self {
                player,
                expires_at,
                last_event_id: query.last_event_id,
            })
        })
    }
}

/// A ticket that opens this player's event stream (for browsers).
///
/// A browser's `EventSource` cannot send `Authorization`: trade the token for
/// a ticket here and open `GET /v1/events?ticket=…`. The ticket opens streams
/// of this player only, on any replica, until `expires_at`
/// (`EVENT_TICKET_TTL_SECS`, 60 by default, or the token's expiry if sooner);
/// a stream it opens ends when the token expires. Tickets never appear in the
/// services' logs.
#[utoipa::path(
    tag = "events",
    responses(
        (status = 201, description = "A new ticket", body = EventTicket),
        (status = 403, description = "A `service` token: streams are for players", body = shared_types::problem::Problem, content_type = "application/problem+json"),
    )
)]
#[post("/v1/events/tickets")]
pub async fn issue_ticket(
    caller: crate::auth::Authenticated,
    tickets: web::Data<Tickets>,
) -> Result<actix_web::HttpResponse, ApiError> {
    if caller.0.is_service() {
        return Err(ApiError::forbidden(
            "this endpoint is for players: use a token with scope `player`",
        ));
    }
    let ticket = tickets.issue(&caller.0).await?;
    Ok(actix_web::HttpResponse::Created()
        // A credential: no cache may keep it.
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-store"))
        .json(ticket))
}
