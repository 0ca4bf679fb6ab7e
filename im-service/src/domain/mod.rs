//! Rules that need no I/O: who may be in a conversation, what a message may say, who counts as a
//! partner, who sees whose presence.

pub mod clock;
pub mod conversation;
pub mod partners;

pub use clock::{Clock, ManualClock, SystemClock};
pub use conversation::{ConversationRecord, InvalidConversation, MessageText, Participants};
pub use partners::{
    ActiveWindow, CandidateFacts, PartnerCandidate, PartnersRequest, Relationship, StatusFilter,
    latest_per_partner,
};
