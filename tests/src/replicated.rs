//! A private Redis Cluster of 3 masters with one replica each, on free ports, for failover tests.

mod instance;

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};

pub(crate) use self::instance::{
    Instance, cut_replicas, repl_offset, replicas_acknowledge, replication, wait_for_role,
};
use crate::cluster::{cluster_ok, free_cluster_port, wait_for};

const MASTERS: usize = 3;
/// One replica per master.
const NODES: usize = 2 * MASTERS;
const SLOTS: usize = 16_384;
/// validity-factor 0: a replica however stale may take over (the tests want a failover);
/// sync-delay 0: a full sync starts at once, not 5 s later in case more replicas come.
const NODE_CONF: &str = "cluster-enabled yes\ncluster-node-timeout 1500\n\
                         cluster-replica-validity-factor 0\nrepl-diskless-sync-delay 0\n\
                         save \"\"\nappendonly no\n";

/// What a server says it is in `INFO replication`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Master,
    Replica,
}

/// 3 masters and 3 replicas; nodes are named by index, in [`Self::ports`] order.
pub struct ReplicatedCluster {
    nodes: Vec<Instance>,
    /// Each node's cluster id: kept in its `nodes.conf`, so it survives a restart.
    ids: Vec<String>,
    dir: PathBuf,
}

impl ReplicatedCluster {
    /// Starts six nodes, joins them with `redis-cli --cluster create --cluster-replicas 1` and
    /// waits until [`Self::is_healthy`].
    pub fn start() -> anyhow::Result<Self> {
        retry_on_fresh_ports("the replicated cluster", Self::try_start)
    }

