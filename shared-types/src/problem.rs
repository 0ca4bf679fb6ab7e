//! The one error body of both services (RFC 9457 `application/problem+json`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub const CONTENT_TYPE: &str = "application/problem+json";

/// Stable error codes; each maps to one HTTP status and one `type` URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[schema(example = json!("not_found"))]
pub enum ProblemCode {
    InvalidRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    AlreadyAnswered,
    PromptClosed,
    ConversationClosed,
    /// The request body did not arrive in time.
    RequestTimeout,
    PayloadTooLarge,
    UriTooLong,
    UnsupportedMediaType,
    HeadersTooLarge,
    RateLimited,
    StoreUnavailable,
    /// The players a request involves are busy with concurrent requests.
    LockContention,
    /// The caller has as many open conversations as one user may have.
    ConversationLimit,
    /// The caller has blocked as many users as one user may block.
    BlockLimit,
    /// A game `mode` that `GAME_MODES` does not list.
    UnknownMode,
    /// Launching a game for a player who already has an open prompt or session.
    AlreadyPlaying,
    /// Launching a game from a conversation in which nobody else can be invited.
    NobodyToInvite,
    /// The game service (called by the IM service) is down or too slow.
    GameUnavailable,
    /// An `Idempotency-Key` header that is not 1-255 visible ASCII characters.
    InvalidIdempotencyKey,
    /// An `Idempotency-Key` the caller already used for a request with another body.
    IdempotencyKeyReused,
    Internal,
}

impl ProblemCode {
    pub fn status(self) -> u16 {
        match self {
            Self::InvalidRequest | Self::UnknownMode | Self::InvalidIdempotencyKey => 400,
            Self::Unauthorized => 401,
            Self::Forbidden => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::AlreadyAnswered
            | Self::PromptClosed
            | Self::ConversationClosed
            | Self::ConversationLimit
            | Self::BlockLimit
            | Self::AlreadyPlaying
            | Self::NobodyToInvite => 409,
            Self::RequestTimeout => 408,
            Self::PayloadTooLarge => 413,
            Self::UriTooLong => 414,
            Self::HeadersTooLarge => 431,
            Self::UnsupportedMediaType => 415,
            Self::IdempotencyKeyReused => 422,
            Self::RateLimited => 429,
            Self::StoreUnavailable | Self::LockContention | Self::GameUnavailable => 503,
            Self::Internal => 500,
        }
    }

    pub fn slug(self) -> &'static str {
        match self {
            Self::InvalidRequest => "invalid-request",
            Self::Unauthorized => "unauthorized",
            Self::Forbidden => "forbidden",
            Self::NotFound => "not-found",
            Self::MethodNotAllowed => "method-not-allowed",
            Self::AlreadyAnswered => "already-answered",
            Self::PromptClosed => "prompt-closed",
            Self::ConversationClosed => "conversation-closed",
            Self::RequestTimeout => "request-timeout",
            Self::PayloadTooLarge => "payload-too-large",
            Self::UriTooLong => "uri-too-long",
            Self::HeadersTooLarge => "headers-too-large",
            Self::UnsupportedMediaType => "unsupported-media-type",
            Self::RateLimited => "rate-limited",
            Self::StoreUnavailable => "store-unavailable",
            Self::LockContention => "lock-contention",
            Self::ConversationLimit => "conversation-limit",
            Self::BlockLimit => "block-limit",
            Self::UnknownMode => "unknown-mode",
            Self::AlreadyPlaying => "already-playing",
            Self::NobodyToInvite => "nobody-to-invite",
            Self::GameUnavailable => "game-unavailable",
            Self::InvalidIdempotencyKey => "invalid-idempotency-key",
            Self::IdempotencyKeyReused => "idempotency-key-reused",
            Self::Internal => "internal",
        }
    }

    pub fn title(self) -> &'static str {
        match self {
            Self::InvalidRequest => "The request is malformed or invalid",
            Self::Unauthorized => "A valid bearer token is required",
            Self::Forbidden => "The token does not allow this",
            Self::NotFound => "No such resource",
            Self::MethodNotAllowed => "Method not allowed on this resource",
            Self::AlreadyAnswered => "The prompt was already answered differently",
            Self::PromptClosed => "The prompt is no longer open",
            Self::ConversationClosed => "The conversation is closed",
            Self::RequestTimeout => "The request body did not arrive in time",
            Self::PayloadTooLarge => "The request body is too large",
            Self::UriTooLong => "The request URI is too long",
            Self::HeadersTooLarge => "The request headers are too large",
            Self::UnsupportedMediaType => "The request body must be application/json",
            Self::RateLimited => "Too many requests",
            Self::StoreUnavailable => "The store is unavailable; retry later",
            Self::LockContention => "The players involved are busy; retry shortly",
            Self::ConversationLimit => "Too many open conversations; close one first",
            Self::BlockLimit => "Too many blocked users; unblock one first",
            Self::UnknownMode => "No such game mode",
            Self::AlreadyPlaying => "The player already has an open prompt or session",
            Self::NobodyToInvite => "Nobody in this conversation can be invited",
            Self::GameUnavailable => "The game service is unavailable; retry later",
            Self::InvalidIdempotencyKey => "The Idempotency-Key header is invalid",
            Self::IdempotencyKeyReused => "This Idempotency-Key was used for another request",
            Self::Internal => "Internal error",
        }
    }

    /// The `type` URI: stable, relative to the service (RFC 9457 allows references).
    pub fn type_uri(self) -> String {
        format!("/problems/{}", self.slug())
    }
}

/// RFC 9457 problem details.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"type": "/problems/not-found", "title": "No such resource", "status": 404, "detail": "no prompt with this id", "code": "not_found"}))]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The same code as `type`, as an enum for clients that switch on it.
    pub code: ProblemCode,
}

impl Problem {
    pub fn new(code: ProblemCode, detail: impl Into<String>) -> Self {
        Self {
            type_: code.type_uri(),
            title: code.title().to_owned(),
            status: code.status(),
            detail: Some(detail.into()),
            code,
        }
    }
}
