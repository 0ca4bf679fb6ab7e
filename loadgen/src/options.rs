//! Command-line options (`--name value`), with the defaults a benchmark on one machine wants.

use std::{path::PathBuf, time::Duration};

use anyhow::{Context, bail};
use shared_types::auth::{DEFAULT_AUDIENCE, DEFAULT_ISSUER};

pub const USAGE: &str = "\
usage: loadgen [options]

Plays the two-player flow (presence, conversation, event streams, connect, accept,
join, active session on both streams, leave) against running services, then
measures GET /healthz (and Redis PING) with the same client and concurrency.

  --game-url URL        game service            [http://127.0.0.1:8080]
  --im-url URL          IM service              [http://127.0.0.1:8081]
  --jwt-secret SECRET   HS256 secret            [$JWT_SECRET]
  --jwt-issuer ISS      token issuer            [$JWT_ISSUER or game-platform]
  --jwt-audience AUD    token audience          [$JWT_AUDIENCE or game-platform]
  --concurrency N       pairs (or requests) in flight                 [16]
  --duration SECS       measured time                                 [10]
  --pairings N          measure exactly N pairings (attempts) instead, however
                        long they take (instruction counts under callgrind)
  --warmup SECS         unmeasured time before it                     [2]
  --baseline SECS       time for each bound (healthz, Redis PING)     [3]
  --redis-url URL[,URL…] also measure Redis PING round trips (to the first) and
                        Redis's commands, CPU and memory per pairing (summed over
                        all: a cluster's masters)
  --timeout SECS        limit of one request or one awaited event     [10]
  --json FILE           write the report as JSON to FILE (- = stdout)
  --streams-only K      connection scale: hold K event streams, then one event each
  --pending N           open N waiting lobbies whose invitee never answers, and
                        report Redis memory per lobby (scripts/bench.sh BENCH_DRAIN)
  --partners-scale N,…  partners-query cost: for each N (at most 100) a user with N
                        answered conversations, then --pairings calls (200) of
                        GET /v1/users/{id}/partners one at a time
  --game-pid PID        game-service process, for its RSS (streams mode)
  --cpu-pid NAME=PID    report this process's CPU ms per pairing (repeatable; one
                        NAME for several processes sums them)
  --source-addrs N      streams mode: spread sockets over 127.0.0.1..N [8]
  --http 1|2            HTTP/1.1, or HTTP/2 cleartext (prior knowledge): every
                        request and stream multiplexed on one connection per
                        source address                                 [1]
  -h, --help            this text
";

/// Everything a run needs to know.
#[derive(Debug, Clone)]
pub struct Options {
    pub game_url: String,
    pub im_url: String,
    pub jwt_secret: String,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub concurrency: usize,
    pub duration: Duration,
    /// Measure this many pairings (attempts) instead of `duration`.
    pub pairings: Option<u64>,
    pub warmup: Duration,
    pub baseline: Duration,
    pub redis_url: Option<String>,
    pub timeout: Duration,
    pub json: Option<PathBuf>,
    /// Connection-scale mode: hold this many streams instead of playing pairings.
    pub streams_only: Option<usize>,
    /// Pending-invitations mode: open this many waiting lobbies.
    pub pending: Option<u64>,
    /// Partners-query scale mode: one user per size, with that many conversations.
    pub partners_scale: Option<Vec<usize>>,
    pub game_pid: Option<u32>,
    /// Processes whose CPU time per pairing is reported (`--cpu-pid NAME=PID`, repeatable).
    pub cpu_pids: Vec<(String, u32)>,
    /// Loopback source addresses: each gives its own ~28k ephemeral ports.
    pub source_addrs: u8,
    /// HTTP/2 cleartext (h2c, prior knowledge) instead of HTTP/1.1.
    pub http2: bool,
}

impl Options {
    /// The Redis nodes `--redis-url` names (none without it).
    pub fn redis_urls(&self) -> impl Iterator<Item = &str> {
        self.redis_url
            .iter()
            .flat_map(|urls| urls.split(','))
            .map(str::trim)
            .filter(|url| !url.is_empty())
    }

    /// The defaults, with the secret given (the library entry point and tests start here).
    pub fn new(game_url: &str, im_url: &str, jwt_secret: &str) -> Self {
        Self {
            game_url: game_url.trim_end_matches('/').to_owned(),
            im_url: im_url.trim_end_matches('/').to_owned(),
            jwt_secret: jwt_secret.to_owned(),
            jwt_issuer: env_or("JWT_ISSUER", DEFAULT_ISSUER),
            jwt_audience: env_or("JWT_AUDIENCE", DEFAULT_AUDIENCE),
            concurrency: 16,
            duration: Duration::from_secs(10),
            pairings: None,
            warmup: Duration::from_secs(2),
            baseline: Duration::from_secs(3),
            redis_url: None,
            timeout: Duration::from_secs(10),
            json: None,
            streams_only: None,
            partners_scale: None,
            pending: None,
            game_pid: None,
            cpu_pids: Vec::new(),
            source_addrs: 8,
            http2: false,
        }
    }

    /// Parses the arguments after the program name; `Ok(None)` means help was asked for.
    pub fn parse(args: &[String]) -> anyhow::Result<Option<Self>> {
        let secret = std::env::var("JWT_SECRET").unwrap_or_default();
        let mut options = Self::new("http://127.0.0.1:8080", "http://127.0.0.1:8081", &secret);
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            if flag == "-h" || flag == "--help" {
                return Ok(None);
            }
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            match flag.as_str() {
                "--game-url" => options.game_url = value.trim_end_matches('/').to_owned(),
                "--im-url" => options.im_url = value.trim_end_matches('/').to_owned(),
                "--jwt-secret" => options.jwt_secret = value.clone(),
                "--jwt-issuer" => options.jwt_issuer = value.clone(),
                "--jwt-audience" => options.jwt_audience = value.clone(),
                "--concurrency" => options.concurrency = number(flag, value)?,
                "--duration" => options.duration = seconds(flag, value)?,
                "--pairings" => options.pairings = Some(number(flag, value)?),
                "--warmup" => options.warmup = seconds(flag, value)?,
                "--baseline" => options.baseline = seconds(flag, value)?,
                "--redis-url" => options.redis_url = Some(value.clone()),
                "--timeout" => options.timeout = seconds(flag, value)?,
                "--json" => options.json = Some(PathBuf::from(value)),
                "--streams-only" => options.streams_only = Some(number(flag, value)?),
                "--pending" => options.pending = Some(number(flag, value)?),
                "--partners-scale" => {
                    let sizes = value
                        .split(',')
                        .map(|n| number(flag, n.trim()))
                        .collect::<anyhow::Result<Vec<usize>>>()?;
                    options.partners_scale = Some(sizes);
                }
                "--game-pid" => options.game_pid = Some(number(flag, value)?),
                "--cpu-pid" => options
                    .cpu_pids
                    .push(crate::process_cpu::parse_named_pid(value)?),
                "--source-addrs" => options.source_addrs = number(flag, value)?,
                "--http" => {
                    options.http2 = match value.as_str() {
                        "1" | "1.1" => false,
                        "2" => true,
                        other => bail!("--http takes 1 or 2, not {other:?}"),
                    }
                }
                other => bail!("unknown option {other} (see --help)"),
            }
        }
        options.check()?;
        Ok(Some(options))
    }

    /// Refuses options no run can work with.
    pub fn check(&self) -> anyhow::Result<()> {
        if self.jwt_secret.is_empty() {
            bail!("no JWT secret: pass --jwt-secret or set JWT_SECRET (the services' secret)");
        }
        if self.concurrency == 0 {
            bail!("--concurrency must be at least 1");
        }
        if self.source_addrs == 0 {
            bail!("--source-addrs must be at least 1");
        }
        if self.pairings == Some(0) {
            bail!("--pairings must be at least 1");
        }
        if let Some(sizes) = &self.partners_scale
            && (sizes.is_empty()
                || sizes
                    .iter()
                    .any(|n| *n > crate::partners::MAX_CONVERSATIONS))
        {
            bail!(
                "--partners-scale takes sizes of at most {} (IM_MAX_OPEN_CONVERSATIONS)",
                crate::partners::MAX_CONVERSATIONS
            );
        }
        if self.pending == Some(0) {
            bail!("--pending must be at least 1");
        }
        if self.streams_only == Some(0) {
            bail!("--streams-only must be at least 1");
        }
        Ok(())
    }
}

