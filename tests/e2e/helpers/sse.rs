//! A player's `GET /v1/events` stream of either service, parsed frame by frame (`id:`,
//! `event:`, `data:`), with typed views of each service's payloads.

use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use serde::de::DeserializeOwned;
use shared_types::{
    game::{Prompt, PromptCancelled, Session},
    im::{Conversation, Message},
    presence::Presence,
};

/// How long to wait for one pushed event before calling it missing.
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(5);

/// One server-sent event.
#[derive(Debug, Clone, PartialEq)]
pub struct SseEvent {
    pub id: Option<String>,
    pub event: String,
    pub data: serde_json::Value,
}

impl SseEvent {
    pub fn prompt(&self) -> anyhow::Result<Prompt> {
        self.payload("prompt")
    }

    pub fn cancelled(&self) -> anyhow::Result<PromptCancelled> {
        self.payload("prompt_cancelled")
    }

    pub fn session(&self) -> anyhow::Result<Session> {
        self.payload("session")
    }

    /// An IM `message` event's message.
    pub fn message(&self) -> anyhow::Result<Message> {
        self.payload("message")
    }

    /// An IM `conversation` event's conversation (opened, or closed when `closed`).
    pub fn conversation(&self) -> anyhow::Result<Conversation> {
        self.payload("conversation")
    }

    /// An IM `presence` event's presence.
    pub fn presence(&self) -> anyhow::Result<Presence> {
        self.payload("presence")
    }

    /// The `id:` as `(millis, seq)`, which orders a user's events (`<millis>` alone is
    /// `<millis>-0`).
    pub fn position(&self) -> anyhow::Result<(u64, u64)> {
        let id = self
            .id
            .as_deref()
            .with_context(|| format!("an event without an id: {self:?}"))?;
        let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
        Ok((
            ms.parse().with_context(|| format!("event id {id:?}"))?,
            seq.parse().with_context(|| format!("event id {id:?}"))?,
        ))
    }

    /// The data of an event named `name`, of type `T`.
    pub fn payload<T: DeserializeOwned>(&self, name: &str) -> anyhow::Result<T> {
        ensure!(self.event == name, "expected a {name} event, got {self:?}");
        serde_json::from_value(self.data.clone())
            .with_context(|| format!("a {name} event of an unexpected shape: {}", self.data))
    }
}

/// How a stream stopped, as [`EventStream::until_end`] saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamEnd {
    /// The body ended properly (the chunked encoding's last chunk): a clean close.
    Clean,
    /// The connection broke mid-body (reset, truncated chunk): the error as reqwest saw it.
    Broken(String),
    /// Still open at the deadline.
    StillOpen,
}

/// A player's open `GET /v1/events` stream, parsed frame by frame.
pub struct EventStream {
    owner: String,
    response: reqwest::Response,
    buffer: Vec<u8>,
}

impl EventStream {
    pub(super) fn new(owner: String, response: reqwest::Response) -> Self {
        Self {
            owner,
            response,
            buffer: Vec::new(),
        }
    }

    /// The headers the stream was answered with.
    pub fn headers(&self) -> &reqwest::header::HeaderMap {
        self.response.headers()
    }

    /// The next event, or `None` when none arrives `within` (keep-alive comments skipped).
    /// Cancel-safe: a timed-out `chunk()` has not taken anything off the body.
    pub async fn next_within(&mut self, within: Duration) -> anyhow::Result<Option<SseEvent>> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(event) = self.take_frame()? {
                return Ok(Some(event));
            }
            let chunk = match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_elapsed) => return Ok(None),
                Ok(chunk) => chunk.with_context(|| format!("reading {}'s events", self.owner))?,
            };
            match chunk {
                Some(bytes) => self.buffer.extend(bytes.iter().filter(|b| **b != b'\r')),
                None => bail!("{}'s event stream ended", self.owner),
            }
        }
    }

    /// The next event; an error when none arrives in [`EVENT_TIMEOUT`].
    pub async fn next_event(&mut self, what: &str) -> anyhow::Result<SseEvent> {
        self.next_within(EVENT_TIMEOUT).await?.with_context(|| {
            format!(
                "{} never received {what} within {EVENT_TIMEOUT:?}",
                self.owner
            )
        })
    }

    /// Skips events until one matches; an error when none does in [`EVENT_TIMEOUT`].
    pub async fn wait_for(
        &mut self,
        what: &str,
        matches: impl Fn(&SseEvent) -> bool,
    ) -> anyhow::Result<SseEvent> {
        Ok(self.until(what, matches).await?.1)
    }

    /// Reads until an event matches (within [`EVENT_TIMEOUT`]): the events before it, and
    /// it. What a test proves absent arrives, if at all, before an event it causes later.
    pub async fn until(
        &mut self,
        what: &str,
        matches: impl Fn(&SseEvent) -> bool,
    ) -> anyhow::Result<(Vec<SseEvent>, SseEvent)> {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next_within(left).await? {
                Some(event) if matches(&event) => return Ok((seen, event)),
                Some(event) => seen.push(event),
                None => break,
            }
        }
        bail!(
            "{} never received {what} within {EVENT_TIMEOUT:?}; got {seen:#?}",
            self.owner
        )
    }

    /// Every event until the stream stays quiet for `quiet`.
    pub async fn drain(&mut self, quiet: Duration) -> anyhow::Result<Vec<SseEvent>> {
        let mut events = Vec::new();
        while let Some(event) = self.next_within(quiet).await? {
            events.push(event);
        }
        Ok(events)
    }

    /// Reads until the stream ends (or `within` passes): the events that came first, and how
    /// it ended.
    pub async fn until_end(&mut self, within: Duration) -> (Vec<SseEvent>, StreamEnd) {
        let deadline = tokio::time::Instant::now() + within;
        let mut events = Vec::new();
        loop {
            match self.take_frame() {
                Ok(Some(event)) => {
                    events.push(event);
                    continue;
                }
                Ok(None) => {}
                Err(err) => return (events, StreamEnd::Broken(format!("{err:#}"))),
            }
            match tokio::time::timeout_at(deadline, self.response.chunk()).await {
                Err(_elapsed) => return (events, StreamEnd::StillOpen),
                Ok(Ok(Some(bytes))) => self.buffer.extend(bytes.iter().filter(|b| **b != b'\r')),
                Ok(Ok(None)) => return (events, StreamEnd::Clean),
                Ok(Err(err)) => return (events, StreamEnd::Broken(format!("{err:#}"))),
            }
        }
    }

    /// Parses one complete frame off the buffer, if there is one with data.
    fn take_frame(&mut self) -> anyhow::Result<Option<SseEvent>> {
        while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = self.buffer.drain(..end + 2).collect();
            let frame = String::from_utf8(frame).context("an event frame is not UTF-8")?;
            if let Some(event) = parse_frame(&frame)? {
                return Ok(Some(event));
            }
        }
        Ok(None)
    }
}

/// `id:`, `event:` and `data:` lines of one frame; `None` for comment-only frames.
fn parse_frame(frame: &str) -> anyhow::Result<Option<SseEvent>> {
    let mut id = None;
    let mut event = None;
    let mut data: Vec<&str> = Vec::new();
    for line in frame.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "id" => id = Some(value.to_owned()),
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if data.is_empty() {
        return Ok(None);
    }
    let data = data.join("\n");
    let data =
        serde_json::from_str(&data).with_context(|| format!("event data is not JSON: {data:?}"))?;
    Ok(Some(SseEvent {
        id,
        event: event.unwrap_or_else(|| "message".into()),
        data,
    }))
}
