//! A private 3-master Redis Cluster on free ports (no replicas), for suites
//! that must hold on a cluster as well as on a standalone server.

use std::{
    net::TcpListener,
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::OnceLock,
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

const MASTERS: usize = 3;

/// A port that is free, as is its cluster-bus port (`port + 10000`).
pub(crate) fn free_cluster_port() -> anyhow::Result<u16> {
    for _ in 0..200 {
        let candidate = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        if !(1024..55_000).contains(&candidate) {
            continue;
        }
        let bus = candidate + 10_000;
        if TcpListener::bind(("127.0.0.1", candidate)).is_ok()
            && TcpListener::bind(("127.0.0.1", bus)).is_ok()
            && crate::claim_port(candidate)
            && crate::claim_port(bus)
        {
            return Ok(candidate);
        }
    }
    bail!("no free port pair for a cluster node")
}

pub struct RedisCluster {
    nodes: Vec<(u16, Child)>,
    dir: PathBuf,
}

impl RedisCluster {
    /// Starts three masters, joins them with `redis-cli --cluster create` and
    /// waits until the cluster reports `cluster_state:ok`.
    pub fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "redis-cluster-{}-{}",
            std::process::id(),
            crate::free_port()?
        ));
        let mut cluster = Self {
            nodes: Vec::new(),
            dir,
        };
        for _ in 0..MASTERS {
            let port = free_cluster_port()?;
            let node_dir = cluster.dir.join(port.to_string());
            std::fs::create_dir_all(&node_dir).context("creating a cluster node dir")?;
            let child = Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--cluster-enabled", "yes", "--cluster-node-timeout", "2000"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&node_dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting a cluster node (scripts/test.sh installs redis-server)")?;
            cluster.nodes.push((port, child));
        }
        cluster.watch_parent()?;
        for (port, child) in &cluster.nodes {
            // Our node, not someone who took the port before it could.
            let pid = child.id();
            wait_for(Duration::from_secs(10), || {
                crate::ping(*port) && crate::listens_on(pid, *port) != Some(false)
            })
            .with_context(|| format!("cluster node {port} did not answer PING"))?;
        }
        let addresses: Vec<String> = cluster
            .nodes
            .iter()
            .map(|(port, _)| format!("127.0.0.1:{port}"))
            .collect();
        let status = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running redis-cli --cluster create")?;
        if !status.success() {
            bail!("redis-cli --cluster create failed: {status}");
        }
        let ports: Vec<u16> = cluster.nodes.iter().map(|(p, _)| *p).collect();
        wait_for(Duration::from_secs(20), || {
            ports.iter().all(|port| cluster_ok(*port))
        })
        .context("the cluster never reported cluster_state:ok")?;
        Ok(cluster)
    }

    /// One cluster for the whole test binary (starting one takes about 2 s);
    /// tests isolate themselves with key prefixes.
    /// Every test of the binary depends on it: a start that fails (a port taken meanwhile) is
    /// retried on fresh ports.
    pub fn shared() -> anyhow::Result<&'static RedisCluster> {
        static SHARED: OnceLock<Result<RedisCluster, String>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let mut failures = Vec::new();
                for _ in 0..crate::PORT_ATTEMPTS {
                    match Self::start() {
                        Ok(cluster) => return Ok(cluster),
                        Err(err) => failures.push(format!("{err:#}")),
                    }
                }
                Err(failures.join("; "))
            })
            .as_ref()
            .map_err(|e| anyhow::anyhow!("starting the shared Redis Cluster: {e}"))
    }

    /// A shared cluster is never dropped: a watchdog kills its nodes once the
    /// test process is gone.
    fn watch_parent(&self) -> anyhow::Result<()> {
        let pids: Vec<String> = self.nodes.iter().map(|(_, c)| c.id().to_string()).collect();
        let script = format!(
            "while kill -0 {parent} 2>/dev/null; do sleep 1; done; kill {nodes} 2>/dev/null",
            parent = std::process::id(),
            nodes = pids.join(" ")
        );
        Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the cluster watchdog")?;
        Ok(())
    }

    /// `REDIS_URL` for the services: `redis+cluster://host:port,host:port,…`.
    pub fn url(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .map(|(port, _)| format!("127.0.0.1:{port}"))
            .collect();
        format!("redis+cluster://{}", nodes.join(","))
    }

    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|(port, _)| *port).collect()
    }

    /// SIGSTOP one master (by index, in [`Self::ports`] order): it freezes with its data, and
    /// after `cluster-node-timeout` (2 s) the others may declare it failed.
    pub fn pause(&self, node: usize) -> anyhow::Result<()> {
        crate::signal(self.pid(node)?, "STOP")
    }

    /// SIGCONT after [`Self::pause`].
    pub fn resume(&self, node: usize) -> anyhow::Result<()> {
        crate::signal(self.pid(node)?, "CONT")
    }

    fn pid(&self, node: usize) -> anyhow::Result<u32> {
        self.nodes
            .get(node)
            .map(|(_, child)| child.id())
            .with_context(|| format!("the cluster has no node {node}"))
    }

    /// Whether every master reports `cluster_state:ok`.
    pub fn is_ok(&self) -> bool {
        self.nodes.iter().all(|(port, _)| cluster_ok(*port))
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub(crate) fn cluster_ok(port: u16) -> bool {
    Command::new("redis-cli")
        .args(["-p", &port.to_string(), "cluster", "info"])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok"))
}

pub(crate) fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ready() {
            return Ok(());
        }
        thread::sleep(Duration::from_millis(50));
    }
    bail!("timed out after {limit:?}")
}
