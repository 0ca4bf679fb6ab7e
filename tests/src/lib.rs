//! Test support shared by every suite: a private `redis-server` on a free port
//! (never 6379, never FLUSHALL: tests isolate with unique key prefixes) and free ports.
//!
//! The end-to-end suites themselves live under `tests/e2e`.

pub mod cluster;
pub mod failing;
pub mod flaky;
pub mod replicated;
pub mod sentinel;

pub use cluster::RedisCluster;
pub use replicated::ReplicatedCluster;
pub use sentinel::SentinelGroup;

use std::{
    collections::BTreeSet,
    io::{Read, Write},
    net::{TcpListener, TcpStream},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{
        Mutex, PoisonError,
        atomic::{AtomicU64, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// Attempts at starting a server on a fresh port when its port was taken meanwhile.
pub const PORT_ATTEMPTS: usize = 3;

/// A port nobody listens on right now, and never handed out before in this process.
///
/// The kernel may give a port it just gave (and that was released) to the next caller: two
/// worlds starting at once would then both try to listen on it.
pub fn free_port() -> anyhow::Result<u16> {
    for _ in 0..100 {
        let listener = TcpListener::bind("127.0.0.1:0").context("binding an ephemeral port")?;
        let port = listener.local_addr()?.port();
        if claim_port(port) {
            return Ok(port);
        }
    }
    bail!("no ephemeral port that this process has not used already")
}

/// Records `port` as handed out; `false` if it was already.
pub(crate) fn claim_port(port: u16) -> bool {
    static CLAIMED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    CLAIMED
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(port)
}

/// Whether process `pid` is the one listening on `127.0.0.1:port`, read from Linux's `/proc`;
/// `None` where that cannot be told (no `/proc`, or nobody listening there on IPv4).
///
/// A port found free may be taken by someone else before our server binds it: our server then
/// exits, but until it does, the other one answers our health probes.
pub fn listens_on(pid: u32, port: u16) -> Option<bool> {
    let table = std::fs::read_to_string("/proc/net/tcp").ok()?;
    let local = format!("0100007F:{port:04X}");
    let inode = table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
        (fields.len() > 9 && fields[1] == local && fields[3] == "0A").then(|| fields[9].to_owned())
    })?;
    let socket = format!("socket:[{inode}]");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| target.as_os_str() == socket.as_str())
    }))
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

