//! A player: a user with a token, and typed calls to the IM service and the game service.

use anyhow::{Context, ensure};
use reqwest::{Method, StatusCode, header};
use shared_types::{
    game::{PlayerState, Session},
    im::{Conversation, PartnersResponse},
    tickets::EventTicket,
};
use uuid::Uuid;

use super::{Api, EventStream, REQUEST_TIMEOUT, Replica, Reply, Service, reply::content_type};

/// A user with a token, and typed calls to both services.
#[derive(Clone)]
pub struct Player {
    pub id: String,
    pub(super) token: String,
    pub(super) api: Api,
}

impl Player {
    /// The same player with another token (a short-lived one, say).
    pub fn with_token(&self, token: String) -> Self {
        Self {
            token,
            ..self.clone()
        }
    }

    /// The `Authorization` header value this player sends (`Bearer <token>`), for requests
    /// built by hand.
    pub fn authorization(&self) -> String {
        format!("Bearer {}", self.token)
    }

    /// `POST /v1/events/tickets` of `service` with the player's token: a 201 that no cache
    /// may keep, with a ticket in it.
    pub async fn event_ticket(&self, service: Service) -> anyhow::Result<EventTicket> {
        let reply = self
            .raw(service, Method::POST, "/v1/events/tickets", None)
            .await?;
        ensure!(
            reply.status == StatusCode::CREATED,
            "{}: POST /v1/events/tickets of the {service:?} service answered {}: {}",
            self.id,
            reply.status,
            reply.body
        );
        let cache = reply
            .headers
            .get(header::CACHE_CONTROL)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        ensure!(
            cache == "no-store",
            "a ticket is a credential: Cache-Control {cache:?}"
        );
        let ticket: EventTicket = reply.json()?;
        ensure!(!ticket.ticket.is_empty(), "an empty ticket: {reply:?}");
        Ok(ticket)
    }

    /// A request with this player's token and one more header, for status-code checks.
    pub async fn raw_with_header(
        &self,
        service: Service,
        method: Method,
        path: &str,
        header: (&str, &str),
    ) -> anyhow::Result<Reply> {
        let auth = format!("Bearer {}", self.token);
        self.api
            .send_with(service, method, path, Some(&auth), None, &[header])
            .await
    }

    /// The same player, talking to `replica`'s service (the game service or the IM service)
    /// through it.
    pub fn via(&self, replica: &Replica) -> Self {
        let mut player = self.clone();
        match replica.service {
            Service::Game => player.api.game = replica.base_url.clone(),
            Service::Im => player.api.im = replica.base_url.clone(),
        }
        player
    }

