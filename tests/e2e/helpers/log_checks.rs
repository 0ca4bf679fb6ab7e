//! What the services' captured logs must never hold: checked once their access log shows the
//! requests, so the check cannot pass on logs that are not there yet.

use std::time::Duration;

use anyhow::{Context, ensure};

use super::{Service, TestWorld, eventually};

impl TestWorld {
    /// Once `service`'s access log shows `issued` ticket requests and `opened` stream
    /// requests (refused ones included), no line of it (at trace level) holds a ticket of
    /// `tickets` or a `ticket=` query.
    pub async fn assert_no_ticket_logged(
        &self,
        service: Service,
        tickets: &[&str],
        issued: usize,
        opened: usize,
    ) -> anyhow::Result<()> {
        let logs = eventually(
            "the access log lines of every ticket request",
            Duration::from_secs(5),
            || async move {
                let lines = self.output_of(service)?;
                let served = |path: &str| {
                    lines
                        .iter()
                        .filter(|line| {
                            // The path alone, or (a leak the check below names) with its query.
                            line.contains(&format!("path={path}}}"))
                                || line.contains(&format!("path={path}?"))
                        })
                        .filter(|line| line.contains("served"))
                        .count()
                };
                let complete =
                    served("/v1/events/tickets") >= issued && served("/v1/events") >= opened;
                Ok(complete.then_some(lines))
            },
        )
        .await
        .with_context(|| self.log_tails_of(service))?;
        ensure!(
            logs.iter().any(|line| line.contains("TRACE")),
            "the {service:?} replicas log at trace level: {:#?}",
            &logs[..logs.len().min(20)]
        );
        let leaks: Vec<&String> = logs
            .iter()
            .filter(|line| tickets.iter().any(|t| line.contains(t)) || line.contains("ticket="))
            .collect();
        ensure!(leaks.is_empty(), "a ticket in the logs: {leaks:#?}");
        Ok(())
    }
}
