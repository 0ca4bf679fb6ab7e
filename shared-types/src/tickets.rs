//! Event-stream tickets: what a browser's `EventSource`, which cannot send an
//! `Authorization` header, opens a stream with.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Answer of `POST /v1/events/tickets`.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[schema(example = json!({"ticket": "q3Vb0m8yXc1Zp9RkT4sLwE7uHn2JfA6dGiK5oYtBvQe", "expires_at": "2026-11-23T10:01:00Z"}))]
pub struct EventTicket {
    /// Opaque; pass it as `GET /v1/events?ticket=…`. Opens streams of this
    /// player only, until `expires_at`; a stream it opens ends when the token
    /// it was issued for expires. Never logged by the services.
    pub ticket: String,
    /// After this the ticket opens nothing (`EVENT_TICKET_TTL_SECS` after it
    /// was issued, or the token's own expiry if sooner).
    pub expires_at: DateTime<Utc>,
}
