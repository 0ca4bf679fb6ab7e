//! Cutting a namespace's processes off from Redis with nftables, starting at the first packet of one script's call, and counting that script's calls that get through.
//!
//! The script's calls are told by its SHA where `EVALSHA`'s argument starts in the TCP payload
//! (`*<argc>\r\n$7\r\nEVALSHA\r\n$40\r\n`: 22 to 24 bytes in, for up to 999 arguments). Packets
//! are dropped, never rejected: TCP retransmits what was in flight, and it reaches Redis after
//! the heal. The tables live in the namespace and are deleted on drop.

use super::{Netns, NftTable};

/// The tables of one cut: a counter of the script's calls that went out, and (from
/// [`Self::arm`] until [`Self::heal`]) the drops.
pub struct RedisCut {
    netns: String,
    /// `ip daddr <redis> tcp dport <port>`.
    to_redis: String,
    from_redis: String,
    /// Matches of the script's calls, one rule each, ending with `counter <verdict>`.
    calls: Vec<String>,
    /// After the drops (a later priority): counts the calls that did go out.
    sent: NftTable,
    drops: Option<NftTable>,
}

impl RedisCut {
    /// Counts, from now on, the calls of script `sha` that processes in `netns` send to Redis
    /// at `redis_ip:redis_port`.
    pub fn new(netns: &Netns, redis_ip: &str, redis_port: u16, sha: &str) -> anyhow::Result<Self> {
        let to_redis = format!("ip daddr {redis_ip} tcp dport {redis_port}");
        let head: String = sha.bytes().take(8).map(|b| format!("{b:02x}")).collect();
        let calls = (22..=24)
            .map(|at| format!("{to_redis} @ih,{},64 0x{head}", at * 8))
            .collect::<Vec<_>>();
        let sent = NftTable::create(
            "e2e_calls_sent",
            Some(netns.name()),
            &chain("output", "10", &calls, "counter"),
            "counts a script's calls to Redis",
        )?;
        Ok(Self {
            netns: netns.name().to_owned(),
            from_redis: format!("ip saddr {redis_ip} tcp sport {redis_port}"),
            to_redis,
            calls,
            sent,
            drops: None,
        })
    }

    /// The script's calls that went out to Redis so far (packets, retransmissions included).
    pub fn sent(&self) -> anyhow::Result<u64> {
        self.sent.packets()
    }

    /// From now on the script's calls are dropped; [`Self::dropped`] tells when one was.
    pub fn arm(&mut self) -> anyhow::Result<()> {
        let body = format!(
            "{}\n{}",
            chain("output", "filter", &self.calls, "counter drop"),
            chain("input", "filter", &[], "")
        );
        self.drops = Some(NftTable::create(
            "e2e_redis_cut",
            Some(&self.netns),
            &body,
            "cuts processes off from Redis",
        )?);
        Ok(())
    }

    /// Packets [`Self::arm`] and [`Self::everything`] dropped so far.
    pub fn dropped(&self) -> anyhow::Result<u64> {
        self.drops.as_ref().map_or(Ok(0), NftTable::packets)
    }

    /// After [`Self::arm`]: every packet to and from Redis's port is dropped too.
    pub fn everything(&self) -> anyhow::Result<()> {
        let drops = self
            .drops
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("the cut is not armed"))?;
        drops.add_rule("output", &format!("{} counter drop", self.to_redis))?;
        drops.add_rule("input", &format!("{} counter drop", self.from_redis))
    }

    /// Deletes the drops; returns what they dropped (their listing).
    pub fn heal(&mut self) -> String {
        self.drops
            .take()
            .map(|drops| drops.describe())
            .unwrap_or_default()
    }

    /// Both tables with their counters, for a failure message.
    pub fn describe(&self) -> String {
        let drops = self.drops.as_ref().map(NftTable::describe);
        format!("{}\n{}", self.sent.describe(), drops.unwrap_or_default())
    }
}

/// A base chain hooked at `hook` with `rules`, each followed by `tail`.
fn chain(hook: &str, priority: &str, rules: &[String], tail: &str) -> String {
    let rules: String = rules
        .iter()
        .map(|rule| format!("\t\t{rule} {tail}\n"))
        .collect();
    format!(
        "\tchain {hook} {{\n\t\ttype filter hook {hook} priority {priority}; policy accept;\n\
         {rules}\t}}"
    )
}
