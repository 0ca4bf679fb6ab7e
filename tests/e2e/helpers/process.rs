//! The service binaries as child processes: located under `target/debug`, started with a
//! clean environment, health-checked, their output kept (echoed with `TEST_LOG`), killed on drop.

use std::{
    collections::VecDeque,
    io::{BufRead, BufReader, Read},
    path::{Path, PathBuf},
    process::{Child, Command, ExitStatus, Stdio},
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use reqwest::Client;

/// Debug binaries start in well under a second; the margin covers a loaded CI machine.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);
/// Lines of child output kept to explain a failed start-up.
const LOG_TAIL_LINES: usize = 60;
/// Lines of child output kept in full, for checks of what a process logged (what must never
/// appear in a log, say); past this many, further lines are counted, not kept.
const LOG_KEPT_LINES: usize = 100_000;

fn workspace_root() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    root.canonicalize().unwrap_or(root)
}

/// `target/debug/<name>` (or under `$CARGO_TARGET_DIR`), built by `cargo build --bins`.
pub(super) fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let target = match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_relative() {
                workspace_root().join(dir)
            } else {
                dir
            }
        }
        None => workspace_root().join("target"),
    };
    let path = target.join("debug").join(name);
    ensure!(
        path.is_file(),
        "{} does not exist: run `cargo build --bins` before the e2e suite (scripts/test.sh does)",
        path.display()
    );
    if std::env::var_os("E2E_ALLOW_STALE").is_none()
        && let Some(newer) = newer_source(&path)?
    {
        bail!(
            "{} is older than {newer}: run `cargo build --bins` so the e2e suite tests the \
             current code (or set E2E_ALLOW_STALE=1 to test the old binary anyway)",
            path.display()
        );
    }
    Ok(path)
}

/// A source file the binary was built from (per cargo's `<bin>.d` dep-info) that changed or
/// disappeared since: testing that binary would test yesterday's code.
fn newer_source(binary: &Path) -> anyhow::Result<Option<String>> {
    let built = binary
        .metadata()
        .and_then(|m| m.modified())
        .context("reading the binary's mtime")?;
    let Ok(dep_info) = std::fs::read_to_string(binary.with_extension("d")) else {
        return Ok(None);
    };
    let Some((_, deps)) = dep_info.lines().next().and_then(|l| l.split_once(": ")) else {
        return Ok(None);
    };
    // Paths are space-separated, with spaces inside a path escaped as `\ `.
    let deps = deps.replace("\\ ", "\0");
    for dep in deps.split_whitespace() {
        let dep = dep.replace('\0', " ");
        let changed = std::fs::metadata(&dep)
            .and_then(|m| m.modified())
            .map_or(true, |modified| modified > built);
        if changed {
            return Ok(Some(dep));
        }
    }
    Ok(None)
}

/// A service could not listen on its port: someone took it between [`e2e::free_port`] and the
/// service's bind. Starting again on another port is the cure.
#[derive(Debug)]
pub(super) struct PortTaken(pub(super) u16);

impl std::fmt::Display for PortTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "port {} was taken by another process", self.0)
    }
}

impl std::error::Error for PortTaken {}

/// Whether starting failed only because the port was taken.
pub(super) fn port_taken(err: &anyhow::Error) -> bool {
    err.downcast_ref::<PortTaken>().is_some()
}

/// A child service process: output kept (and echoed when `TEST_LOG` is set), killed on drop.
pub(super) struct ServiceProcess {
    label: String,
    /// A command prefix the program runs under (`ip netns exec <ns>`), usually none.
    wrapper: Vec<String>,
    program: PathBuf,
    env: Vec<(String, String)>,
    base_url: String,
    child: Option<Child>,
    tail: Arc<Mutex<VecDeque<String>>>,
    /// Every line of output over every run (up to [`LOG_KEPT_LINES`]).
    log: Arc<Mutex<Vec<String>>>,
    /// Lines of output not kept in `log` because it was full.
    dropped: Arc<AtomicUsize>,
    /// Lines of output that report a panic, over every run of this process.
    panics: Arc<AtomicUsize>,
}

impl ServiceProcess {
    pub(super) fn spawn(
        label: String,
        program: PathBuf,
        env: Vec<(String, String)>,
        base_url: String,
    ) -> anyhow::Result<Self> {
        let mut process = Self::unstarted(label, program, env, base_url);
        process.respawn()?;
        Ok(process)
    }

    fn unstarted(
        label: String,
        program: PathBuf,
        env: Vec<(String, String)>,
        base_url: String,
    ) -> Self {
        Self {
            label,
            wrapper: Vec::new(),
            program,
            env,
            base_url,
            child: None,
            tail: Arc::default(),
            log: Arc::default(),
            dropped: Arc::default(),
            panics: Arc::default(),
        }
    }

    /// Another instance of the same program, run under `wrapper` (a command prefix such as
    /// `ip netns exec <ns>`), listening on `ip:port`, with `overrides` replacing the variables
    /// of the same name.
    pub(super) fn sibling_at(
        &self,
        label: String,
        wrapper: &[String],
        ip: &str,
        port: u16,
        overrides: &[(String, String)],
    ) -> anyhow::Result<Self> {
        let mut env = self.env.clone();
        env.retain(|(name, _)| name != "BIND_ADDR" && overrides.iter().all(|(o, _)| o != name));
        env.push(("BIND_ADDR".into(), format!("{ip}:{port}")));
        env.extend(overrides.iter().cloned());
        let mut process = Self::unstarted(
            label,
            self.program.clone(),
            env,
            format!("http://{ip}:{port}"),
        );
        process.wrapper = wrapper.to_vec();
        process.respawn()?;
        Ok(process)
    }

