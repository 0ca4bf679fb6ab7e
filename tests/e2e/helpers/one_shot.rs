//! A service binary run to its exit, for start-up refusals: its exit status and everything it printed.

use std::{
    io::Read,
    process::{Command, ExitStatus, Stdio},
    thread,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

use super::process::binary;

/// Runs service binary `name` with only `env` (and `PATH`) until it exits, for start-up
/// refusals: its exit status and everything it printed. A process still running after
/// `limit` is killed and reported as an error.
pub fn run_to_exit(
    name: &str,
    env: &[(&str, &str)],
    limit: Duration,
) -> anyhow::Result<(ExitStatus, String)> {
    let mut child = Command::new(binary(name)?)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("NO_COLOR", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {name}"))?;
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait()? {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            bail!("{name} was still running after {limit:?}: it did not refuse to start");
        }
        thread::sleep(Duration::from_millis(20));
    };
    let mut output = String::new();
    for stream in [
        child.stdout.take().map(|s| Box::new(s) as Box<dyn Read>),
        child.stderr.take().map(|s| Box::new(s) as Box<dyn Read>),
    ]
    .into_iter()
    .flatten()
    {
        let mut stream = stream;
        stream.read_to_string(&mut output)?;
    }
    Ok((status, output))
}
