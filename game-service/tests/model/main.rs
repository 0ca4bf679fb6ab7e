//! Model-based test: random command sequences for 3-5 players (expiry, game servers' ends and heartbeats, abandonment, `GAME_MODES` with `full` lobbies, lobbies launched from a chat, and IM presence going `offline` through the feed, delivered twice, included) played on the store and on a reference model of the contract's state machine, which must agree step by step.
//!
//! `PROPTEST_CASES` overrides the case counts below. A failure prints the
//! shrunk sequence and a trace of both sides' replies.

mod check;
mod commands;
#[path = "../store_contract/helpers.rs"]
#[allow(
    dead_code,
    reason = "shared with the store contract suite; not every helper is used here"
)]
mod helpers;
mod model;

use anyhow::bail;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use crate::helpers::Backend;

/// Cases per backend when `PROPTEST_CASES` is unset: keeps the binary well under a minute on 2 cores.
const MEMORY_CASES: u32 = 256;
const REDIS_CASES: u32 = 96;

fn agrees_with_the_model(backend: Backend, cases: u32) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(cases);
    let mut runner = TestRunner::new(Config {
        cases,
        // Regressions are reported, not written into the source tree.
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&commands::scenario(), |scenario| {
        runtime
            .block_on(check::run(backend, &scenario))
            .map_err(TestCaseError::fail)
    });
    match outcome {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, scenario)) => bail!(
            "{backend:?} store and model disagree; minimal failing case:\n{scenario:?}\n{reason}"
        ),
        Err(TestError::Abort(reason)) => bail!("{backend:?}: aborted: {reason}"),
    }
}

#[test]
fn the_memory_store_behaves_like_the_model_of_the_contract() -> anyhow::Result<()> {
    agrees_with_the_model(Backend::Memory, MEMORY_CASES)
}

#[test]
fn the_redis_store_behaves_like_the_model_of_the_contract() -> anyhow::Result<()> {
    agrees_with_the_model(Backend::Redis, REDIS_CASES)
}
