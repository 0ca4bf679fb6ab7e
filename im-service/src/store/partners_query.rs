//! The partners query every store answers the same way: the rule over what the store reads, in growing batches of candidates.

use shared_types::{
    UserId,
    im::{Partner, PartnersResponse},
    presence::PresenceStatus,
};

use super::{Store, StoreError};
use crate::domain::{PartnersRequest, latest_per_partner};

/// Fewest candidates looked up at once by [`Store::partners`].
const MIN_CANDIDATE_BATCH: usize = 8;

/// [`Store::partners_among`].
pub(super) async fn among<S: Store + ?Sized>(
    store: &S,
    request: &PartnersRequest,
    among: Option<&[UserId]>,
) -> Result<PartnersResponse, StoreError> {
    let user = &request.user;
    let (status, sources) = store.partner_sources(user, request.since).await?;
    let mut partners = Vec::new();
    if status != PresenceStatus::Offline && request.limit > 0 {
        let mut candidates = latest_per_partner(user, &sources, request.since);
        if let Some(among) = among {
            candidates.retain(|candidate| among.contains(&candidate.user_id));
        }
        // Most candidates usually pass: ask for `limit` first, then twice as many each time.
        let mut batch = request.limit.max(MIN_CANDIDATE_BATCH);
        let mut rest = candidates.as_slice();
        while !rest.is_empty() && partners.len() < request.limit {
            let (now, later) = rest.split_at(batch.min(rest.len()));
            let ids: Vec<UserId> = now.iter().map(|c| c.user_id.clone()).collect();
            let facts = store.candidate_facts(user, &ids).await?;
            for (candidate, facts) in now.iter().zip(facts) {
                if partners.len() < request.limit && facts.admitted_by(&request.filter) {
                    partners.push(Partner {
                        user_id: candidate.user_id.clone(),
                        status: facts.status,
                        conversation_id: candidate.conversation_id,
                        last_activity_at: candidate.last_activity_at,
                        activity: facts.activity,
                    });
                }
            }
            rest = later;
            batch = batch.saturating_mul(2);
        }
    }
    Ok(PartnersResponse {
        user_id: user.clone(),
        status,
        partners,
    })
}
