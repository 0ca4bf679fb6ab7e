//! Test support shared by every suite: a private `redis-server` on a free port
//! (never 6379, never FLUSHALL: tests isolate with unique key prefixes) and free ports.
//!
//! The end-to-end suites themselves live under `tests/e2e`.

pub mod cluster;

pub use cluster::RedisCluster;

use std::{
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::atomic::{AtomicU64, Ordering},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// A port nobody listens on right now.
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
    Ok(listener.local_addr()?.port())
}

/// A key prefix no other test uses, so tests can share one Redis.
pub fn unique_prefix(name: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    format!(
        "t{}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        name
    )
}

/// A `redis-server` owned by the test: started on a free port, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// Appends every write to a file fsynced before the reply, so a restart keeps the data.
    durable: bool,
}

impl RedisServer {
    /// Starts a throwaway server (no persistence) and waits until it answers PING.
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(false)
    }

    /// Starts a server that persists every write before answering it (`appendfsync always`):
    /// after a SIGKILL and [`Self::restart`] it holds exactly what it acknowledged.
    pub fn start_durable() -> anyhow::Result<Self> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> anyhow::Result<Self> {
        let port = free_port()?;
        let dir = std::env::temp_dir().join(format!("redis-test-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).context("creating the redis work dir")?;
        let mut server = Self {
            child: None,
            port,
            dir,
            durable,
        };
        server.spawn()?;
        Ok(server)
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let persistence: &[&str] = if self.durable {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", ""])
            .args(persistence)
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting redis-server (scripts/test.sh installs it when missing)")?;
        self.child = Some(child);
        self.wait_ready(Duration::from_secs(10))
    }

    fn wait_ready(&self, limit: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        while start.elapsed() < limit {
            if ping(self.port) {
                return Ok(());
            }
            thread::sleep(Duration::from_millis(20));
        }
        bail!("redis-server on port {} did not answer PING", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// The server's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGSTOP: the server freezes with its data intact (a long GC pause, a stalled VM).
    pub fn pause(&self) -> anyhow::Result<()> {
        self.signal("STOP")
    }

    /// SIGCONT after [`Self::pause`]: the server carries on with everything it held.
    pub fn resume(&self) -> anyhow::Result<()> {
        self.signal("CONT")
    }

    fn signal(&self, name: &str) -> anyhow::Result<()> {
        let pid = self.pid().context("redis-server is not running")?;
        signal(pid, name)
    }

    /// SIGKILL: the way a crash looks to the services.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port: empty, unless it was started durable.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        self.spawn()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Sends signal `name` (`TERM`, `STOP`, …) to process `pid` with kill(1): the suites forbid
/// unsafe code, so no libc.
pub fn signal(pid: u32, name: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .args(["-s", name, &pid.to_string()])
        .status()
        .with_context(|| format!("running kill -s {name} {pid}"))?;
    if !status.success() {
        bail!("kill -s {name} {pid} failed: {status}");
    }
    Ok(())
}

pub(crate) fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 16];
    matches!(stream.read(&mut buf), Ok(n) if buf[..n].starts_with(b"+PONG"))
}
