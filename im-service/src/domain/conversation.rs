//! Who may be in a conversation, what a message may say, and who a conversation makes talk.

use shared_types::{
    UserId,
    im::{Conversation, MAX_MESSAGE_CHARS, MAX_PARTICIPANTS},
};

/// Fewest people in a conversation: talking needs two.
pub const MIN_PARTICIPANTS: usize = 2;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum InvalidConversation {
    #[error(
        "a conversation has {MIN_PARTICIPANTS}-{MAX_PARTICIPANTS} people including the caller, got {0}"
    )]
    ParticipantCount(usize),
    #[error("`participants` lists at most {MAX_PARTICIPANTS} entries, got {0}")]
    TooManyEntries(usize),
    #[error("a message is 1-{MAX_MESSAGE_CHARS} characters, got {0}")]
    MessageLength(usize),
}

/// The people of a new conversation: the caller first, then the others in the order given,
/// each once, 2-16 in all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Participants(Vec<UserId>);

impl Participants {
    pub fn parse(caller: &UserId, requested: &[UserId]) -> Result<Self, InvalidConversation> {
        // The published schema caps the list at 16 entries: a longer list is refused even when
        // duplicates would shrink it.
        if requested.len() > MAX_PARTICIPANTS {
            return Err(InvalidConversation::TooManyEntries(requested.len()));
        }
        let mut people: Vec<UserId> = Vec::with_capacity(requested.len() + 1);
        for user in std::iter::once(caller).chain(requested) {
            if !people.contains(user) {
                people.push(user.clone());
            }
        }
        if (MIN_PARTICIPANTS..=MAX_PARTICIPANTS).contains(&people.len()) {
            Ok(Self(people))
        } else {
            Err(InvalidConversation::ParticipantCount(people.len()))
        }
    }

    pub fn into_inner(self) -> Vec<UserId> {
        self.0
    }
}

/// A conversation as the service keeps it: what its participants see, and what decides whom
/// it makes talk ("talking takes two") and who never sees it (blocks).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversationRecord {
    pub conversation: Conversation,
    /// Participants who have posted in it, in the order they first did.
    pub posters: Vec<UserId>,
    /// Participants who never see it: when it was opened they had blocked its creator. Fixed
    /// at creation: unblocking later does not reveal it.
    pub hidden_from: Vec<UserId>,
}

impl ConversationRecord {
    /// A conversation nobody has posted in yet, seen by every participant.
    pub fn new(conversation: Conversation) -> Self {
        Self {
            conversation,
            posters: Vec::new(),
            hidden_from: Vec::new(),
        }
    }

    /// Who opened it: the first participant.
    pub fn creator(&self) -> Option<&UserId> {
        self.conversation.participants.first()
    }

    /// Whether `user` takes part in it and sees it: to anyone else it does not exist.
    pub fn visible_to(&self, user: &UserId) -> bool {
        self.conversation.participants.contains(user) && !self.hidden_from.contains(user)
    }

    /// The participants who see it (a participant who blocked its creator never does).
    pub fn visible_participants(&self) -> impl Iterator<Item = &UserId> {
        self.conversation
            .participants
            .iter()
            .filter(|user| !self.hidden_from.contains(user))
    }

    pub fn has_posted(&self, user: &UserId) -> bool {
        self.posters.contains(user)
    }

    /// Whom `user` talks with through this conversation: once `user` has posted, every other
    /// participant who has posted too. Open or closed, whatever its age.
    pub fn talking_with<'a>(&'a self, user: &'a UserId) -> impl Iterator<Item = &'a UserId> {
        let posted = self.has_posted(user);
        self.posters
            .iter()
            .filter(move |other| posted && *other != user)
    }

    /// Whether it counts against `user`'s open conversations: open, and opened or answered
    /// (posted in) by them.
    pub fn counts_for(&self, user: &UserId) -> bool {
        !self.conversation.closed && (self.creator() == Some(user) || self.has_posted(user))
    }
}

/// The text of a message: 1-4096 characters (Unicode scalar values, not bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(text: String) -> Result<Self, InvalidConversation> {
        let chars = text.chars().count();
        if (1..=MAX_MESSAGE_CHARS).contains(&chars) {
            Ok(Self(text))
        } else {
            Err(InvalidConversation::MessageLength(chars))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
#[expect(clippy::unwrap_used, reason = "tests")]
mod tests {
    use super::*;

    fn ids(raw: &[&str]) -> Vec<UserId> {
        raw.iter().map(|r| UserId::parse(r).unwrap()).collect()
    }

    #[test]
    fn the_caller_comes_first_and_duplicates_are_dropped() {
        let alice = UserId::parse("alice").unwrap();
        let people = Participants::parse(&alice, &ids(&["bob", "alice", "bob", "carol"])).unwrap();
        assert_eq!(people.into_inner(), ids(&["alice", "bob", "carol"]));
    }

    #[test]
    fn two_to_sixteen_people_in_all() {
        let alice = UserId::parse("alice").unwrap();
        assert_eq!(
            Participants::parse(&alice, &ids(&["alice"])),
            Err(InvalidConversation::ParticipantCount(1))
        );
        assert!(Participants::parse(&alice, &[]).is_err());
        let fifteen: Vec<UserId> = (0..15)
            .map(|i| UserId::parse(&format!("u{i}")).unwrap())
            .collect();
        assert!(Participants::parse(&alice, &fifteen).is_ok());
        let sixteen: Vec<UserId> = (0..16)
            .map(|i| UserId::parse(&format!("u{i}")).unwrap())
            .collect();
        assert_eq!(
            Participants::parse(&alice, &sixteen),
            Err(InvalidConversation::ParticipantCount(17))
        );
        let bob = UserId::parse("bob").unwrap();
        assert_eq!(
            Participants::parse(&alice, &vec![bob; 17]),
            Err(InvalidConversation::TooManyEntries(17))
        );
    }

    #[test]
    fn talking_takes_two_who_posted() {
        let people = ids(&["alice", "bob", "carol"]);
        let mut record = ConversationRecord::new(Conversation {
            id: uuid::Uuid::new_v4(),
            participants: people.clone(),
            created_at: chrono::Utc::now(),
            last_activity_at: None,
            closed: false,
        });
        let [alice, bob, carol] = [&people[0], &people[1], &people[2]];
        assert_eq!(record.talking_with(alice).count(), 0);
        record.posters.push(alice.clone());
        assert_eq!(record.talking_with(alice).count(), 0, "one side only");
        record.posters.push(bob.clone());
        assert_eq!(record.talking_with(alice).collect::<Vec<_>>(), [bob]);
        assert_eq!(record.talking_with(bob).collect::<Vec<_>>(), [alice]);
        assert_eq!(record.talking_with(carol).count(), 0, "carol never posted");
        assert!(record.counts_for(alice) && record.counts_for(bob));
        assert!(
            !record.counts_for(carol),
            "an unanswered invitation does not count"
        );
        record.hidden_from.push(carol.clone());
        assert!(!record.visible_to(carol) && record.visible_to(bob));
        record.conversation.closed = true;
        assert!(!record.counts_for(alice));
    }

    #[test]
    fn message_length_counts_characters_not_bytes() {
        assert!(MessageText::parse(String::new()).is_err());
        assert!(MessageText::parse("é".repeat(MAX_MESSAGE_CHARS)).is_ok());
        assert_eq!(
            MessageText::parse("x".repeat(MAX_MESSAGE_CHARS + 1)),
            Err(InvalidConversation::MessageLength(MAX_MESSAGE_CHARS + 1))
        );
    }
}
