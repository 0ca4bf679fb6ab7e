//! Idempotency keys (`Idempotency-Key`, the IETF httpapi draft's header): what a valid key is, how long a store remembers one, and what makes two requests "the same".

use std::time::Duration;

use anyhow::Context;
use shared_types::{UserId, im::GameAnnouncement};

/// Longest idempotency key, in characters (all visible ASCII, so also in bytes).
pub const MAX_KEY_LEN: usize = 255;

/// The pattern a key matches, as the OpenAPI document states it.
pub const KEY_PATTERN: &str = "^[!-~]{1,255}$";

/// How long a store remembers a key after its first request: a day, or the store's retention
/// (`IM_RETENTION_SECS`) when that is shorter. A repeat within it answers the first request's
/// resource; after it, a key is new again.
pub const WINDOW: Duration = Duration::from_secs(24 * 3600);

/// What a store keeps a key for: [`WINDOW`], or its `retention` when shorter.
pub fn window_within(retention: Duration) -> Duration {
    WINDOW.min(retention)
}

/// A client's idempotency key: 1-255 visible ASCII characters (`!` to `~`), compared byte for
/// byte. Scoped to its caller and operation by the stores: two callers' keys never meet.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an Idempotency-Key is 1-{MAX_KEY_LEN} visible ASCII characters (`!` to `~`, no spaces)")]
pub struct InvalidIdempotencyKey;

impl IdempotencyKey {
    /// The key in a header value (bytes, as HTTP carries them).
    pub fn parse(raw: &[u8]) -> Result<Self, InvalidIdempotencyKey> {
        let valid = (1..=MAX_KEY_LEN).contains(&raw.len()) && raw.iter().all(u8::is_ascii_graphic);
        match std::str::from_utf8(raw) {
            Ok(key) if valid => Ok(Self(key.to_owned())),
            _ => Err(InvalidIdempotencyKey),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What makes two creations with one key the same request: the people of the conversation
/// (the caller first, duplicates dropped, in order), since that is all a creation asks for.
pub fn conversation_fingerprint(participants: &[UserId]) -> String {
    // User ids never hold a comma: the list reads back unambiguously.
    let people: Vec<&str> = participants.iter().map(UserId::as_str).collect();
    format!("conversation\n{}", people.join(","))
}

/// What makes two posts with one key (in one conversation) the same request: the text and,
/// for a `game` message, the announcement (a text message has none).
pub fn message_fingerprint(text: &str, game: Option<&GameAnnouncement>) -> anyhow::Result<String> {
    Ok(match game {
        Some(game) => {
            let game = serde_json::to_string(game)
                .context("encoding an announcement for its fingerprint")?;
            format!("game\n{game}\n{text}")
        }
        None => format!("text\n{text}"),
    })
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_one_to_255_visible_ascii_characters() {
        for good in [
            "a",
            "8e03978e-40d5-43e8-bc93-6894a57f9324",
            "\"quoted\"",
            "{}:%~!",
        ] {
            assert_eq!(
                IdempotencyKey::parse(good.as_bytes()).unwrap().as_str(),
                good
            );
        }
        assert!(IdempotencyKey::parse("x".repeat(MAX_KEY_LEN).as_bytes()).is_ok());
        for bad in [
            String::new(),
            "x".repeat(MAX_KEY_LEN + 1),
            "has space".into(),
            "tab\there".into(),
            "ünï".into(),
            "nul\0".into(),
            "del\u{7f}".into(),
        ] {
            assert_eq!(
                IdempotencyKey::parse(bad.as_bytes()),
                Err(InvalidIdempotencyKey),
                "{bad:?}"
            );
        }
        assert_eq!(IdempotencyKey::parse(&[0xff]), Err(InvalidIdempotencyKey));
    }

    #[test]
    fn the_window_is_a_day_or_a_shorter_retention() {
        assert_eq!(window_within(Duration::from_secs(7 * 24 * 3600)), WINDOW);
        assert_eq!(
            window_within(Duration::from_millis(400)),
            Duration::from_millis(400)
        );
    }

    #[test]
    fn fingerprints_differ_exactly_when_the_requests_do() {
        let ids = |raw: &[&str]| -> Vec<UserId> {
            raw.iter().map(|r| UserId::parse(r).unwrap()).collect()
        };
        let ab = conversation_fingerprint(&ids(&["a", "b"]));
        assert_eq!(ab, conversation_fingerprint(&ids(&["a", "b"])));
        assert_ne!(ab, conversation_fingerprint(&ids(&["a", "b", "c"])));
        assert_ne!(ab, conversation_fingerprint(&ids(&["a", "c"])));
        let hi = message_fingerprint("hi", None).unwrap();
        assert_eq!(hi, message_fingerprint("hi", None).unwrap());
        assert_ne!(hi, message_fingerprint("hi!", None).unwrap());
        let game = GameAnnouncement {
            session_id: uuid::Uuid::new_v4(),
            host: UserId::parse("a").unwrap(),
            mode: "default".into(),
            state: shared_types::game::SessionState::Waiting,
        };
        let announced = message_fingerprint("hi", Some(&game)).unwrap();
        assert_ne!(hi, announced);
        let other = GameAnnouncement {
            session_id: uuid::Uuid::new_v4(),
            ..game.clone()
        };
        assert_ne!(announced, message_fingerprint("hi", Some(&other)).unwrap());
    }
}
