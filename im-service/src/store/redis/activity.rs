//! Game activity reports in Redis: one script per user in their slot (all users' in one batch), then the contacts hear of each change.

use shared_types::{
    UserId,
    activity::ActivityReport,
    presence::{Presence, PresenceStatus},
};

use super::{
    RedisStore,
    commands::ScriptCall,
    values::{Reply, millis, parse_activity, parse_presence},
};
use crate::{domain::activity::by_user, store::StoreError};

/// [`crate::store::Store::apply_activity`]: each user's reports (in `seq` order) to
/// `apply_activity.lua` in their slot, one call per user, all pipelined; then, round by round
/// (a user's second change after everyone's first), the `presence` events of the changes.
pub(super) async fn apply(
    store: &RedisStore,
    reports: &[ActivityReport],
) -> Result<(), StoreError> {
    let grouped = by_user(reports);
    let calls: Vec<ScriptCall> = grouped
        .iter()
        .map(|(user, reports)| {
            let keys = vec![
                store.keys.user_activity(user),
                store.keys.user_presence(user),
                store.keys.user_contacts(user),
                store.keys.user_blocks(user),
            ];
            let mut args = vec![store.retention_ms.to_string()];
            for report in reports {
                args.extend([
                    report.seq.to_string(),
                    if report.playing { "1" } else { "0" }.to_owned(),
                    report.session_id.to_string(),
                    report.mode.clone(),
                    millis(report.at).to_string(),
                ]);
            }
            (keys, args)
        })
        .collect();
    let replies = store
        .invoke_each(
            "applying activity reports",
            &store.scripts.apply_activity,
            &calls,
        )
        .await?;
    let mut told: Vec<Vec<(Presence, Vec<String>)>> = Vec::new();
    for ((user, _), reply) in grouped.iter().zip(replies) {
        for (round, change) in changes(user, reply)?.into_iter().enumerate() {
            if told.len() <= round {
                told.push(Vec::new());
            }
            if let Some(this_round) = told.get_mut(round) {
                this_round.push(change);
            }
        }
    }
    for round in told {
        store.notify_presences(&round).await;
    }
    Ok(())
}

/// The changes one script call made, each as the presence to tell and whom to tell.
fn changes(user: &UserId, reply: redis::Value) -> Result<Vec<(Presence, Vec<String>)>, StoreError> {
    let mut reply = Reply::new(reply, "activity")?;
    let status: PresenceStatus = parse_presence(user, Some(reply.next("status")?))?;
    let count: usize = reply.next("change count")?;
    let mut presences = Vec::with_capacity(count);
    for _ in 0..count {
        let activity = parse_activity(
            user,
            reply.next("session")?,
            reply.next("mode")?,
            reply.next("since")?,
        )?;
        presences.push(Presence {
            user_id: user.clone(),
            status,
            activity,
        });
    }
    let watchers = reply.rest("watchers")?;
    Ok(presences
        .into_iter()
        .map(|presence| (presence, watchers.clone()))
        .collect())
}