    // ---- IM service -------------------------------------------------------------
    pub async fn set_presence(&self, status: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "status": status }).to_string();
        self.raw(Service::Im, Method::PUT, "/v1/presence", Some(&body))
            .await?
            .success()
            .with_context(|| format!("{} setting presence {status}", self.id))?;
        Ok(())
    }

    /// Opens a conversation with `others`; returns its id.
    pub async fn open_conversation(&self, others: &[&Player]) -> anyhow::Result<Uuid> {
        let participants: Vec<&str> = others.iter().map(|p| p.id.as_str()).collect();
        let body = serde_json::json!({ "participants": participants }).to_string();
        let conversation: Conversation = self
            .raw(Service::Im, Method::POST, "/v1/conversations", Some(&body))
            .await?
            .success()
            .with_context(|| format!("{} opening a conversation", self.id))?
            .json()?;
        Ok(conversation.id)
    }

    /// Opens a conversation with `other` and both post in it: from now on they talk.
    pub async fn talk_with(&self, other: &Player) -> anyhow::Result<Uuid> {
        let conversation = self.open_conversation(&[other]).await?;
        self.post_message(conversation, "hi").await?;
        other.post_message(conversation, "hi back").await?;
        Ok(conversation)
    }

    /// `PUT /v1/blocks/{user}`.
    pub async fn block(&self, user: &Player) -> anyhow::Result<()> {
        let path = format!("/v1/blocks/{}", user.id);
        self.raw(Service::Im, Method::PUT, &path, None)
            .await?
            .success()
            .with_context(|| format!("{} blocking {}", self.id, user.id))?;
        Ok(())
    }

    pub async fn post_message(&self, conversation: Uuid, text: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "text": text }).to_string();
        let path = format!("/v1/conversations/{conversation}/messages");
        self.raw(Service::Im, Method::POST, &path, Some(&body))
            .await?
            .success()
            .with_context(|| format!("{} posting a message", self.id))?;
        Ok(())
    }

    pub async fn close_conversation(&self, conversation: Uuid) -> anyhow::Result<()> {
        let path = format!("/v1/conversations/{conversation}/close");
        self.raw(Service::Im, Method::POST, &path, None)
            .await?
            .success()
            .with_context(|| format!("{} closing a conversation", self.id))?;
        Ok(())
    }

    /// `GET /v1/users/{self}/partners`, with an optional `status=` filter.
    pub async fn partners(&self, status: Option<&str>) -> anyhow::Result<PartnersResponse> {
        let mut path = format!("/v1/users/{}/partners", self.id);
        if let Some(status) = status {
            path.push_str(&format!("?status={status}"));
        }
        self.raw(Service::Im, Method::GET, &path, None)
            .await?
            .ok()
            .with_context(|| format!("{} asking for their partners", self.id))?
            .json()
    }

    // ---- game service -----------------------------------------------------------
    pub async fn connect(&self) -> anyhow::Result<PlayerState> {
        self.game_state(Method::POST, "/v1/connect".into(), None, "connecting")
            .await
    }

    pub async fn me(&self) -> anyhow::Result<PlayerState> {
        self.game_state(Method::GET, "/v1/me".into(), None, "reading /v1/me")
            .await
    }

    /// Accepts a prompt; `with` picks a subset of an invite's candidates.
    pub async fn accept(&self, prompt: Uuid, with: Option<&[&str]>) -> anyhow::Result<PlayerState> {
        let body = with.map(|ids| serde_json::json!({ "with": ids }).to_string());
        self.game_state(
            Method::POST,
            format!("/v1/prompts/{prompt}/accept"),
            body.as_deref(),
            "accepting",
        )
        .await
    }

    pub async fn reject(&self, prompt: Uuid) -> anyhow::Result<PlayerState> {
        self.game_state(
            Method::POST,
            format!("/v1/prompts/{prompt}/reject"),
            None,
            "rejecting",
        )
        .await
    }

    pub async fn session(&self, id: Uuid) -> anyhow::Result<Session> {
        self.raw(
            Service::Game,
            Method::GET,
            &format!("/v1/sessions/{id}"),
            None,
        )
        .await?
        .ok()
        .with_context(|| format!("{} reading session {id}", self.id))?
        .json()
    }

    pub async fn leave(&self, id: Uuid) -> anyhow::Result<PlayerState> {
        self.game_state(
            Method::POST,
            format!("/v1/sessions/{id}/leave"),
            None,
            "leaving",
        )
        .await
    }

    /// Opens the player's game event stream, replaying what followed `last_event_id`.
    pub async fn events(&self, last_event_id: Option<&str>) -> anyhow::Result<EventStream> {
        self.stream(Service::Game, last_event_id).await
    }

    /// Opens the player's `GET /v1/events` stream of `service` with their bearer token,
    /// replaying what followed `last_event_id` (sent as the `Last-Event-ID` header).
    pub async fn stream(
        &self,
        service: Service,
        last_event_id: Option<&str>,
    ) -> anyhow::Result<EventStream> {
        let mut request = self
            .api
            .client
            .get(format!("{}/v1/events", self.api.base(service)))
            .bearer_auth(&self.token)
            .header(header::ACCEPT, "text/event-stream");
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        let response = tokio::time::timeout(REQUEST_TIMEOUT, request.send())
            .await
            .context("opening the event stream timed out")?
            .context("opening the event stream")?;
        let status = response.status();
        let content_type = content_type(response.headers());
        ensure!(
            status == StatusCode::OK,
            "{}: GET /v1/events of the {service:?} service answered {status}",
            self.id
        );
        ensure!(
            content_type.starts_with("text/event-stream"),
            "{}: GET /v1/events of the {service:?} service answered content-type {content_type:?}",
            self.id
        );
        Ok(EventStream::new(self.id.clone(), response))
    }

    /// [`Self::stream_by_query`] on the game service.
    pub async fn events_by_query(
        &self,
        query: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Result<EventStream, Reply>> {
        self.stream_by_query(Service::Game, query, headers).await
    }

    /// Opens `GET /v1/events?{query}` of `service` as a browser's `EventSource` does: without
    /// `Authorization` (the query carries a ticket), with `headers`. The stream when it
    /// answers 200, else the reply read in full.
    /// Waits (up to `within`) until `service` refuses to open a stream with `query`
    /// (`ticket=…`): the refusal.
    pub async fn refused_within(
        &self,
        service: Service,
        query: &str,
        what: &str,
        within: std::time::Duration,
    ) -> anyhow::Result<Reply> {
        super::eventually(what, within, || async move {
            match self.stream_by_query(service, query, &[]).await? {
                Ok(_still_open) => Ok(None),
                Err(refusal) => Ok(Some(refusal)),
            }
        })
        .await
    }

    /// `ticket` (this player's, of `service`) opens nothing once it expired: a 401, and not
    /// before its `expires_at` (within a second: the clocks are the same, the rounding not).
    pub async fn expired_ticket_is_refused(
        &self,
        service: Service,
        ticket: &EventTicket,
    ) -> anyhow::Result<()> {
        let query = format!("ticket={}", ticket.ticket);
        let refusal = self
            .refused_within(
                service,
                &query,
                "the expired ticket is refused",
                std::time::Duration::from_secs(10),
            )
            .await?;
        refusal.problem(401, shared_types::problem::ProblemCode::Unauthorized)?;
        let now = chrono::Utc::now();
        ensure!(
            now >= ticket.expires_at - chrono::Duration::seconds(1),
            "refused at {now}, before its expires_at {}",
            ticket.expires_at
        );
        Ok(())
    }

    pub async fn stream_by_query(
        &self,
        service: Service,
        query: &str,
        headers: &[(&str, &str)],
    ) -> anyhow::Result<Result<EventStream, Reply>> {
        let path = format!("/v1/events?{query}");
        let mut request = self
            .api
            .client
            .get(format!("{}{path}", self.api.base(service)))
            .header(header::ACCEPT, "text/event-stream");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let start = std::time::Instant::now();
        let response = tokio::time::timeout(REQUEST_TIMEOUT, request.send())
            .await
            .context("opening the event stream timed out")?
            .context("opening the event stream")?;
        let status = response.status();
        if status == StatusCode::OK {
            let content_type = content_type(response.headers());
            ensure!(
                content_type.starts_with("text/event-stream"),
                "{}: GET /v1/events answered content-type {content_type:?}",
                self.id
            );
            return Ok(Ok(EventStream::new(self.id.clone(), response)));
        }
        let headers = response.headers().clone();
        let body = tokio::time::timeout(REQUEST_TIMEOUT, response.text())
            .await
            .context("reading a refusal of the event stream timed out")?
            .context("reading a refusal of the event stream")?;
        Ok(Err(Reply {
            method: Method::GET,
            path,
            status,
            headers,
            body,
            elapsed: start.elapsed(),
        }))
    }

    /// A request with this player's token, for status-code checks.
    pub async fn raw(
        &self,
        service: Service,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> anyhow::Result<Reply> {
        let auth = format!("Bearer {}", self.token);
        self.api
            .send(service, method, path, Some(&auth), body)
            .await
    }

    async fn game_state(
        &self,
        method: Method,
        path: String,
        body: Option<&str>,
        doing: &str,
    ) -> anyhow::Result<PlayerState> {
        let state: PlayerState = self
            .raw(Service::Game, method, &path, body)
            .await?
            .ok()
            .with_context(|| format!("{} {doing} ({path})", self.id))?
            .json()?;
        ensure!(
            state.player_id.as_str() == self.id,
            "{path} answered the state of {} to {}",
            state.player_id,
            self.id
        );
        Ok(state)
    }
}
