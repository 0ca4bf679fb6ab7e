//! What the store work of a run cost: the services' Redis round trips (their
//! `redis_round_trips_total` metric, and `redis_round_trips_by_route_total` by route) and
//! Redis's own command count, CPU and memory (summed over every node named, for a cluster),
//! read before and after the measured phase and divided by the pairings.

use std::collections::BTreeMap;

use anyhow::Context;
use serde::Serialize;

use crate::api::Api;

/// A client for each Redis node `--redis-url` names (none without it).
pub fn redis_clients(options: &crate::Options) -> anyhow::Result<Vec<redis::Client>> {
    options
        .redis_urls()
        .map(|url| redis::Client::open(url).with_context(|| format!("Redis URL {url:?}")))
        .collect()
}

/// Counters at one instant; `None` where a source was not reachable or not asked.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    game_round_trips: Option<f64>,
    im_round_trips: Option<f64>,
    game_by_route: BTreeMap<String, f64>,
    im_by_route: BTreeMap<String, f64>,
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
    /// The game service's round trips by the route that sent them (`background`: no request's).
    pub game_round_trips_by_route: BTreeMap<String, f64>,
    /// The same for the IM service.
    pub im_round_trips_by_route: BTreeMap<String, f64>,
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
        let (game, im) = tokio::join!(api.metrics_text("game"), api.metrics_text("im"));
        let total = |text: &Option<String>| {
            text.as_deref()
                .and_then(|t| metric_value(t, "redis_round_trips_total"))
        };
        let by_route = |text: &Option<String>| {
            text.as_deref()
                .map(|t| labelled_values(t, "redis_round_trips_by_route_total", "route"))
                .unwrap_or_default()
        };
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
            game_round_trips: total(&game),
            im_round_trips: total(&im),
            game_by_route: by_route(&game),
            im_by_route: by_route(&im),
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
        let per_route = |after: &BTreeMap<String, f64>, before: &BTreeMap<String, f64>| {
            after
                .iter()
                .filter_map(|(route, a)| {
                    let grown = per(
                        Some(*a),
                        Some(before.get(route).copied().unwrap_or(0.0)),
                        1.0,
                    )?;
                    (grown > 0.0).then(|| (route.clone(), grown))
                })
                .collect()
        };
        StoreCost {
            game_round_trips: per(self.game_round_trips, before.game_round_trips, 1.0),
            im_round_trips: per(self.im_round_trips, before.im_round_trips, 1.0),
            game_round_trips_by_route: per_route(&self.game_by_route, &before.game_by_route),
            im_round_trips_by_route: per_route(&self.im_by_route, &before.im_by_route),
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

/// Each value of counter `name` by its label `label`, in a Prometheus text exposition
/// (other labels are summed).
pub fn labelled_values(exposition: &str, name: &str, label: &str) -> BTreeMap<String, f64> {
    let mut values = BTreeMap::new();
    let prefix = format!("{label}=\"");
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix(name).and_then(|r| r.strip_prefix('{')) else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once("} ") else {
            continue;
        };
        let Some(at) = labels.find(&prefix) else {
            continue;
        };
        let Some((label_value, _)) = labels[at + prefix.len()..].split_once('"') else {
            continue;
        };
        if let Ok(value) = value.trim().parse::<f64>() {
            *values.entry(label_value.to_owned()).or_default() += value;
        }
    }
    values
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
            game_by_route: BTreeMap::from([("POST /v1/connect".to_owned(), 40.0)]),
            ..Snapshot::default()
        };
        let after = Snapshot {
            game_round_trips: Some(300.0),
            im_round_trips: Some(5.0),
            redis_commands: Some(50.0),
            redis_cpu_secs: Some(1.5),
            redis_memory_bytes: Some(3000.0),
            game_by_route: BTreeMap::from([
                ("POST /v1/connect".to_owned(), 60.0),
                ("background".to_owned(), 10.0),
                ("GET /v1/me".to_owned(), 0.0),
            ]),
            ..Snapshot::default()
        };
        let cost = after.per_pairing(&before, 10);
        assert_eq!(cost.game_round_trips, Some(20.0));
        assert_eq!(cost.im_round_trips, None);
        assert_eq!(cost.redis_commands, Some(4.0));
        assert_eq!(cost.redis_cpu_ms, Some(50.0));
        assert_eq!(cost.redis_memory_bytes, Some(200.0));
        assert_eq!(
            cost.game_round_trips_by_route,
            BTreeMap::from([
                ("POST /v1/connect".to_owned(), 2.0),
                ("background".to_owned(), 1.0)
            ])
        );
        assert_eq!(after.per_pairing(&before, 0).game_round_trips, None);
    }

    #[test]
    fn reads_a_counter_by_one_of_its_labels() {
        let text = "# TYPE x_total counter\n\
                    x_total{route=\"POST /v1/connect\"} 12\n\
                    x_total{route=\"GET /v1/events\",pod=\"a\"} 3\n\
                    x_total{pod=\"b\",route=\"GET /v1/events\"} 4\n\
                    x_total_other{route=\"POST /v1/connect\"} 99\n\
                    x_total 1\n";
        let values = labelled_values(text, "x_total", "route");
        assert_eq!(values.len(), 2, "{values:?}");
        assert_eq!(values["POST /v1/connect"], 12.0);
        assert_eq!(values["GET /v1/events"], 7.0);
        assert!(labelled_values(text, "x_total", "zone").is_empty());
    }
}
