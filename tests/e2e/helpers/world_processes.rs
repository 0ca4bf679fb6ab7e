//! A running world's processes under a test's control: game-service and IM-service replicas, kills, restarts and signals, its Redis, and what the processes logged.

use std::time::Duration;

use anyhow::Context;
use e2e::{PORT_ATTEMPTS, RedisCluster, RedisServer, ReplicatedCluster, SentinelGroup, free_port};

use super::{
    Service, TestWorld,
    process::{self, ServiceProcess},
    world::test_name,
};

/// Another game-service (or IM-service) process sharing the world's Redis.
#[derive(Debug, Clone)]
pub struct Replica {
    pub(super) base_url: String,
    /// Which service it is another process of.
    pub(super) service: Service,
}

impl Replica {
    /// `http://<ip>:<port>`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }
}

/// Where and how another replica runs, when not like the first process: under a command
/// prefix (`ip netns exec <ns>`), listening on another address, with other variables
/// (`REDIS_URL`, `IM_URL`, …) in place of the first process's.
#[derive(Debug, Clone)]
pub struct Placement {
    pub wrapper: Vec<String>,
    /// The address it listens on (a free port is picked).
    pub ip: String,
    pub env: Vec<(String, String)>,
}

impl Default for Placement {
    fn default() -> Self {
        Self {
            wrapper: Vec::new(),
            ip: "127.0.0.1".to_owned(),
            env: Vec::new(),
        }
    }
}

impl TestWorld {
    /// SIGKILL the IM service: what a crash looks like to the game service.
    pub fn kill_im(&mut self) {
        self.im.kill();
    }

    /// Starts the IM service again on the same port and Redis prefix.
    pub async fn restart_im(&mut self) -> anyhow::Result<()> {
        self.im.kill();
        self.im.respawn()?;
        self.im.wait_healthy(&self.api.client).await
    }

    /// Starts another game-service replica on the same Redis and prefix: players reach it
    /// through [`Player::via`].
    pub async fn spawn_game_replica(&mut self) -> anyhow::Result<Replica> {
        self.spawn_replica(Service::Game, &Placement::default())
            .await
    }

    /// Starts another game-service replica on the same prefix, placed as `placement` says
    /// (in a network namespace, say, reaching Redis at another address).
    pub async fn spawn_game_replica_at(
        &mut self,
        placement: &Placement,
    ) -> anyhow::Result<Replica> {
        self.spawn_replica(Service::Game, placement).await
    }

    /// Starts another IM-service replica on the same Redis and prefix (the game service keeps
    /// talking to the first): players reach it through [`Player::via`].
    pub async fn spawn_im_replica(&mut self) -> anyhow::Result<Replica> {
        self.spawn_replica(Service::Im, &Placement::default()).await
    }

    /// Starts another IM-service replica, placed as `placement` says (listening on an address
    /// a network namespace reaches, say).
    pub async fn spawn_im_replica_at(&mut self, placement: &Placement) -> anyhow::Result<Replica> {
        self.spawn_replica(Service::Im, placement).await
    }

    async fn spawn_replica(
        &mut self,
        service: Service,
        placement: &Placement,
    ) -> anyhow::Result<Replica> {
        let (first, name, index) = match service {
            Service::Game => (&self.game, "game", self.replicas.len() + 2),
            Service::Im => (&self.im, "im", self.im_replicas.len() + 2),
        };
        let mut attempt = 1;
        let replica = loop {
            let mut replica = first.sibling_at(
                format!("{name}#{index} {}", test_name()),
                &placement.wrapper,
                &placement.ip,
                free_port()?,
                &placement.env,
            )?;
            match replica.wait_healthy(&self.api.client).await {
                Ok(()) => break replica,
                Err(err) if process::port_taken(&err) && attempt < PORT_ATTEMPTS => {
                    eprintln!("replica: starting again on another port: {err:#}");
                    attempt += 1;
                }
                Err(err) => return Err(err),
            }
        };
        let handle = Replica {
            base_url: replica.base_url().to_owned(),
            service,
        };
        match service {
            Service::Game => self.replicas.push(replica),
            Service::Im => self.im_replicas.push(replica),
        }
        Ok(handle)
    }

    /// Restarts the game service (same port, same Redis prefix): a replica restart.
    pub async fn restart_game(&mut self) -> anyhow::Result<()> {
        self.game.kill();
        self.game.respawn()?;
        self.game.wait_healthy(&self.api.client).await
    }

    pub fn im_port(&self) -> anyhow::Result<u16> {
        port_of(&self.api.im)
    }

    /// The world's own redis-server (not on the shared cluster): a test that kills, pauses or
    /// restarts it asks for [`StoreChoice::PrivateRedis`] or [`StoreChoice::DurableRedis`].
    pub fn redis(&mut self) -> anyhow::Result<&mut RedisServer> {
        self.redis.as_mut().context(
            "this world runs on the shared cluster, not on a redis-server of its own: a test \
             that kills, pauses or restarts Redis asks for StoreChoice::PrivateRedis",
        )
    }

