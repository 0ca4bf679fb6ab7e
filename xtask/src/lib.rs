//! Developer commands of the workspace, run as `cargo xtask <command>`.
//!
//! # Layout
//! - [`token`]: mint HS256 tokens for local testing (`cargo xtask token`).
//! - [`openapi`]: generate and check the checked-in OpenAPI documents (`cargo xtask openapi`).

pub mod openapi;
pub mod token;
