//! Store contract tests: each rule runs against the in-memory store and against a real Redis
//! (a private `redis-server` per test, keys under a unique prefix; never port 6379, never FLUSHALL).

mod cluster;
mod contract;
mod helpers;
mod redis_only;

/// Generates one `#[tokio::test]` per backend for each contract function.
macro_rules! contract_tests {
    ($($name:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    crate::contract::$name(&crate::helpers::memory_store()).await
                }
            )*
        }

        mod redis {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    let fixture = crate::helpers::RedisFixture::start(stringify!($name))?;
                    crate::contract::$name(&fixture.store).await
                }
            )*
        }
    };
}

contract_tests!(
    presence_is_offline_until_set_then_what_was_set,
    presences_answer_for_every_user_asked,
    a_created_conversation_reads_back_as_written,
    conversations_of_a_user_are_theirs_open_or_closed_newest_first,
    appending_numbers_messages_and_moves_last_activity,
    last_activity_never_moves_backwards,
    a_closed_conversation_takes_no_messages,
    appending_to_a_missing_conversation_reports_it_missing,
    messages_page_oldest_first_after_a_seq,
    closing_is_idempotent_and_keeps_the_conversation,
    open_conversations_since_leave_out_closed_stale_and_foreign_ones,
    sharing_a_conversation_open_or_closed_makes_users_contacts,
    ping_answers,
);
