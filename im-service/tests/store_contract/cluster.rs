//! The whole contract against a three-node Redis Cluster: proves every script and command stays
//! in one slot (a cross-slot step would fail with CROSSSLOT).

use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use im_service::store::RedisStore;

use crate::{
    contract,
    helpers::{SHORT_RETENTION, redis_config, redis_config_with},
};

/// Three masters on free ports (client and bus ports both picked free), killed on drop.
struct RedisCluster {
    nodes: Vec<Child>,
    ports: Vec<u16>,
    dir: PathBuf,
}

impl RedisCluster {
    fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "redis-cluster-test-{}-{}",
            std::process::id(),
            e2e::free_port()?
        ));
        std::fs::create_dir_all(&dir)?;
        let mut cluster = Self {
            nodes: Vec::new(),
            ports: Vec::new(),
            dir,
        };
        for _ in 0..3 {
            let port = e2e::free_port()?;
            let bus = e2e::free_port()?;
            let child = Command::new("redis-server")
                .args([
                    "--port",
                    &port.to_string(),
                    "--cluster-port",
                    &bus.to_string(),
                ])
                .args(["--cluster-enabled", "yes", "--bind", "127.0.0.1"])
                .args(["--cluster-config-file", &format!("nodes-{port}.conf")])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(&cluster.dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("starting a cluster node")?;
            cluster.nodes.push(child);
            cluster.ports.push(port);
        }
        for port in &cluster.ports {
            cluster.wait_for(*port, &["PING"], "PONG")?;
        }
        let addresses: Vec<String> = cluster
            .ports
            .iter()
            .map(|p| format!("127.0.0.1:{p}"))
            .collect();
        let status = Command::new("redis-cli")
            .args(["--cluster", "create"])
            .args(&addresses)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .context("running redis-cli --cluster create")?;
        if !status.success() {
            bail!("redis-cli --cluster create failed: {status}");
        }
        for port in &cluster.ports {
            cluster.wait_for(*port, &["CLUSTER", "INFO"], "cluster_state:ok")?;
        }
        Ok(cluster)
    }

    fn wait_for(&self, port: u16, command: &[&str], expected: &str) -> anyhow::Result<()> {
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            let output = Command::new("redis-cli")
                .args(["-p", &port.to_string()])
                .args(command)
                .output();
            if output.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains(expected)) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(100));
        }
        bail!("node {port} never answered {command:?} with {expected}")
    }

    fn url(&self) -> String {
        self.ports
            .iter()
            .map(|p| format!("redis://127.0.0.1:{p}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

impl Drop for RedisCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            let _ = node.kill();
            let _ = node.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs each named contract function on a fresh prefix of the one cluster.
macro_rules! on_cluster {
    ($cluster:expr, $($name:ident),* $(,)?) => {
        $(
            let store = RedisStore::connect(&redis_config(
                $cluster.url(),
                true,
                &e2e::unique_prefix(stringify!($name)),
            ))?;
            contract::$name(&store)
                .await
                .context(concat!("on the cluster: ", stringify!($name)))?;
        )*
    };
}

/// As `on_cluster!`, on stores with a short retention.
macro_rules! expiring_on_cluster {
    ($cluster:expr, $($name:ident),* $(,)?) => {
        $(
            let store = RedisStore::connect(&redis_config_with(
                $cluster.url(),
                true,
                &e2e::unique_prefix(stringify!($name)),
                SHORT_RETENTION,
            ))?;
            contract::$name(&store)
                .await
                .context(concat!("on the cluster: ", stringify!($name)))?;
        )*
    };
}

#[tokio::test]
async fn the_whole_contract_holds_on_a_redis_cluster() -> anyhow::Result<()> {
    let cluster = RedisCluster::start()?;
    with_every_contract_function!(on_cluster!(cluster,));
    with_every_expiring_contract_function!(expiring_on_cluster!(cluster,));
    Ok(())
}
