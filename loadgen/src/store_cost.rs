//! What the store work of a run cost: the services' Redis round trips (their
//! `redis_round_trips_total` metric) and Redis's own command count, CPU and
//! memory (summed over every node named, for a cluster), read before and after
//! the measured phase and divided by the pairings.

use anyhow::Context;
use serde::Serialize;

use crate::api::Api;

/// Counters at one instant; `None` where a source was not reachable or not asked.
#[derive(Debug, Clone, Copy, Default)]
pub struct Snapshot {
    game_round_trips: Option<f64>,
    im_round_trips: Option<f64>,
    redis_commands: Option<f64>,
    redis_cpu_secs: Option<f64>,
    redis_memory_bytes: Option<f64>,
}

/// Per completed pairing, over the measured phase.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StoreCost {
    /// Requests the game service sent to Redis (a script call or a pipeline counts once).
    pub game_round_trips: Option<f64>,
    /// The same for the IM service.
    pub im_round_trips: Option<f64>,
    /// Commands Redis executed, those run inside scripts included (`total_commands_processed`).
    pub redis_commands: Option<f64>,
    /// Redis CPU time (user + system), milliseconds.
    pub redis_cpu_ms: Option<f64>,
    /// Growth of Redis's `used_memory`, bytes: what a pairing (two players, their
    /// prompts, session and events, kept until they expire) leaves in Redis.
    pub redis_memory_bytes: Option<f64>,
}

impl Snapshot {
    pub async fn take(api: &Api, redis: &[redis::Client]) -> Self {
        let (game_round_trips, im_round_trips) = tokio::join!(
            api.metric("game", "redis_round_trips_total"),
            api.metric("im", "redis_round_trips_total"),
        );
        let mut totals = (!redis.is_empty()).then_some((0.0, 0.0, 0.0));
        for client in redis {
            match redis_info(client).await {
                Ok((commands, cpu, memory)) => {
                    totals = totals.map(|(c, u, m)| (c + commands, u + cpu, m + memory));
                }
                Err(err) => {
                    eprintln!("loadgen: reading Redis INFO: {err:#}");
                    totals = None;
                    break;
                }
            }
        }
        Self {
            game_round_trips,
            im_round_trips,
            redis_commands: totals.map(|t| t.0),
            redis_cpu_secs: totals.map(|t| t.1),
            redis_memory_bytes: totals.map(|t| t.2),
        }
    }

    /// The counters' growth since `before`, per completed pairing.
    pub fn per_pairing(&self, before: &Self, completed: u64) -> StoreCost {
        let per = |after: Option<f64>, before: Option<f64>, scale: f64| {
            (completed > 0)
                .then_some(())
                .and(after.zip(before))
                .map(|(a, b)| (a - b) * scale / completed as f64)
        };
        StoreCost {
            game_round_trips: per(self.game_round_trips, before.game_round_trips, 1.0),
            im_round_trips: per(self.im_round_trips, before.im_round_trips, 1.0),
            redis_commands: per(self.redis_commands, before.redis_commands, 1.0),
            redis_cpu_ms: per(self.redis_cpu_secs, before.redis_cpu_secs, 1000.0),
            redis_memory_bytes: per(self.redis_memory_bytes, before.redis_memory_bytes, 1.0),
        }
    }
}

/// `total_commands_processed`, `used_cpu_sys + used_cpu_user` and `used_memory` from `INFO`.
async fn redis_info(client: &redis::Client) -> anyhow::Result<(f64, f64, f64)> {
    let mut connection = client
        .get_multiplexed_async_connection()
        .await
        .context("connecting")?;
    let info: String = redis::cmd("INFO")
        .arg("stats")
        .arg("cpu")
        .arg("memory")
        .query_async(&mut connection)
        .await
        .context("INFO")?;
    let field = |name: &str| -> anyhow::Result<f64> {
        info.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .with_context(|| format!("no {name} in INFO"))?
            .trim()
            .parse()
            .with_context(|| format!("{name} is not a number"))
    };
    Ok((
        field("total_commands_processed")?,
        field("used_cpu_sys")? + field("used_cpu_user")?,
        field("used_memory")?,
    ))
}

/// The value of an unlabelled counter in a Prometheus text exposition.
pub fn metric_value(exposition: &str, name: &str) -> Option<f64> {
    exposition.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_an_unlabelled_counter() {
        let text = "# HELP redis_round_trips_total x\n# TYPE redis_round_trips_total counter\n\
                    redis_round_trips_total 42\nredis_round_trips_total_other 7\n";
        assert_eq!(metric_value(text, "redis_round_trips_total"), Some(42.0));
        assert_eq!(metric_value(text, "missing"), None);
    }

    #[test]
    fn divides_growth_by_pairings() {
        let before = Snapshot {
            game_round_trips: Some(100.0),
            im_round_trips: None,
            redis_commands: Some(10.0),
            redis_cpu_secs: Some(1.0),
            redis_memory_bytes: Some(1000.0),
        };
        let after = Snapshot {
            game_round_trips: Some(300.0),
            im_round_trips: Some(5.0),
            redis_commands: Some(50.0),
            redis_cpu_secs: Some(1.5),
            redis_memory_bytes: Some(3000.0),
        };
        let cost = after.per_pairing(&before, 10);
        assert_eq!(cost.game_round_trips, Some(20.0));
        assert_eq!(cost.im_round_trips, None);
        assert_eq!(cost.redis_commands, Some(4.0));
        assert_eq!(cost.redis_cpu_ms, Some(50.0));
        assert_eq!(cost.redis_memory_bytes, Some(200.0));
        assert_eq!(after.per_pairing(&before, 0).game_round_trips, None);
    }
}
