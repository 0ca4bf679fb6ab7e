//! Rules that need no I/O: who may be in a conversation, what a message may say, who counts as a
//! partner, who sees whose presence, how game activity reports apply, the presence feed's
//! shards and cursors, what an idempotency key is.

pub mod activity;
pub mod clock;
pub mod conversation;
pub mod feed;
pub mod idempotency;
pub mod partners;

pub use activity::ActivityState;
pub use clock::{Clock, ManualClock, SystemClock};
pub use conversation::{ConversationRecord, InvalidConversation, MessageText, Participants};
pub use idempotency::IdempotencyKey;
pub use partners::{
    ActiveWindow, CandidateFacts, PartnerCandidate, PartnersRequest, Relationship, StatusFilter,
    latest_per_partner,
};
