//! One `redis-server` process of the replicated harness (a cluster node, a data node or a Sentinel): started from its config file, killed, signalled, asked with `redis-cli`, and what it says of its replication.

use std::{
    ffi::OsString,
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

use anyhow::{Context, bail};

use super::Role;
use crate::cluster::wait_for;

/// The role `server` reports, and (for a replica) whether its master link is up.
pub(crate) fn replication(server: &Instance) -> anyhow::Result<(Role, bool)> {
    let info = server.cli(&["info", "replication"])?;
    let field = |name: &str| {
        info.lines()
            .find_map(|line| line.trim_end().strip_prefix(name)?.strip_prefix(':'))
    };
    let role = match field("role") {
        Some("master") => Role::Master,
        Some("slave") => Role::Replica,
        other => bail!("port {} reports role {other:?}", server.port),
    };
    Ok((role, field("master_link_status") == Some("up")))
}

/// Until `server` says it is `role` (a replica: with its master link up).
pub(crate) fn wait_for_role(
    server: &Instance,
    role: Role,
    timeout: Duration,
) -> anyhow::Result<()> {
    wait_for(timeout, || {
        replication(server).is_ok_and(|(r, linked)| r == role && (linked || r == Role::Master))
    })
    .with_context(|| format!("port {} never became a {role:?}", server.port))
}

/// Whether master `server`'s replicas acknowledge what it has written (`WAIT 1`): a replica
/// whose link is up may not yet be one its master counts, and the services' writes wait for
/// one (`REDIS_MIN_REPLICAS_ACKED`).
pub(crate) fn replicas_acknowledge(server: &Instance) -> bool {
    server
        .cli(&["wait", "1", "200"])
        .is_ok_and(|acked| acked.trim().parse::<u32>().is_ok_and(|n| n >= 1))
}

/// Drops the replication links of master `server` (`CLIENT KILL TYPE replica`): its replicas
/// miss what it writes from now on until they connect again (a replica paused first cannot).
pub(crate) fn cut_replicas(server: &Instance) -> anyhow::Result<()> {
    server.cli(&["client", "kill", "type", "replica"])?;
    Ok(())
}

/// `master_repl_offset` of `server`: how far its replication stream has come (a master: what it
/// sent its replicas; a replica: what it received).
pub(crate) fn repl_offset(server: &Instance) -> anyhow::Result<u64> {
    let info = server.cli(&["info", "replication"])?;
    let offset = info
        .lines()
        .find_map(|line| line.trim_end().strip_prefix("master_repl_offset:"));
    offset
        .with_context(|| format!("port {} reports no master_repl_offset", server.port))?
        .parse()
        .with_context(|| format!("port {}: master_repl_offset {offset:?}", server.port))
}

/// One `redis-server` process the harness owns (a cluster node, a data node or a Sentinel), on
/// `port`, working in `dir` from its `redis.conf` there; killed on drop.
pub(crate) struct Instance {
    pub(crate) port: u16,
    dir: PathBuf,
    args: Vec<OsString>,
    child: Option<Child>,
    paused: bool,
}

impl Instance {
    /// Writes `conf` (after `port`, `bind 127.0.0.1`, `dir`, `logfile`) to `dir/redis.conf`, starts
    /// `redis-server` on it with `extra` arguments (`--sentinel`) and waits until it answers.
    /// A file, not flags: Sentinel and `CONFIG REWRITE` write to it, so a restart keeps what
    /// they set.
    pub(crate) fn start(
        port: u16,
        dir: PathBuf,
        conf: &str,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join("redis.conf");
        let conf = format!(
            "port {port}\nbind 127.0.0.1\ndir \"{0}\"\nlogfile \"{0}/redis.log\"\n{conf}",
            dir.display()
        );
        std::fs::write(&path, conf).with_context(|| format!("writing {}", path.display()))?;
        let args = std::iter::once(path.into_os_string()).chain(extra.iter().map(Into::into));
        let mut instance = Self {
            port,
            dir,
            args: args.collect(),
            child: None,
            paused: false,
        };
        instance.restart()?;
        Ok(instance)
    }

    /// Kills the server if it runs, starts it and waits until it answers PING (ours, not
    /// someone who took the port).
    pub(crate) fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let mut child = Command::new("redis-server")
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (scripts/test.sh installs it when missing)")?;
        let (pid, port) = (child.id(), self.port);
        let mut exited = None;
        let ready = wait_for(Duration::from_secs(10), || {
            exited = child.try_wait().ok().flatten();
            exited.is_some() || (crate::ping(port) && crate::listens_on(pid, port) != Some(false))
        });
        self.child = Some(child);
        if let Some(status) = exited {
            self.child = None;
            bail!(
                "redis-server on port {port} exited ({status}): {}",
                self.log_tail(3)
            );
        }
        if ready.is_err() {
            self.kill();
            bail!("redis-server on port {port} did not answer PING: port taken?");
        }
        Ok(())
    }

    /// SIGKILL, and reaps the process.
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        self.paused = false;
    }

    /// `STOP` or `CONT`; a stopped server is not [`Self::is_up`].
    pub(crate) fn signal(&mut self, name: &str) -> anyhow::Result<()> {
        let child = self.child.as_ref();
        let pid = child.with_context(|| format!("port {} is not running", self.port))?;
        crate::signal(pid.id(), name)?;
        self.paused = name == "STOP";
        Ok(())
    }

    /// The last `lines` lines of its log (`dir/redis.log`), to tell why a wait failed.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let log = std::fs::read_to_string(self.dir.join("redis.log")).unwrap_or_default();
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Running and not paused: it can answer.
    pub(crate) fn is_up(&self) -> bool {
        self.child.is_some() && !self.paused
    }

    /// `redis-cli -e` (an error reply fails it) against this server under timeout(1), as a
    /// paused server takes the connection and never answers; the raw answer (a line per
    /// array element).
    pub(crate) fn cli(&self, args: &[&str]) -> anyhow::Result<String> {
        let what = || format!("redis-cli -p {} {}", self.port, args.join(" "));
        let out = Command::new("timeout")
            .args(["2", "redis-cli", "-e", "-p", &self.port.to_string()])
            .args(args)
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .with_context(what)?;
        let answer = String::from_utf8_lossy(&out.stdout).into_owned();
        if !out.status.success() {
            bail!("{} failed ({}): {}", what(), out.status, answer.trim());
        }
        Ok(answer)
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.kill();
    }
}
