//! The chat and the game together: lobbies announced in the conversations their invitees
//! were found through, games launched from a conversation, modes capping sessions under a
//! race, and presence both ways (`in_game` in the chat, `offline` in the game).
//!
//! The steps the tests share are here; the tests, by topic, in the submodules.

mod announcements;
mod launch;
mod modes;
mod presence;

use std::time::Duration;

use anyhow::ensure;
use shared_types::im::Message;
use uuid::Uuid;

use crate::helpers::{Player, eventually};

/// Long enough for a sweep (every 200 ms) and a post, on a slow machine.
const ANNOUNCED_WITHIN: Duration = Duration::from_secs(10);

/// Waits until `reader` sees the game message announcing `session` in `conversation`,
/// and checks there is exactly one.
async fn announced_once(
    reader: &Player,
    conversation: Uuid,
    session: Uuid,
) -> anyhow::Result<Message> {
    let found = eventually(
        &format!("{} seeing {session} announced in {conversation}", reader.id),
        ANNOUNCED_WITHIN,
        || async {
            let games = reader.game_messages(conversation).await?;
            Ok(games
                .into_iter()
                .find(|m| m.game.as_ref().is_some_and(|g| g.session_id == session)))
        },
    )
    .await?;
    let games = reader.game_messages(conversation).await?;
    let copies = games
        .iter()
        .filter(|m| m.game.as_ref().is_some_and(|g| g.session_id == session))
        .count();
    ensure!(copies == 1, "announced {copies} times: {games:?}");
    Ok(found)
}
