//! Smoke test: loadgen against the real binaries on a private redis-server completes pairings
//! (and delivers stream-mode events) with zero errors. No timing assertions.

use std::{
    fs::File,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail, ensure};
use e2e::{RedisServer, free_port, unique_prefix};
use loadgen::Options;

const SECRET: &str = "loadgen-smoke-secret-at-least-32-bytes";
/// Debug binaries start in well under a second; the margin covers a loaded machine.
const STARTUP_LIMIT: Duration = Duration::from_secs(30);

/// `target/debug/<name>` (or under `$CARGO_TARGET_DIR`), built by `cargo build --bins`.
fn binary(name: &str) -> anyhow::Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map_or_else(|| root.join("target"), |dir| root.join(dir));
    let path = target.join("debug").join(name);
    ensure!(
        path.is_file(),
        "{} does not exist: run `cargo build --bins` first (scripts/test.sh does)",
        path.display()
    );
    Ok(path)
}

/// A service binary as a child process, its output in a log file, killed on drop.
struct Service {
    child: Child,
    url: String,
    log: PathBuf,
}

impl Service {
    fn start(name: &str, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let port = free_port()?;
        let log = std::env::temp_dir().join(format!("{}.log", unique_prefix(name)));
        let out = File::create(&log).context("creating the service log")?;
        let child = Command::new(binary(name)?)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "warn")
            .env("NO_COLOR", "1")
            .env("BIND_ADDR", format!("127.0.0.1:{port}"))
            .env("JWT_SECRET", SECRET)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        Ok(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
        })
    }

    async fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let start = Instant::now();
        while start.elapsed() < STARTUP_LIMIT {
            if let Some(status) = self.child.try_wait()? {
                bail!("exited during start-up ({status}):\n{}", self.log_text());
            }
            let probe = client
                .get(format!("{}/healthz", self.url))
                .timeout(Duration::from_millis(500))
                .send()
                .await;
            if probe.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        bail!(
            "no healthy answer in {STARTUP_LIMIT:?}:\n{}",
            self.log_text()
        )
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Both services on one private Redis, with their default rate limits.
struct World {
    redis: RedisServer,
    im: Service,
    game: Service,
}

impl World {
    async fn start() -> anyhow::Result<Self> {
        let redis = RedisServer::start()?;
        let mut im = Service::start(
            "im-service",
            &[
                ("REDIS_URL", redis.url()),
                ("REDIS_KEY_PREFIX", unique_prefix("im")),
            ],
        )?;
        im.wait_healthy().await.context("im-service")?;
        let mut game = Service::start(
            "game-service",
            &[
                ("REDIS_URL", redis.url()),
                ("REDIS_KEY_PREFIX", unique_prefix("game")),
                ("IM_URL", im.url.clone()),
                (
                    "JOIN_TOKEN_KEY_FILE",
                    e2e::join_token_key()?.display().to_string(),
                ),
            ],
        )?;
        game.wait_healthy().await.context("game-service")?;
        Ok(Self { redis, im, game })
    }

    fn options(&self) -> Options {
        let mut options = Options::new(&self.game.url, &self.im.url, SECRET);
        options.concurrency = 2;
        options.warmup = Duration::ZERO;
        options.duration = Duration::from_secs(3);
        options.baseline = Duration::from_millis(500);
        options
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairings_complete_without_errors_and_the_bound_is_measured() -> anyhow::Result<()> {
    let world = World::start().await?;
    let mut options = world.options();
    options.redis_url = Some(world.redis.url());

    let report = loadgen::pairings::run(&options).await?;

    let summary = loadgen::report::pairings_summary(&report);
    ensure!(
        report.errors.total == 0,
        "errors:\n{summary}\n{:#?}",
        report.errors
    );
    ensure!(
        report.cleanup_errors.total == 0,
        "leave errors:\n{summary}\n{:#?}",
        report.cleanup_errors
    );
    ensure!(report.completed >= 3, "too few pairings:\n{summary}");
    ensure!(
        (report.http_requests_per_pairing - 13.0).abs() < f64::EPSILON,
        "{summary}"
    );
    ensure!(
        report.latency.event_delivery.count == report.completed,
        "{summary}"
    );
    ensure!(
        report.latency.connect.count == 2 * report.completed,
        "{summary}"
    );
    ensure!(report.bound.healthz.count > 0, "{summary}");
    ensure!(report.bound.healthz.errors.total == 0, "{summary}");
    let ping = report.bound.redis_ping.as_ref().context("no Redis PING")?;
    ensure!(ping.count > 0 && ping.errors.total == 0, "{summary}");
    ensure!(report.efficiency.is_some_and(|e| e > 0.0), "{summary}");
    // The store's cost is counted from both services' metrics and from Redis.
    let cost = &report.store_cost;
    for (what, value) in [
        ("game round trips", cost.game_round_trips),
        ("IM round trips", cost.im_round_trips),
        ("Redis commands", cost.redis_commands),
    ] {
        ensure!(
            value.is_some_and(|v| v >= 1.0),
            "{what}: {cost:?}\n{summary}"
        );
    }
    // And by the route that sent them: a connect's own, and the partners call it makes.
    ensure!(
        cost.game_round_trips_by_route
            .get("POST /v1/connect")
            .is_some_and(|n| *n >= 1.0),
        "{cost:?}"
    );
    ensure!(
        cost.im_round_trips_by_route
            .get("GET /v1/users/{user_id}/partners")
            .is_some_and(|n| *n >= 1.0),
        "{cost:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_number_of_pairings_exactly_that_many_are_played() -> anyhow::Result<()> {
    let world = World::start().await?;
    let mut options = world.options();
    options.concurrency = 3;
    options.pairings = Some(7);
    options.baseline = Duration::from_millis(100);

    let report = loadgen::pairings::run(&options).await?;

    let summary = loadgen::report::pairings_summary(&report);
    ensure!(report.errors.total == 0, "{summary}\n{:#?}", report.errors);
    ensure!(report.completed == 7, "{summary}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn streams_mode_delivers_one_event_per_held_stream() -> anyhow::Result<()> {
    let world = World::start().await?;
    let mut options = world.options();
    options.concurrency = 8;
    options.source_addrs = 2;
    options.game_pid = Some(world.game.child.id());

    let report = loadgen::streams::run(&options, 40).await?;

    let summary = loadgen::report::streams_summary(&report);
    ensure!(
        report.errors.total == 0,
        "errors:\n{summary}\n{:#?}",
        report.errors
    );
    ensure!(report.streams_opened == 40, "{summary}");
    ensure!(report.delivered == 40, "{summary}");
    ensure!(report.cleanup_errors.total == 0, "{summary}");
    let rss = report.game_rss.as_ref().context("no RSS")?;
    ensure!(rss.streams_held_kib.is_some_and(|kib| kib > 0), "{summary}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http2_the_streams_share_a_few_connections_and_each_gets_its_event()
-> anyhow::Result<()> {
    const STREAMS: usize = 60;
    let world = World::start().await?;
    let mut options = world.options();
    options.concurrency = 8;
    options.source_addrs = 2;
    options.http2 = true;
    options.game_pid = Some(world.game.child.id());

    let report = loadgen::streams::run(&options, STREAMS).await?;

    let summary = loadgen::report::streams_summary(&report);
    ensure!(
        report.errors.total == 0,
        "errors:\n{summary}\n{:#?}",
        report.errors
    );
    ensure!(report.streams_opened == STREAMS as u64, "{summary}");
    ensure!(report.delivered == STREAMS as u64, "{summary}");
    ensure!(report.cleanup_errors.total == 0, "{summary}");
    // HTTP/1.1 needs a socket per held stream; HTTP/2 multiplexes them.
    let fds = report
        .game_rss
        .as_ref()
        .and_then(|rss| rss.open_fds_held)
        .context("no fd count")?;
    ensure!(
        fds < STREAMS as u64 / 2,
        "{fds} open fds for {STREAMS} streams:\n{summary}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_partners_scale_mode_finds_every_partner_and_counts_each_calls_cost()
-> anyhow::Result<()> {
    let world = World::start().await?;
    let mut options = world.options();
    options.redis_url = Some(world.redis.url());
    options.partners_scale = Some(vec![1, 3]);
    options.pairings = Some(5);

    let report = loadgen::run(&options).await?;

    let summary = report.summary();
    let loadgen::Report::Partners(report) = report else {
        bail!("not a partners report:\n{summary}");
    };
    ensure!(report.rows.len() == 2, "{summary}");
    for (row, size) in report.rows.iter().zip([1, 3]) {
        ensure!(
            row.conversations == size && row.partners == size,
            "{summary}"
        );
        ensure!(row.calls == 5 && row.latency.count == 5, "{summary}");
        ensure!(
            row.store_cost
                .im_round_trips_by_route
                .get("GET /v1/users/{user_id}/partners")
                .is_some_and(|n| *n >= 1.0),
            "{summary}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pending_mode_leaves_each_lobby_waiting_and_measures_its_memory() -> anyhow::Result<()>
{
    let world = World::start().await?;
    let mut options = world.options();
    options.redis_url = Some(world.redis.url());
    options.pending = Some(4);

    let report = loadgen::run(&options).await?;

    let summary = report.summary();
    let loadgen::Report::Pending(report) = report else {
        bail!("not a pending report:\n{summary}");
    };
    ensure!(report.opened == 4 && report.errors.total == 0, "{summary}");
    ensure!(
        report.redis_memory_bytes_per_lobby.is_some_and(|b| b > 0.0),
        "{summary}"
    );
    Ok(())
}
