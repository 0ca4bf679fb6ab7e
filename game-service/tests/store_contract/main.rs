//! The store contract: every test runs against the in-memory store, against a
//! private `redis-server`, and against that server committing slot by slot as
//! on a Redis Cluster, and against a real 3-master Redis Cluster; all must
//! behave the same.

#![expect(clippy::expect_used, reason = "tests")]

mod flows;
mod helpers;
mod primitives;
mod recovery;

/// Declares `<test>::memory` and `<test>::redis` for each `async fn <test>(Harness)`.
#[macro_export]
macro_rules! on_both_stores {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use $crate::helpers::{Backend, Harness};

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() -> anyhow::Result<()> {
                    super::$name(Harness::start(Backend::Memory).await?).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() -> anyhow::Result<()> {
                    super::$name(Harness::start(Backend::Redis).await?).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis_two_phase() -> anyhow::Result<()> {
                    super::$name(Harness::start(Backend::RedisTwoPhase).await?).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis_cluster() -> anyhow::Result<()> {
                    super::$name(Harness::start(Backend::RedisCluster).await?).await
                }
            }
        )*
    };
}
