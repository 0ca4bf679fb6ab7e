//! `loadgen`: parses the options, runs, prints the summary and writes the JSON report.

/// mimalloc: glibc malloc was ~15 % of the CPU profile under load (docs/PERFORMANCE.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::Write as _;

use anyhow::Context;
use loadgen::{Options, options::USAGE};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(options) = Options::parse(&args)? else {
        print!("{USAGE}");
        return Ok(());
    };
    let report = loadgen::run(&options).await?;
    let json = serde_json::to_string_pretty(&report).context("serialising the report")?;
    match options.json.as_deref() {
        Some(path) if path.as_os_str() == "-" => {
            eprint!("{}", report.summary());
            println!("{json}");
        }
        Some(path) => {
            print!("{}", report.summary());
            std::fs::write(path, format!("{json}\n"))
                .with_context(|| format!("writing {}", path.display()))?;
        }
        None => print!("{}", report.summary()),
    }
    std::io::stdout().flush().context("writing to stdout")?;
    Ok(())
}
