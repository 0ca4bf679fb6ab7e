//! Why one step failed, sorted into the kinds the report counts (HTTP status, timeout, …).

use std::fmt;

/// One failed step of a flow. `step` names the call (`connect`, `accept`, `event_wait`, …).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// The service answered with an unexpected status.
    Status {
        step: &'static str,
        status: u16,
        body: String,
    },
    /// No answer (or no awaited event) within the limit.
    Timeout { step: &'static str },
    /// The connection failed or broke.
    Transport { step: &'static str, detail: String },
    /// An answer of the wrong shape or state: the flow did not go as the contract says.
    Protocol { step: &'static str, detail: String },
    /// The game service could not ask the IM service in time and fell back to a solo session.
    Degraded { step: &'static str },
}

impl Failure {
    pub fn protocol(step: &'static str, detail: impl Into<String>) -> Self {
        Self::Protocol {
            step,
            detail: detail.into(),
        }
    }

    /// The request error as reqwest saw it: a timeout or a transport failure.
    pub fn from_reqwest(step: &'static str, err: &reqwest::Error) -> Self {
        if err.is_timeout() {
            Self::Timeout { step }
        } else {
            Self::Transport {
                step,
                detail: error_chain(err),
            }
        }
    }

    /// The key the report counts this under: `http_503`, `timeout`, `transport`, `protocol`,
    /// `degraded`.
    pub fn kind(&self) -> String {
        match self {
            Self::Status { status, .. } => format!("http_{status}"),
            Self::Timeout { .. } => "timeout".into(),
            Self::Transport { .. } => "transport".into(),
            Self::Protocol { .. } => "protocol".into(),
            Self::Degraded { .. } => "degraded".into(),
        }
    }

    pub fn step(&self) -> &'static str {
        match self {
            Self::Status { step, .. }
            | Self::Timeout { step }
            | Self::Degraded { step }
            | Self::Transport { step, .. }
            | Self::Protocol { step, .. } => step,
        }
    }
}

impl std::error::Error for Failure {}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Status { step, status, body } => write!(f, "{step}: HTTP {status}: {body}"),
            Self::Timeout { step } => write!(f, "{step}: timed out"),
            Self::Transport { step, detail } => write!(f, "{step}: {detail}"),
            Self::Protocol { step, detail } => write!(f, "{step}: {detail}"),
            Self::Degraded { step } => {
                write!(
                    f,
                    "{step}: degraded (IM service unavailable: solo fallback)"
                )
            }
        }
    }
}

/// reqwest's message and its sources ("error sending request: connection refused").
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_name_the_status_or_the_class() {
        let status = Failure::Status {
            step: "connect",
            status: 503,
            body: String::new(),
        };
        assert_eq!(status.kind(), "http_503");
        assert_eq!(Failure::Timeout { step: "accept" }.kind(), "timeout");
        assert_eq!(Failure::protocol("connect", "no prompt").kind(), "protocol");
        assert_eq!(Failure::protocol("connect", "no prompt").step(), "connect");
    }
}
