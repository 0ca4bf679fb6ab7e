//! What the services wrote to Redis, read directly: every key of a prefix with its type, its
//! TTL and, for strings (records), its value. Reads each node on its own, so it works on a
//! standalone server and on every master of a cluster alike.

use anyhow::Context;

/// Keys read per round trip.
const BATCH: usize = 500;

/// One key as Redis holds it.
#[derive(Debug, Clone)]
pub struct StoredKey {
    pub name: String,
    /// `string`, `stream`, `zset`, … (`none` when it vanished while being read).
    pub kind: String,
    /// Milliseconds left; -1: no TTL; -2: gone.
    pub pttl_ms: i64,
    /// The value of a string key.
    pub value: Option<String>,
    /// The node it was read from (a standalone URL: the server, or one cluster master).
    pub node: String,
}

impl StoredKey {
    /// The value parsed as JSON (the game service's records are JSON strings).
    pub fn json(&self) -> anyhow::Result<serde_json::Value> {
        let value = self
            .value
            .as_deref()
            .with_context(|| format!("{} ({}) has no string value", self.name, self.kind))?;
        serde_json::from_str(value).with_context(|| format!("{} is not JSON: {value}", self.name))
    }
}

/// Every key matching `pattern` on each of `nodes` (standalone `redis://` URLs).
pub async fn snapshot(nodes: &[String], pattern: &str) -> anyhow::Result<Vec<StoredKey>> {
    let mut all = Vec::new();
    for url in nodes {
        let client = redis::Client::open(url.as_str()).with_context(|| format!("opening {url}"))?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .with_context(|| format!("connecting to {url}"))?;
        let mut names = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .with_context(|| format!("SCAN on {url}"))?;
            names.extend(batch);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        names.sort_unstable();
        names.dedup();
        for chunk in names.chunks(BATCH) {
            let mut kinds = redis::pipe();
            let mut ttls = redis::pipe();
            for name in chunk {
                kinds.cmd("TYPE").arg(name);
                ttls.cmd("PTTL").arg(name);
            }
            let kinds: Vec<String> = kinds
                .query_async(&mut conn)
                .await
                .with_context(|| format!("TYPE on {url}"))?;
            let ttls: Vec<i64> = ttls
                .query_async(&mut conn)
                .await
                .with_context(|| format!("PTTL on {url}"))?;
            let strings: Vec<&String> = chunk
                .iter()
                .zip(&kinds)
                .filter(|(_, kind)| *kind == "string")
                .map(|(name, _)| name)
                .collect();
            let mut values = std::collections::HashMap::new();
            if !strings.is_empty() {
                let mut gets = redis::pipe();
                for name in &strings {
                    gets.cmd("GET").arg(*name);
                }
                let got: Vec<Option<String>> = gets
                    .query_async(&mut conn)
                    .await
                    .with_context(|| format!("GET on {url}"))?;
                values.extend(strings.into_iter().zip(got));
            }
            for ((name, kind), pttl_ms) in chunk.iter().zip(kinds).zip(ttls) {
                all.push(StoredKey {
                    value: values.get(name).cloned().flatten(),
                    name: name.clone(),
                    kind,
                    pttl_ms,
                    node: url.clone(),
                });
            }
        }
    }
    Ok(all)
}
