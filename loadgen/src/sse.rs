//! A held `GET /v1/events` stream: frames parsed as they arrive, each stamped with its arrival.

use std::time::Instant;

use shared_types::game::{Session, SessionState};
use uuid::Uuid;

use crate::failure::Failure;

/// One server-sent event: its name, its JSON text and when its last byte arrived.
#[derive(Debug, Clone)]
pub struct Frame {
    pub event: String,
    pub data: String,
    pub arrived: Instant,
}

/// A player's open event stream.
pub struct EventStream {
    response: reqwest::Response,
    buffer: Vec<u8>,
    /// When the newest bytes in `buffer` arrived: the arrival of any frame they complete.
    last_chunk: Instant,
}

impl EventStream {
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            response,
            buffer: Vec::new(),
            last_chunk: Instant::now(),
        }
    }

    /// The next event with data (keep-alive comments skipped); a timeout at `deadline`.
    pub async fn next(&mut self, deadline: tokio::time::Instant) -> Result<Frame, Failure> {
        const STEP: &str = "event_wait";
        loop {
            if let Some(frame) = self.take_frame() {
                return Ok(frame);
            }
            let chunk = tokio::time::timeout_at(deadline, self.response.chunk())
                .await
                .map_err(|_elapsed| Failure::Timeout { step: STEP })?
                .map_err(|err| Failure::from_reqwest(STEP, &err))?;
            let Some(bytes) = chunk else {
                return Err(Failure::protocol(STEP, "the event stream ended"));
            };
            self.last_chunk = Instant::now();
            self.buffer.extend(bytes.iter().filter(|b| **b != b'\r'));
        }
    }

    /// Skips events until `session` turns up in `state`; returns its arrival.
    pub async fn session_reaches(
        &mut self,
        session: Uuid,
        state: SessionState,
        deadline: tokio::time::Instant,
    ) -> Result<Instant, Failure> {
        loop {
            let frame = self.next(deadline).await?;
            if frame.event != "session" {
                continue;
            }
            let seen: Session = serde_json::from_str(&frame.data).map_err(|err| {
                Failure::protocol(
                    "event_wait",
                    format!("a session event that is not a Session: {err}"),
                )
            })?;
            if seen.id == session && seen.state == state {
                return Ok(frame.arrived);
            }
        }
    }

    /// The first `session` event, whichever session it is about.
    pub async fn first_session(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<(Session, Instant), Failure> {
        loop {
            let frame = self.next(deadline).await?;
            if frame.event == "session" {
                let session = serde_json::from_str(&frame.data).map_err(|err| {
                    Failure::protocol(
                        "event_wait",
                        format!("a session event that is not a Session: {err}"),
                    )
                })?;
                return Ok((session, frame.arrived));
            }
        }
    }

    /// Parses one complete frame off the buffer, if there is one with data.
    fn take_frame(&mut self) -> Option<Frame> {
        while let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
            let raw: Vec<u8> = self.buffer.drain(..end + 2).collect();
            if let Some(frame) = parse_frame(&String::from_utf8_lossy(&raw), self.last_chunk) {
                return Some(frame);
            }
        }
        None
    }
}

/// The `event:` and `data:` lines of one frame; `None` for a comment-only frame.
fn parse_frame(raw: &str, arrived: Instant) -> Option<Frame> {
    let mut event = None;
    let mut data: Vec<&str> = Vec::new();
    for line in raw.lines() {
        if line.is_empty() || line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event = Some(value.to_owned()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if data.is_empty() {
        return None;
    }
    Some(Frame {
        event: event.unwrap_or_else(|| "message".into()),
        data: data.join("\n"),
        arrived,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_keep_name_and_data_and_comments_are_skipped() {
        let now = Instant::now();
        assert!(parse_frame(": keep-alive\n\n", now).is_none());
        let frame = parse_frame("id: 1-0\nevent: session\ndata: {\"a\":1}\n\n", now);
        let frame = frame.map(|f| (f.event, f.data));
        assert_eq!(frame, Some(("session".into(), "{\"a\":1}".into())));
    }
}
