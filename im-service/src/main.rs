//! The `im-service` binary: settings from the environment, telemetry, serve until SIGTERM.

/// mimalloc: glibc malloc was ~15 % of the CPU profile under load (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::{process::ExitCode, sync::Arc};

use im_service::{
    configuration::{GameSettings, Limits, Settings},
    domain::SystemClock,
    startup::Application,
};

#[actix_web::main]
async fn main() -> ExitCode {
    service_kit::telemetry::init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = format!("{err:#}"), "im-service stopped");
            eprintln!("im-service: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let limits = Limits::from_env()?;
    let game = GameSettings::from_env()?;
    let app = Application::build_with_game(settings, limits, game, Arc::new(SystemClock)).await?;
    app.run_until_stopped().await?;
    Ok(())
}
