//! A private primary, its replica and three Sentinels watching them, on free loopback ports.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};

use crate::{
    cluster::wait_for,
    replicated::{
        Instance, Role, cut_replicas, repl_offset, replicas_acknowledge, replication,
        retry_on_fresh_ports, wait_for_role,
    },
};

const MASTER_NAME: &str = "mymaster";
const SENTINELS: usize = 3;
const QUORUM: usize = 2;

/// Two data nodes (index 0 starts as the primary, 1 as its replica) and three Sentinels.
pub struct SentinelGroup {
    servers: Vec<Instance>,
    sentinels: Vec<Instance>,
    dir: PathBuf,
}

impl SentinelGroup {
    /// Starts the primary and its replica, waits until the replica is linked, then starts the
    /// Sentinels and waits until each knows the replica and the two other Sentinels (a
    /// failover needs them). Retried on fresh ports when a port was taken meanwhile.
    pub fn start() -> anyhow::Result<Self> {
        retry_on_fresh_ports("the Sentinel group", Self::try_start)
    }

    fn try_start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "redis-sentinel-{}-{}",
            std::process::id(),
            crate::free_port()?
        ));
        let mut group = Self {
            servers: Vec::new(),
            sentinels: Vec::new(),
            dir,
        };
        let primary_port = crate::free_port()?;
        for replica_of in [None, Some(primary_port)] {
            let port = match replica_of {
                None => primary_port,
                Some(_) => crate::free_port()?,
            };
            // A full sync starts at once, not 5 s later in case more replicas come.
            let mut conf = "save \"\"\nappendonly no\nrepl-diskless-sync-delay 0\n".to_owned();
            if let Some(primary) = replica_of {
                conf.push_str(&format!("replicaof 127.0.0.1 {primary}\n"));
            }
            let dir = group.dir.join(port.to_string());
            group.servers.push(Instance::start(port, dir, &conf, &[])?);
        }
        wait_for(Duration::from_secs(10), || {
            replication(&group.servers[1]).is_ok_and(|(_, linked)| linked)
        })
        .context("the replica never linked to the primary")?;
        wait_for(Duration::from_secs(10), || {
            replicas_acknowledge(&group.servers[0])
        })
        .context("the replica never acknowledged the primary's writes")?;
        for _ in 0..SENTINELS {
            let port = crate::free_port()?;
            let conf = format!(
                "sentinel resolve-hostnames no\n\
                 sentinel announce-ip 127.0.0.1\n\
                 sentinel monitor {MASTER_NAME} 127.0.0.1 {primary_port} {QUORUM}\n\
                 sentinel down-after-milliseconds {MASTER_NAME} 1000\n\
                 sentinel failover-timeout {MASTER_NAME} 5000\n"
            );
            let dir = group.dir.join(port.to_string());
            group
                .sentinels
                .push(Instance::start(port, dir, &conf, &["--sentinel"])?);
        }
        wait_for(Duration::from_secs(15), || {
            group.sentinels.iter().all(|sentinel| {
                sentinel
                    .cli(&["sentinel", "master", MASTER_NAME])
                    .is_ok_and(|answer| {
                        let field = |name| pairs_field(&answer, name);
                        field("flags") == Some("master")
                            && field("num-slaves") == Some("1")
                            && field("num-other-sentinels") == Some("2")
                    })
            })
        })
        .context("the Sentinels never all saw the replica and each other")?;
        Ok(group)
    }

    /// `REDIS_URL` for the services: `redis+sentinel://host:port,…/<master name>`.
    pub fn url(&self) -> String {
        let sentinels: Vec<String> = self
            .sentinel_ports()
            .iter()
            .map(|port| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+sentinel://{}/{MASTER_NAME}", sentinels.join(","))
    }

    pub fn master_name(&self) -> &'static str {
        MASTER_NAME
    }

    pub fn sentinel_ports(&self) -> Vec<u16> {
        self.sentinels.iter().map(|s| s.port).collect()
    }

    /// The data nodes' ports, by index.
    pub fn ports(&self) -> Vec<u16> {
        self.servers.iter().map(|s| s.port).collect()
    }

    pub fn port(&self, server: usize) -> anyhow::Result<u16> {
        Ok(self.server(server)?.port)
    }

    /// The data node a majority of the running Sentinels name as the primary
    /// (`SENTINEL get-master-addr-by-name`).
    pub fn primary(&self) -> anyhow::Result<usize> {
        let named: Vec<u16> = self
            .sentinels
            .iter()
            .filter(|s| s.is_up())
            .filter_map(|s| named_primary(s).ok())
            .collect();
        let majority = named
            .iter()
            .find(|&&port| named.iter().filter(|&&p| p == port).count() >= QUORUM)
            .with_context(|| format!("no majority of the Sentinels names a primary: {named:?}"))?;
        self.index_of_port(*majority)
    }

    /// What data node `server` says it is, asked directly (it must be running).
    pub fn role(&self, server: usize) -> anyhow::Result<Role> {
        Ok(replication(self.server(server)?)?.0)
    }

    /// SIGKILL data node `server`: a crash, with its data gone (no persistence).
    pub fn kill(&mut self, server: usize) -> anyhow::Result<()> {
        self.server_mut(server)?.kill();
        Ok(())
    }

    /// Starts data node `server` again from its config file: with the role Sentinel last wrote
    /// there (an old primary: empty, and a primary) until the Sentinels reconfigure it, about
    /// 11 s later: they leave a node whose role changed alone for 8 s, and ask it for INFO
    /// every 10 s. [`Self::wait_for_role`] waits for that.
    pub fn restart(&mut self, server: usize) -> anyhow::Result<()> {
        self.server_mut(server)?.restart()
    }

    /// The data node that is not the primary the Sentinels name: its replica.
    pub fn replica(&self) -> anyhow::Result<usize> {
        let primary = self.primary()?;
        (0..self.servers.len())
            .find(|&server| server != primary)
            .context("the group has one data node only")
    }

    /// SIGSTOP data node `server`: frozen with its data (a replica frozen falls behind).
    pub fn pause(&mut self, server: usize) -> anyhow::Result<()> {
        self.server_mut(server)?.signal("STOP")
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&mut self, server: usize) -> anyhow::Result<()> {
        self.server_mut(server)?.signal("CONT")
    }

    /// Drops the replication links of data node `server` (the primary): its replica misses what
    /// it writes until it connects again (one paused first cannot).
    pub fn cut_replicas(&self, server: usize) -> anyhow::Result<()> {
        cut_replicas(self.server(server)?)
    }

    /// How far data node `server`'s replication stream has come (`master_repl_offset`).
    pub fn repl_offset(&self, server: usize) -> anyhow::Result<u64> {
        repl_offset(self.server(server)?)
    }

    /// SIGKILL whichever node the Sentinels name as the primary; its index.
    pub fn kill_primary(&mut self) -> anyhow::Result<usize> {
        let primary = self.primary()?;
        self.kill(primary)?;
        Ok(primary)
    }

    /// Until every running Sentinel names a data node other than `old_primary`, and that node
    /// says `role:master`; its index.
    pub fn wait_for_failover(
        &self,
        old_primary: usize,
        timeout: Duration,
    ) -> anyhow::Result<usize> {
        let old_port = self.port(old_primary)?;
        let mut promoted = None;
        wait_for(timeout, || {
            promoted = self
                .agreed_primary()
                .filter(|&port| port != old_port)
                .and_then(|port| {
                    let index = self.index_of_port(port).ok()?;
                    let role = replication(&self.servers[index]).ok()?.0;
                    (role == Role::Master).then_some(index)
                });
            promoted.is_some()
        })
        .with_context(|| {
            let named: Vec<String> = self
                .sentinels
                .iter()
                .map(|s| format!("{:?}", named_primary(s).ok()))
                .collect();
            format!(
                "no failover away from port {old_port}; the Sentinels name {}{}",
                named.join(", "),
                self.sentinel_logs()
            )
        })?;
        promoted.context("the failover was seen but not recorded")
    }

    /// Until data node `server` says it is `role` (a replica: with its master link up).
    pub fn wait_for_role(
        &self,
        server: usize,
        role: Role,
        timeout: Duration,
    ) -> anyhow::Result<()> {
        wait_for_role(self.server(server)?, role, timeout)
            .with_context(|| format!("data node {server}{}", self.sentinel_logs()))
    }

    /// What each Sentinel logged last (`+sdown`, `+vote`, `+switch-master`, `+tilt`, …).
    fn sentinel_logs(&self) -> String {
        let logs = self.sentinels.iter().map(|s| {
            let tail = s.log_tail(25);
            format!("\n--- Sentinel {} ---\n{tail}", s.port)
        });
        logs.collect()
    }

    /// The primary's port when every running Sentinel names the same one.
    fn agreed_primary(&self) -> Option<u16> {
        let mut named = self
            .sentinels
            .iter()
            .filter(|s| s.is_up())
            .map(named_primary);
        let first = named.next()?.ok()?;
        named
            .all(|port| port.is_ok_and(|p| p == first))
            .then_some(first)
    }

    fn server(&self, server: usize) -> anyhow::Result<&Instance> {
        self.servers
            .get(server)
            .with_context(|| format!("the group has no data node {server}"))
    }

    fn server_mut(&mut self, server: usize) -> anyhow::Result<&mut Instance> {
        self.servers
            .get_mut(server)
            .with_context(|| format!("the group has no data node {server}"))
    }

    fn index_of_port(&self, port: u16) -> anyhow::Result<usize> {
        self.servers
            .iter()
            .position(|s| s.port == port)
            .with_context(|| format!("the Sentinels name port {port}, none of ours"))
    }
}

impl Drop for SentinelGroup {
    fn drop(&mut self) {
        for instance in self.sentinels.iter_mut().chain(&mut self.servers) {
            instance.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The primary's port as `sentinel` names it.
fn named_primary(sentinel: &Instance) -> anyhow::Result<u16> {
    let answer = sentinel.cli(&["sentinel", "get-master-addr-by-name", MASTER_NAME])?;
    let mut lines = answer.lines();
    let (Some(_host), Some(port)) = (lines.next(), lines.next()) else {
        bail!("Sentinel {} knows no primary: {answer:?}", sentinel.port);
    };
    port.trim()
        .parse()
        .with_context(|| format!("Sentinel {} names port {port:?}", sentinel.port))
}

/// `name`'s value in a flat `name\nvalue\n…` answer (`SENTINEL MASTER`).
fn pairs_field<'a>(answer: &'a str, name: &str) -> Option<&'a str> {
    let lines: Vec<&str> = answer.lines().map(str::trim_end).collect();
    lines
        .chunks(2)
        .find(|pair| pair.first() == Some(&name))
        .and_then(|pair| pair.get(1).copied())
}
