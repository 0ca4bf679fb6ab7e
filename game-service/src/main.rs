//! `game-service` binary: read settings, start telemetry, serve until SIGTERM.

/// mimalloc: glibc malloc was ~15 % of the CPU profile under load (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use game_service::{configuration::Settings, startup::Application};

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    service_kit::telemetry::init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "game-service stopped");
            eprintln!("game-service: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let app = Application::build(settings).await?;
    tracing::info!(
        port = app.port(),
        metrics_port = app.metrics_port(),
        "game-service listening"
    );
    app.run_until_stopped().await?;
    Ok(())
}