    /// The world's own cluster ([`StoreChoice::PrivateCluster`]).
    pub fn cluster(&self) -> anyhow::Result<&RedisCluster> {
        self.cluster
            .as_ref()
            .context("this world does not run on a cluster of its own")
    }

    /// The world's own cluster with replicas ([`StoreChoice::ReplicatedCluster`]).
    pub fn replicated_cluster(&mut self) -> anyhow::Result<&mut ReplicatedCluster> {
        self.replicated
            .as_mut()
            .context("this world does not run on a replicated cluster of its own")
    }

    /// The world's own primary, replica and Sentinels ([`StoreChoice::Sentinel`]).
    pub fn sentinel(&mut self) -> anyhow::Result<&mut SentinelGroup> {
        self.sentinel
            .as_mut()
            .context("this world does not run behind Sentinels of its own")
    }

    /// SIGKILL a replica started with [`Self::spawn_game_replica`] or
    /// [`Self::spawn_im_replica`].
    pub fn kill_replica(&mut self, replica: &Replica) -> anyhow::Result<()> {
        self.replicas
            .iter_mut()
            .chain(&mut self.im_replicas)
            .find(|process| process.base_url() == replica.base_url)
            .with_context(|| format!("no replica at {}", replica.base_url))?
            .kill();
        Ok(())
    }

    /// SIGKILLs a replica started with [`Self::spawn_game_replica`] or
    /// [`Self::spawn_im_replica`] and starts it again on the same port and Redis prefix.
    pub async fn restart_replica(&mut self, replica: &Replica) -> anyhow::Result<()> {
        let process = self
            .replicas
            .iter_mut()
            .chain(&mut self.im_replicas)
            .find(|process| process.base_url() == replica.base_url)
            .with_context(|| format!("no replica at {}", replica.base_url))?;
        process.kill();
        process.respawn()?;
        process.wait_healthy(&self.api.client).await
    }

    /// Sends a signal (`TERM`, `INT`, …) to the primary game service.
    pub fn signal_game(&self, name: &str) -> anyhow::Result<()> {
        self.game.signal(name)
    }

    /// Waits up to `limit` for the primary game service to exit; `None`: still running.
    pub async fn wait_game_exit(
        &mut self,
        limit: Duration,
    ) -> anyhow::Result<Option<std::process::ExitStatus>> {
        self.game.wait_exit(limit).await
    }

    /// Whether every IM-service and game-service process is still running.
    pub fn all_running(&mut self) -> bool {
        let replicas = self
            .replicas
            .iter_mut()
            .chain(&mut self.im_replicas)
            .all(ServiceProcess::is_running);
        replicas && self.game.is_running() && self.im.is_running()
    }

    /// Output lines of every service process that reported a panic.
    pub fn panics(&self) -> usize {
        let replicas: usize = self
            .replicas
            .iter()
            .chain(&self.im_replicas)
            .map(ServiceProcess::panics)
            .sum();
        replicas + self.game.panics() + self.im.panics()
    }

    /// The last lines of the primary game service's output, for failure messages.
    pub fn game_log_tail(&self) -> String {
        self.game.tail()
    }

    /// Every line every process of `service` printed so far (the primary, then each
    /// replica), each prefixed with the process's label: for checks of what the logs hold.
    pub(super) fn output_of(&self, service: Service) -> anyhow::Result<Vec<String>> {
        let mut lines = Vec::new();
        for process in self.processes_of(service) {
            let label = process.label();
            lines.extend(
                process
                    .output()?
                    .into_iter()
                    .map(|line| format!("[{label}] {line}")),
            );
        }
        Ok(lines)
    }

    /// The last lines of every game-service process's output (the primary, then each replica).
    pub fn game_log_tails(&self) -> String {
        self.log_tails_of(Service::Game)
    }

    /// The last lines of every process of `service` (the primary, then each replica).
    pub(super) fn log_tails_of(&self, service: Service) -> String {
        self.processes_of(service)
            .map(|process| format!("-- {}:\n{}", process.label(), process.tail()))
            .collect::<Vec<_>>()
            .join("\n")
    }

    /// The primary process of `service`, then its replicas.
    fn processes_of(&self, service: Service) -> impl Iterator<Item = &ServiceProcess> {
        let (first, replicas) = match service {
            Service::Game => (&self.game, &self.replicas),
            Service::Im => (&self.im, &self.im_replicas),
        };
        std::iter::once(first).chain(replicas)
    }
}

fn port_of(base: &str) -> anyhow::Result<u16> {
    base.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .with_context(|| format!("no port in {base}"))
}