fn number<T: std::str::FromStr>(flag: &str, value: &str) -> anyhow::Result<T> {
    value
        .parse()
        .ok()
        .with_context(|| format!("{flag} {value:?} is not a valid number"))
}

fn seconds(flag: &str, value: &str) -> anyhow::Result<Duration> {
    let secs: f64 = number(flag, value)?;
    Duration::try_from_secs_f64(secs)
        .ok()
        .with_context(|| format!("{flag} {value:?} is not a number of seconds"))
}

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name)
        .ok()
        .filter(|value| !value.trim().is_empty())
        .unwrap_or_else(|| default.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(raw: &[&str]) -> Vec<String> {
        raw.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_override_the_defaults() -> anyhow::Result<()> {
        let options = Options::parse(&args(&[
            "--jwt-secret",
            "s",
            "--concurrency",
            "4",
            "--duration",
            "2.5",
            "--game-url",
            "http://127.0.0.1:9000/",
            "--streams-only",
            "100",
            "--pairings",
            "40",
        ]))?
        .context("not help")?;
        assert_eq!(options.concurrency, 4);
        assert_eq!(options.duration, Duration::from_millis(2500));
        assert_eq!(options.game_url, "http://127.0.0.1:9000");
        assert_eq!(options.streams_only, Some(100));
        assert_eq!(options.pairings, Some(40));
        Ok(())
    }

    #[test]
    fn help_unknown_flags_bad_numbers_and_zero_concurrency() -> anyhow::Result<()> {
        assert!(Options::parse(&args(&["--help"]))?.is_none());
        assert!(Options::parse(&args(&["--jwt-secret", "s", "--bogus", "1"])).is_err());
        assert!(Options::parse(&args(&["--jwt-secret", "s", "--duration", "soon"])).is_err());
        assert!(Options::parse(&args(&["--jwt-secret", "s", "--duration", "-1"])).is_err());
        assert!(Options::parse(&args(&["--jwt-secret", "s", "--concurrency", "0"])).is_err());
        assert!(Options::parse(&args(&["--jwt-secret", "s", "--pairings", "0"])).is_err());
        assert!(Options::parse(&args(&["--jwt-secret", "s", "--partners-scale", "101"])).is_err());
        assert!(Options::parse(&args(&["--jwt-secret", "s", "--partners-scale", "1,x"])).is_err());
        let scaled = Options::parse(&args(&[
            "--jwt-secret",
            "s",
            "--partners-scale",
            "1, 10,100",
        ]))?
        .context("not help")?;
        assert_eq!(scaled.partners_scale, Some(vec![1, 10, 100]));
        assert!(Options::parse(&args(&["--jwt-secret", "s", "--concurrency"])).is_err());
        Ok(())
    }
}