    fn try_start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "redis-replicated-{}-{}",
            std::process::id(),
            crate::free_port()?
        ));
        let mut cluster = Self {
            nodes: Vec::new(),
            ids: Vec::new(),
            dir,
        };
        for _ in 0..NODES {
            let port = free_cluster_port()?;
            let node_dir = cluster.dir.join(port.to_string());
            cluster
                .nodes
                .push(Instance::start(port, node_dir, NODE_CONF, &[])?);
        }
        let out = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(cluster.addresses())
            .args(["--cluster-replicas", "1", "--cluster-yes"])
            .stdin(Stdio::null())
            .output()
            .context("running redis-cli --cluster create")?;
        if !out.status.success() {
            let said = String::from_utf8_lossy(&out.stdout);
            bail!("redis-cli --cluster create failed ({}): {said}", out.status);
        }
        cluster.ids = cluster
            .nodes
            .iter()
            .map(|node| Ok(node.cli(&["cluster", "myid"])?.trim().to_owned()))
            .collect::<anyhow::Result<_>>()?;
        wait_for(Duration::from_secs(20), || cluster.is_healthy())
            .context("the cluster never had every node ok and every replica linked")?;
        wait_for(Duration::from_secs(10), || {
            cluster.nodes.iter().all(|node| {
                replication(node).is_ok_and(|(role, _)| role == Role::Replica)
                    || replicas_acknowledge(node)
            })
        })
        .context("a master's replica never acknowledged its writes")?;
        Ok(cluster)
    }

    /// Every node runs, says `cluster_state:ok` and sees six nodes, none failing; three are
    /// masters and every replica's link to its master is up.
    pub fn is_healthy(&self) -> bool {
        let roles: Vec<Option<Role>> = self
            .nodes
            .iter()
            .map(|node| {
                let view = node.cli(&["cluster", "nodes"]).ok()?;
                let view = parse_nodes(&view);
                let agreed = view.len() == NODES && view.iter().all(|entry| !entry.failing);
                match (agreed && cluster_ok(node.port), replication(node).ok()?) {
                    (true, (Role::Master, _)) => Some(Role::Master),
                    (true, (Role::Replica, true)) => Some(Role::Replica),
                    _ => None,
                }
            })
            .collect();
        roles.iter().all(Option::is_some)
            && roles.iter().filter(|&&r| r == Some(Role::Master)).count() == MASTERS
    }

    fn addresses(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|node| format!("127.0.0.1:{}", node.port))
            .collect()
    }

    /// `REDIS_URL` for the services, as [`crate::RedisCluster::url`]: every node is a seed, so
    /// a client starting while one is down still finds the cluster.
    pub fn url(&self) -> String {
        format!("redis+cluster://{}", self.addresses().join(","))
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|node| node.port).collect()
    }

    pub fn port(&self, node: usize) -> anyhow::Result<u16> {
        Ok(self.node(node)?.port)
    }

    /// `redis://` URLs of the running nodes that are masters now (where every key is, once).
    pub fn master_urls(&self) -> anyhow::Result<Vec<String>> {
        let mut urls = Vec::new();
        for (i, node) in self.nodes.iter().enumerate() {
            if node.is_up() && self.role(i)? == Role::Master {
                urls.push(format!("redis://127.0.0.1:{}", node.port));
            }
        }
        Ok(urls)
    }

    /// What node `node` says it is, asked directly (it must be running).
    pub fn role(&self, node: usize) -> anyhow::Result<Role> {
        Ok(replication(self.node(node)?)?.0)
    }

    /// The master owning `slot`: of every claim the running nodes see, the one with the highest
    /// config epoch, as the cluster itself decides (a restarted node may still claim slots it
    /// lost). Before its failover, that may be a master that is down.
    pub fn master_of_slot(&self, slot: u16) -> anyhow::Result<usize> {
        let mut owner: Option<NodeEntry> = None;
        for node in self.nodes.iter().filter(|node| node.is_up()) {
            let Ok(view) = node.cli(&["cluster", "nodes"]) else {
                continue;
            };
            for entry in parse_nodes(&view) {
                let newer = owner.as_ref().is_none_or(|known| entry.epoch > known.epoch);
                if entry.master && entry.serves(slot) && newer {
                    owner = Some(entry);
                }
            }
        }
        let owner = owner.with_context(|| format!("no running node knows who has slot {slot}"))?;
        self.ids
            .iter()
            .position(|id| *id == owner.id)
            .with_context(|| format!("cluster node {} is none of ours", owner.id))
    }

    /// The replica of master `master`, as the running nodes see it.
    pub fn replica_of(&self, master: usize) -> anyhow::Result<usize> {
        let master_id = self
            .ids
            .get(master)
            .with_context(|| format!("no node {master}"))?;
        let replica = self
            .nodes
            .iter()
            .filter(|node| node.is_up())
            .filter_map(|node| node.cli(&["cluster", "nodes"]).ok())
            .flat_map(|view| parse_nodes(&view))
            .find(|entry| entry.replicates.as_ref() == Some(master_id))
            .with_context(|| format!("no running node knows a replica of node {master}"))?;
        self.ids
            .iter()
            .position(|id| *id == replica.id)
            .with_context(|| format!("cluster node {} is none of ours", replica.id))
    }

    /// Drops the replication links of master `node`: its replica misses what it writes until it
    /// connects again (one paused first cannot).
    pub fn cut_replicas(&self, node: usize) -> anyhow::Result<()> {
        cut_replicas(self.node(node)?)
    }

    /// How far node `node`'s replication stream has come (`master_repl_offset`): a master is
    /// ahead of its replica by what the replica still lacks.
    pub fn repl_offset(&self, node: usize) -> anyhow::Result<u64> {
        repl_offset(self.node(node)?)
    }

    /// The master owning `key` (hash tags included: the cluster computes the slot).
    pub fn master_for_key(&self, key: &str) -> anyhow::Result<usize> {
        let node = self.nodes.iter().find(|node| node.is_up());
        let slot = node
            .context("no node is running")?
            .cli(&["cluster", "keyslot", key])?;
        let slot = slot
            .trim()
            .parse()
            .with_context(|| format!("CLUSTER KEYSLOT answered {slot:?}"))?;
        self.master_of_slot(slot)
    }

    /// SIGKILL node `node`: a crash, with its data gone (no persistence).
    pub fn kill(&mut self, node: usize) -> anyhow::Result<()> {
        self.node_mut(node)?.kill();
        Ok(())
    }

    /// Starts node `node` again on its port and dir: its `nodes.conf` makes it the same node,
    /// and the cluster decides its role (a failed-over master comes back as a replica).
    pub fn restart(&mut self, node: usize) -> anyhow::Result<()> {
        self.node_mut(node)?.restart()
    }

    /// SIGSTOP: frozen with its data; after `cluster-node-timeout` (1.5 s) it may be failed over.
    pub fn pause(&mut self, node: usize) -> anyhow::Result<()> {
        self.node_mut(node)?.signal("STOP")
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&mut self, node: usize) -> anyhow::Result<()> {
        self.node_mut(node)?.signal("CONT")
    }

    /// Until the slots of master `lost` (killed or paused) are served by other masters, as every
    /// other running node sees it, and those nodes all say `cluster_state:ok`.
    pub fn wait_for_failover(&self, lost: usize, timeout: Duration) -> anyhow::Result<()> {
        let lost_id = self
            .ids
            .get(lost)
            .with_context(|| format!("no node {lost}"))?;
        let survivors: Vec<&Instance> = (0..self.nodes.len())
            .filter(|&i| i != lost && self.nodes[i].is_up())
            .map(|i| &self.nodes[i])
            .collect();
        let served_without_lost = |node: &Instance| {
            node.cli(&["cluster", "nodes"]).is_ok_and(|view| {
                let served: usize = parse_nodes(&view)
                    .iter()
                    .filter(|entry| entry.master && !entry.failing && entry.id != *lost_id)
                    .map(|entry| entry.slot_count)
                    .sum();
                served == SLOTS
            })
        };
        wait_for(timeout, || {
            survivors
                .iter()
                .all(|node| cluster_ok(node.port) && served_without_lost(node))
        })
        .with_context(|| {
            let view = survivors
                .first()
                .and_then(|n| n.cli(&["cluster", "nodes"]).ok());
            let view = view.unwrap_or_default();
            format!("node {lost}'s slots were not failed over; the cluster says:\n{view}")
        })
    }

    /// Until node `node` says it is `role` (a replica: with its master link up).
    pub fn wait_for_role(&self, node: usize, role: Role, timeout: Duration) -> anyhow::Result<()> {
        wait_for_role(self.node(node)?, role, timeout).with_context(|| format!("node {node}"))
    }

    fn node(&self, node: usize) -> anyhow::Result<&Instance> {
        self.nodes
            .get(node)
            .with_context(|| format!("the cluster has no node {node}"))
    }

    fn node_mut(&mut self, node: usize) -> anyhow::Result<&mut Instance> {
        self.nodes
            .get_mut(node)
            .with_context(|| format!("the cluster has no node {node}"))
    }
}

