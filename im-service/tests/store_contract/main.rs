//! Store contract tests: each rule runs against the in-memory store and against a real Redis
//! (a private `redis-server` per test, keys under a unique prefix; never port 6379, never FLUSHALL).

/// Calls `$then!` with the arguments given and then the name of every contract function: the
/// one list that `contract_tests!` and the cluster test both run.
macro_rules! with_every_contract_function {
    ($then:ident!($($args:tt)*)) => {
        $then! {
            $($args)*
            presence_is_offline_until_set_then_what_was_set,
            candidate_facts_answer_for_every_candidate_asked,
            a_created_conversation_reads_back_as_written,
            conversations_of_a_user_are_theirs_open_or_closed_newest_first,
            appending_numbers_messages_records_posters_and_moves_last_activity,
            last_activity_never_moves_backwards,
            a_closed_conversation_takes_no_messages,
            appending_to_a_missing_conversation_reports_it_missing,
            messages_page_oldest_first_after_a_seq,
            messages_beyond_the_kept_count_are_dropped_oldest_first,
            closing_is_idempotent_and_keeps_the_conversation,
            one_sided_conversations_make_no_partner_and_reveal_no_presence,
            once_both_posted_they_are_partners_and_see_each_others_presence,
            in_a_group_each_pair_counts_once_both_have_posted,
            the_window_counts_from_messages_only,
            partners_are_the_newest_talks_first_each_once_and_closed_ones_do_not_count,
            partners_stop_at_the_limit_newest_first,
            talking_in_a_conversation_open_or_closed_lets_both_see_presence_for_good,
            blocks_are_idempotent_listed_newest_first_and_limited,
            a_block_either_way_unmakes_partners_and_hides_presence_until_lifted,
            a_conversation_a_blocked_user_opens_is_hidden_from_the_blocker_only,
            the_open_conversation_limit_refuses_the_creator_and_changes_nothing,
            answering_a_conversation_counts_it_and_is_refused_at_the_limit,
            participants_hear_of_a_conversation_and_its_messages_in_order,
            closing_is_heard_once_and_a_hidden_conversation_is_not_heard_of,
            a_presence_change_is_heard_by_those_who_talked_and_are_not_blocked,
            a_service_announcement_is_heard_but_is_nobodys_talk,
            announcing_a_session_again_answers_the_first_message_and_tells_nobody_twice,
            a_session_announced_before_newer_messages_pushed_it_out_is_not_announced_again,
            an_activity_report_applies_only_when_newer_and_the_newest_is_the_truth,
            activity_delivered_out_of_order_or_twice_ends_in_the_newest_state,
            an_activity_change_is_heard_once_by_contacts_and_shows_in_presence_and_partners,
            every_status_change_is_fed_once_with_increasing_seqs,
            reading_the_feed_with_cursors_pages_through_every_change_exactly_once,
            an_update_after_an_interrupted_one_appends_the_unfed_change_once,
            a_repeated_creation_key_opens_one_conversation_and_answers_it_as_opened,
            a_creation_key_reused_for_other_participants_is_refused_and_changes_nothing,
            creation_keys_are_each_callers_own,
            racing_creations_with_one_key_open_one_conversation,
            a_repeated_message_key_appends_once_and_answers_the_first_message,
            a_message_key_reused_for_another_text_is_refused_and_changes_nothing,
            message_keys_are_each_senders_own,
            racing_posts_with_one_key_append_one_message,
            an_announcement_key_answers_its_first_message_before_the_session_is_looked_up,
            ping_answers,
        }
    };
}

/// As `with_every_contract_function`, for the contract functions that need their store's
/// records to expire soon (`helpers::SHORT_RETENTION`).
macro_rules! with_every_expiring_contract_function {
    ($then:ident!($($args:tt)*)) => {
        $then! {
            $($args)*
            seqs_keep_increasing_after_the_presence_record_expired,
            a_creation_key_is_forgotten_after_its_window,
        }
    };
}

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

/// As `contract_tests!`, on stores with a short retention.
macro_rules! expiring_contract_tests {
    ($($name:ident),* $(,)?) => {
        mod memory_expiring {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    crate::contract::$name(&crate::helpers::expiring_memory_store()).await
                }
            )*
        }

        mod redis_expiring {
            $(
                #[tokio::test]
                async fn $name() -> anyhow::Result<()> {
                    let fixture = crate::helpers::RedisFixture::start_expiring(stringify!($name))?;
                    crate::contract::$name(&fixture.store).await
                }
            )*
        }
    };
}

with_every_contract_function!(contract_tests!());
with_every_expiring_contract_function!(expiring_contract_tests!());

// After the macros: the modules use them.
mod cluster;
mod contract;
mod helpers;
mod redis_idempotency;
mod redis_keys;
mod redis_only;
mod steps;
