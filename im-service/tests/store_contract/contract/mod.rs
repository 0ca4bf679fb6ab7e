//! The behaviour every store must have, one module per topic. Each function is run against every backend by `main.rs` and `cluster.rs`.

mod activity;
mod announcements;
mod blocks;
mod conversations;
mod events;
mod feed;
mod idempotent_conversations;
mod idempotent_messages;
mod limits;
mod partners;
mod presence;

use im_service::store::Store;

pub use self::{
    activity::*, announcements::*, blocks::*, conversations::*, events::*, feed::*,
    idempotent_conversations::*, idempotent_messages::*, limits::*, partners::*, presence::*,
};

pub async fn ping_answers(store: &dyn Store) -> anyhow::Result<()> {
    store.ping().await?;
    Ok(())
}
