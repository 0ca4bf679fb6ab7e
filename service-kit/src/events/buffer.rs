//! One user's kept events in a memory store, with Redis-like increasing ids.

use std::collections::VecDeque;

use super::{EVENTS_KEPT, StoredEvent, parse_event_id};

/// The newest [`EVENTS_KEPT`] events of one user, oldest first.
#[derive(Debug, Clone)]
pub struct EventBuffer<E>(VecDeque<StoredEvent<E>>);

impl<E> Default for EventBuffer<E> {
    fn default() -> Self {
        Self(VecDeque::new())
    }
}

impl<E: Clone> EventBuffer<E> {
    /// Gives `event` the next id (`<millis>-<seq>`: now, or after the last one
    /// if the clock has not moved past it), keeps it, and returns it.
    pub fn append(&mut self, mut event: StoredEvent<E>, now_millis: u64) -> StoredEvent<E> {
        let last = self.0.back().and_then(|e| parse_event_id(&e.id));
        let (ms, seq) = match last {
            Some((last_ms, last_seq)) if last_ms >= now_millis => (last_ms, last_seq + 1),
            _ => (now_millis, 0),
        };
        event.id = format!("{ms}-{seq}");
        self.0.push_back(event.clone());
        while self.0.len() > EVENTS_KEPT {
            self.0.pop_front();
        }
        event
    }

    /// The events after `after` (the newest `limit` when `None`), oldest first.
    pub fn after(&self, after: Option<&str>, limit: usize) -> Vec<StoredEvent<E>> {
        match after.and_then(parse_event_id) {
            Some(after) => self
                .0
                .iter()
                .filter(|e| parse_event_id(&e.id).is_some_and(|id| id > after))
                .take(limit)
                .cloned()
                .collect(),
            None => self
                .0
                .iter()
                .skip(self.0.len().saturating_sub(limit))
                .cloned()
                .collect(),
        }
    }
}

#[cfg(test)]
#[expect(clippy::expect_used, reason = "tests")]
mod tests {
    use shared_types::UserId;

    use super::*;

    #[test]
    fn ids_increase_even_when_the_clock_does_not_and_only_the_newest_are_kept() {
        let alice = UserId::parse("alice").expect("valid id");
        let mut buffer = EventBuffer::default();
        let first = buffer.append(StoredEvent::new(&alice, 1), 1000);
        let second = buffer.append(StoredEvent::new(&alice, 2), 999);
        assert_eq!(
            (first.id.as_str(), second.id.as_str()),
            ("1000-0", "1000-1")
        );
        assert_eq!(
            buffer.append(StoredEvent::new(&alice, 3), 2000).id,
            "2000-0"
        );
        let after: Vec<i32> = buffer
            .after(Some("1000-0"), 10)
            .into_iter()
            .map(|e| e.event)
            .collect();
        assert_eq!(after, [2, 3]);
        assert_eq!(
            buffer.after(None, 1)[0].event,
            3,
            "without an id: the newest"
        );
        for n in 0..(EVENTS_KEPT as i32 + 10) {
            buffer.append(StoredEvent::new(&alice, n), 3000);
        }
        assert_eq!(buffer.after(Some("0"), usize::MAX).len(), EVENTS_KEPT);
    }
}
