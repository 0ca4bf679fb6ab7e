//! Rules that need no I/O: who may be in a conversation, what a message may say, who counts as a partner.

pub mod clock;
pub mod conversation;
pub mod partners;

pub use clock::{Clock, ManualClock, SystemClock};
pub use conversation::{InvalidConversation, MessageText, Participants};
pub use partners::{ActiveWindow, PartnerCandidate, StatusFilter, latest_per_partner};