impl Drop for ReplicatedCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            node.kill();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One line of `CLUSTER NODES`:
/// `<id> <ip:port@bus> <flags> <master> <ping> <pong> <config epoch> <link> <slot>…`.
struct NodeEntry {
    id: String,
    master: bool,
    /// A replica's master (its id).
    replicates: Option<String>,
    /// Flagged `fail` or `fail?`: the cluster, or this node alone, thinks it is down.
    failing: bool,
    /// The version of its slot claims: the highest wins.
    epoch: u64,
    /// Inclusive ranges; an importing/migrating marker (`[…]`) is no ownership.
    slots: Vec<(u16, u16)>,
    slot_count: usize,
}

impl NodeEntry {
    fn serves(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(lo, hi)| (lo..=hi).contains(&slot))
    }
}

fn parse_nodes(text: &str) -> Vec<NodeEntry> {
    let range = |field: &str| match field.split_once('-') {
        Some((lo, hi)) => Some((lo.parse().ok()?, hi.parse().ok()?)),
        None => field.parse().ok().map(|slot| (slot, slot)),
    };
    text.lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let flags: Vec<&str> = fields.get(2)?.split(',').collect();
            let slots: Vec<(u16, u16)> = fields.iter().skip(8).filter_map(|f| range(f)).collect();
            Some(NodeEntry {
                id: (*fields.first()?).to_owned(),
                master: flags.contains(&"master"),
                replicates: fields
                    .get(3)
                    .filter(|id| **id != "-")
                    .map(|id| (*id).to_owned()),
                failing: flags.iter().any(|flag| flag.starts_with("fail")),
                epoch: fields.get(6)?.parse().ok()?,
                slot_count: slots.iter().map(|&(lo, hi)| usize::from(hi - lo) + 1).sum(),
                slots,
            })
        })
        .collect()
}

/// Calls `start` until it succeeds, [`crate::PORT_ATTEMPTS`] times: each call takes fresh ports,
/// as someone else may take a port between our finding it free and binding it.
pub(crate) fn retry_on_fresh_ports<T>(
    what: &str,
    mut start: impl FnMut() -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let mut failures = Vec::new();
    for _ in 0..crate::PORT_ATTEMPTS {
        match start() {
            Ok(started) => return Ok(started),
            Err(err) => failures.push(format!("{err:#}")),
        }
    }
    bail!("{what} did not start: {}", failures.join("; "))
}
