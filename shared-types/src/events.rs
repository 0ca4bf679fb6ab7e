//! What an event of a user's stream is, for either service: an SSE name and a JSON payload.

use serde::{Serialize, de::DeserializeOwned};

/// A service's events: each has an SSE `event:` name and a JSON `data:` payload.
pub trait Payload:
    Clone + std::fmt::Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The SSE `event:` line.
    fn name(&self) -> &'static str;
    /// The SSE `data:` line: the event's payload as JSON.
    fn data(&self) -> String;
}
