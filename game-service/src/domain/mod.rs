//! The game's state machine, independent of HTTP and of the store backend.

pub mod engine;
pub mod modes;
pub mod records;
pub mod tx;
