//! Reading the IM service's presence feed (`GET /v1/presence/changes`).

use std::time::Duration;

use anyhow::Context;
use shared_types::activity::PresenceChanges;

use super::{DeliveryError, ImClient};

/// A feed read is a background poll: it may take longer than a partners call.
const FEED_TIMEOUT: Duration = Duration::from_secs(2);

impl ImClient {
    pub(super) async fn read_feed(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<PresenceChanges, DeliveryError> {
        let url = format!("{}/v1/presence/changes", self.base_url);
        let token = self
            .service_token()
            .map_err(|err| DeliveryError::Unavailable(format!("{err:#}")))?;
        let mut query = vec![("limit", limit.to_string())];
        if let Some(after) = after {
            query.push(("after", after.to_owned()));
        }
        let answer = self
            .http
            .get(&url)
            .bearer_auth(token)
            .timeout(FEED_TIMEOUT)
            .query(&query)
            .send()
            .await
            .with_context(|| format!("calling {url}"))
            .map_err(|err| DeliveryError::Unavailable(format!("{err:#}")))?;
        let status = answer.status();
        if !status.is_success() {
            let detail = answer.text().await.unwrap_or_default();
            let detail = format!(
                "{status} from {url}: {}",
                detail.chars().take(300).collect::<String>()
            );
            return Err(
                if status.is_client_error() && !matches!(status.as_u16(), 408 | 429) {
                    DeliveryError::Refused(detail)
                } else {
                    DeliveryError::Unavailable(detail)
                },
            );
        }
        answer
            .json()
            .await
            .map_err(|err| DeliveryError::Unavailable(format!("decoding the presence feed: {err}")))
    }
}
