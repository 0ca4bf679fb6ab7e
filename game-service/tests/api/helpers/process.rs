//! The real `game-service` binary on a free port with a chosen environment, its stdout and stderr captured.

use std::{
    io::{BufRead, BufReader, Read},
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// How long the binary may take to listen.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `game-service` process, killed on drop.
pub struct GameProcess {
    child: Child,
    /// `http://127.0.0.1:<port>`.
    pub address: String,
    log: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

fn capture(stream: impl Read + Send + 'static, log: Arc<Mutex<String>>) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            if std::env::var_os("TEST_LOG").is_some() {
                eprintln!("[game-service] {line}");
            }
            if let Ok(mut log) = log.lock() {
                log.push_str(&line);
                log.push('\n');
            }
        }
    })
}

/// The port in a `game-service listening` line, text (`port=N`) or JSON (`"port":N`).
fn listening_port(log: &str) -> Option<u16> {
    log.lines()
        .filter(|line| line.contains("game-service listening"))
        .find_map(|line| {
            let rest = line
                .split_once("port=")
                .or_else(|| line.split_once("\"port\":"))?
                .1;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
}

impl GameProcess {
    /// Starts the binary with a clean environment: `BIND_ADDR=127.0.0.1:0`, the in-memory
    /// store, an IM URL nobody listens on, the rate limit off, then `env` on top.
    pub async fn start(env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut command = Command::new(env!("CARGO_BIN_EXE_game-service"));
        command
            .env_clear()
            .env("BIND_ADDR", "127.0.0.1:0")
            .env("IM_URL", "http://127.0.0.1:9")
            .env("IM_TIMEOUT_MS", "300")
            .env("RATE_LIMIT_PER_SEC", "0")
            .env("RUST_LOG", "info");
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .context("spawning game-service")?;
        let log = Arc::new(Mutex::new(String::new()));
        let mut readers = Vec::new();
        if let Some(stdout) = child.stdout.take() {
            readers.push(capture(stdout, log.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            readers.push(capture(stderr, log.clone()));
        }
        let mut process = Self {
            child,
            address: String::new(),
            log,
            readers,
        };
        let started = Instant::now();
        loop {
            if let Some(port) = listening_port(&process.log()) {
                process.address = format!("http://127.0.0.1:{port}");
                return Ok(process);
            }
            if let Some(status) = process.child.try_wait()? {
                bail!("game-service exited with {status}:\n{}", process.log());
            }
            if started.elapsed() > START_TIMEOUT {
                bail!("game-service did not listen in time:\n{}", process.log());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// What the process wrote so far (stdout and stderr interleaved by line).
    pub fn log(&self) -> String {
        self.log.lock().map(|log| log.clone()).unwrap_or_default()
    }

    /// Waits until the log contains every one of `needles`; false on timeout.
    pub async fn wait_for_log(&self, needles: &[&str], timeout: Duration) -> bool {
        let started = Instant::now();
        loop {
            let log = self.log();
            if needles.iter().all(|needle| log.contains(needle)) {
                return true;
            }
            if started.elapsed() > timeout {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Kills the process and returns everything it wrote.
    pub fn stop(mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        self.log()
    }
}

impl Drop for GameProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A directory under the system temp dir, removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(name: &str) -> anyhow::Result<Self> {
        let path = std::env::temp_dir().join(format!(
            "game-api-{name}-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Self(path))
    }

    pub fn join(&self, file: &str) -> std::path::PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