    pub(super) fn label(&self) -> &str {
        &self.label
    }

    pub(super) fn base_url(&self) -> &str {
        &self.base_url
    }

    pub(super) fn respawn(&mut self) -> anyhow::Result<()> {
        let echo = std::env::var_os("TEST_LOG").is_some();
        let rust_log = if echo {
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into())
        } else {
            "warn".into()
        };
        let mut command = match self.wrapper.split_first() {
            Some((first, rest)) => {
                let mut command = Command::new(first);
                command.args(rest).arg(&self.program);
                command
            }
            None => Command::new(&self.program),
        };
        // A clean environment: a developer's REDIS_URL or JWT_SECRET must not leak in.
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", rust_log)
            // The output goes through a pipe into the test's output: no ANSI colours.
            .env("NO_COLOR", "1")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        if let Some(out) = child.stdout.take() {
            self.forward(out, echo);
        }
        if let Some(err) = child.stderr.take() {
            self.forward(err, echo);
        }
        self.child = Some(child);
        Ok(())
    }

    fn forward(&self, stream: impl Read + Send + 'static, echo: bool) {
        let label = self.label.clone();
        let tail = Arc::clone(&self.tail);
        let log = Arc::clone(&self.log);
        let dropped = Arc::clone(&self.dropped);
        let panics = Arc::clone(&self.panics);
        thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if line.contains("panicked") {
                    panics.fetch_add(1, Ordering::Relaxed);
                }
                if echo {
                    eprintln!("[{label}] {line}");
                }
                if let Ok(mut log) = log.lock() {
                    if log.len() < LOG_KEPT_LINES {
                        log.push(line.clone());
                    } else {
                        dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
                if let Ok(mut tail) = tail.lock() {
                    if tail.len() == LOG_TAIL_LINES {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            }
        });
    }

    /// Until `/healthz` answers, and it is this process that answers: a port found free may
    /// be taken by someone else before the process binds it (it then exits with
    /// [`PortTaken`]).
    pub(super) async fn wait_healthy(&mut self, client: &Client) -> anyhow::Result<()> {
        let start = Instant::now();
        let url = format!("{}/healthz", self.base_url);
        let port = self
            .base_url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse::<u16>().ok())
            .with_context(|| format!("no port in {}", self.base_url))?;
        while start.elapsed() < STARTUP_LIMIT {
            if let Some(child) = self.child.as_mut()
                && let Some(status) = child.try_wait().context("polling the child")?
            {
                // Give the forwarding threads a moment to collect the last words.
                tokio::time::sleep(Duration::from_millis(100)).await;
                let tail = self.tail();
                let message = format!("{} exited during start-up ({status}):\n{tail}", self.label);
                if tail.contains("Address already in use") {
                    return Err(anyhow::Error::new(PortTaken(port)).context(message));
                }
                bail!(message);
            }
            let probe = client
                .get(&url)
                .timeout(Duration::from_millis(500))
                .send()
                .await;
            if probe.is_ok_and(|r| r.status().is_success())
                && self
                    .pid()
                    .is_some_and(|pid| e2e::listens_on(pid, port) != Some(false))
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!(
            "{} did not answer {url} within {STARTUP_LIMIT:?}:\n{}",
            self.label,
            self.tail()
        )
    }

    /// How many output lines reported a panic so far.
    pub(super) fn panics(&self) -> usize {
        self.panics.load(Ordering::Relaxed)
    }

    /// The process id while it runs.
    pub(super) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is still running.
    pub(super) fn is_running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    /// Sends a signal (`TERM`, `STOP`, …) to the process.
    pub(super) fn signal(&self, name: &str) -> anyhow::Result<()> {
        let pid = self
            .pid()
            .with_context(|| format!("{} is not running", self.label))?;
        e2e::signal(pid, name)
    }

    /// Waits up to `limit` for the process to exit by itself; `None` if it is still running
    /// (it is then left running).
    pub(super) async fn wait_exit(
        &mut self,
        limit: Duration,
    ) -> anyhow::Result<Option<ExitStatus>> {
        let start = Instant::now();
        loop {
            let Some(child) = self.child.as_mut() else {
                bail!("{} was not started", self.label);
            };
            if let Some(status) = child.try_wait().context("polling the child")? {
                self.child = None;
                return Ok(Some(status));
            }
            if start.elapsed() > limit {
                return Ok(None);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The last lines of the process's output.
    pub(super) fn tail(&self) -> String {
        self.tail
            .lock()
            .map(|lines| lines.iter().cloned().collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// Every line of output so far, over every run; an error when some were not kept.
    pub(super) fn output(&self) -> anyhow::Result<Vec<String>> {
        let dropped = self.dropped.load(Ordering::Relaxed);
        ensure!(
            dropped == 0,
            "{} printed {dropped} lines more than the {LOG_KEPT_LINES} kept",
            self.label
        );
        Ok(self.log.lock().map(|log| log.clone()).unwrap_or_default())
    }

    pub(super) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
