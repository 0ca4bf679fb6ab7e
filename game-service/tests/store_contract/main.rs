//! The store contract: every test runs against the in-memory store, against a
//! private `redis-server`, and against that server committing slot by slot as
//! on a Redis Cluster, and against a real 3-master Redis Cluster; all must
//! behave the same.

#![expect(clippy::expect_used, reason = "tests")]

mod activity;
mod chat;
mod flows;
mod helpers;
mod if_open;
mod intent_sweep;
mod lifecycle;
mod modes;
mod presence;
mod primitives;
mod recovery;
mod retention;

/// Declares `<test>::memory`, `::redis`, `::redis_two_phase` and
/// `::redis_cluster` for each `async fn <test>(Harness)`; `with OPTIONS;`
/// first starts each harness with those [`helpers::Options`].
#[macro_export]
macro_rules! on_both_stores {
    (with $options:expr; $($name:ident),* $(,)?) => {
        $(
            mod $name {
                use $crate::helpers::{Backend, Harness};

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn memory() -> anyhow::Result<()> {
                    super::$name(Harness::start_with(Backend::Memory, $options).await?).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis() -> anyhow::Result<()> {
                    super::$name(Harness::start_with(Backend::Redis, $options).await?).await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis_two_phase() -> anyhow::Result<()> {
                    super::$name(Harness::start_with(Backend::RedisTwoPhase, $options).await?)
                        .await
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn redis_cluster() -> anyhow::Result<()> {
                    super::$name(Harness::start_with(Backend::RedisCluster, $options).await?)
                        .await
                }
            }
        )*
    };
    ($($name:ident),* $(,)?) => {
        $crate::on_both_stores!(with $crate::helpers::Options::default(); $($name),*);
    };
}