/// A new Ed25519 private key file (PKCS#8 PEM) for `JOIN_TOKEN_KEY_FILE`, made with
/// `openssl genpkey -algorithm ed25519`: the command the README gives operators.
pub fn new_join_token_key() -> anyhow::Result<PathBuf> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = std::env::temp_dir().join(format!("e2e-join-token-keys-{}", std::process::id()));
    std::fs::create_dir_all(&dir).context("creating the key dir")?;
    let path = dir.join(format!(
        "key-{}.pem",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let status = Command::new("openssl")
        .args(["genpkey", "-algorithm", "ed25519", "-out"])
        .arg(&path)
        .stdout(Stdio::null())
        .status()
        .context("running openssl genpkey (scripts/test.sh installs openssl when missing)")?;
    if !status.success() {
        bail!("openssl genpkey -algorithm ed25519 failed: {status}");
    }
    Ok(path)
}

/// The key file every game service this process starts signs join tokens with (made once:
/// replicas of one deployment share their key).
pub fn join_token_key() -> anyhow::Result<PathBuf> {
    static KEY: Mutex<Option<PathBuf>> = Mutex::new(None);
    let mut key = KEY.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(path) = key.as_ref() {
        return Ok(path.clone());
    }
    let path = new_join_token_key()?;
    *key = Some(path.clone());
    Ok(path)
}

/// A `redis-server` owned by the test: started on a free port, killed on drop.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
    /// Appends every write to a file fsynced before the reply, so a restart keeps the data.
    durable: bool,
    /// Another address it listens on besides 127.0.0.1 ([`Self::listen_also_on`]).
    also_on: Option<String>,
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

    /// Retries on a fresh port when someone else took the port first.
    fn start_with(durable: bool) -> anyhow::Result<Self> {
        let mut failures = Vec::new();
        for _ in 0..PORT_ATTEMPTS {
            let port = free_port()?;
            let dir =
                std::env::temp_dir().join(format!("redis-test-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).context("creating the redis work dir")?;
            let mut server = Self {
                child: None,
                port,
                dir,
                durable,
                also_on: None,
            };
            match server.spawn() {
                Ok(()) => return Ok(server),
                Err(err) => failures.push(format!("{err:#}")),
            }
        }
        bail!(
            "redis-server did not start in {PORT_ATTEMPTS} attempts: {}",
            failures.join("; ")
        )
    }

    fn spawn(&mut self) -> anyhow::Result<()> {
        let persistence: &[&str] = if self.durable {
            &["--appendonly", "yes", "--appendfsync", "always"]
        } else {
            &["--appendonly", "no"]
        };
        let mut bind = vec!["--bind", "127.0.0.1"];
        if let Some(ip) = &self.also_on {
            bind.extend([ip.as_str(), "--protected-mode", "no"]);
        }
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(bind)
            .args(["--save", ""])
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

    /// Until the server answers PING, and it is our server that answers.
    fn wait_ready(&mut self, limit: Duration) -> anyhow::Result<()> {
        let start = Instant::now();
        while start.elapsed() < limit {
            let child = self.child.as_mut().context("redis-server is not running")?;
            if let Some(status) = child.try_wait().context("polling redis-server")? {
                self.child = None;
                bail!(
                    "redis-server on port {} exited at start-up ({status}): port taken?",
                    self.port
                );
            }
            if ping(self.port) && listens_on(child.id(), self.port) != Some(false) {
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

    /// Listens on `ip` too (an address of this machine: the host end of a test's veth pair), so
    /// that a process in another network namespace reaches it there; from now on, restarts
    /// included. Protected mode goes off (it refuses clients not on loopback): the address is
    /// the test's own.
    pub fn listen_also_on(&mut self, ip: &str) -> anyhow::Result<()> {
        self.also_on = Some(ip.to_owned());
        command(self.port, &["CONFIG", "SET", "protected-mode", "no"])?;
        command(
            self.port,
            &["CONFIG", "SET", "bind", &format!("127.0.0.1 {ip}")],
        )
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

/// Sends one command to the server on `127.0.0.1:port`; fails unless it answers `+OK`.
fn command(port: u16, args: &[&str]) -> anyhow::Result<()> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .with_context(|| format!("connecting to redis on port {port}"))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    let mut request = format!("*{}\r\n", args.len());
    for arg in args {
        request.push_str(&format!("${}\r\n{arg}\r\n", arg.len()));
    }
    stream.write_all(request.as_bytes())?;
    let mut reply = [0u8; 256];
    let n = stream.read(&mut reply)?;
    let reply = String::from_utf8_lossy(&reply[..n]);
    if !reply.starts_with("+OK") {
        bail!(
            "redis on port {port} answered {reply:?} to {}",
            args.join(" ")
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listens_on_tells_the_listening_process_from_another() -> anyhow::Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        if !std::path::Path::new("/proc/net/tcp").exists() {
            eprintln!("no /proc/net/tcp: listens_on cannot tell, and says so");
            assert_eq!(listens_on(std::process::id(), port), None);
            return Ok(());
        }
        assert_eq!(listens_on(std::process::id(), port), Some(true));
        let other = Command::new("sleep").arg("5").spawn()?;
        let answer = listens_on(other.id(), port);
        let mut other = other;
        let _ = other.kill();
        let _ = other.wait();
        assert_eq!(answer, Some(false));
        Ok(())
    }

    #[test]
    fn free_port_never_hands_out_a_port_twice() -> anyhow::Result<()> {
        let ports: Vec<u16> = (0..200).map(|_| free_port()).collect::<Result<_, _>>()?;
        let distinct: BTreeSet<u16> = ports.iter().copied().collect();
        assert_eq!(distinct.len(), ports.len());
        Ok(())
    }
}
