//! What a failover test does to a replicated Redis, the same on a Redis Cluster with replicas and on a primary behind Sentinel: freeze, cut off, kill and restart a node, and wait for the failover and for a node's role.

use std::time::Duration;

use crate::{ReplicatedCluster, SentinelGroup, replicated::Role};

pub trait Failing {
    /// SIGSTOP node `node`: frozen with its data.
    fn pause(&mut self, node: usize) -> anyhow::Result<()>;
    /// SIGCONT node `node`.
    fn resume(&mut self, node: usize) -> anyhow::Result<()>;
    /// Drops master `node`'s replication links.
    fn cut_replicas(&self, node: usize) -> anyhow::Result<()>;
    /// How far node `node`'s replication stream has come.
    fn repl_offset(&self, node: usize) -> anyhow::Result<u64>;
    /// SIGKILL node `node`.
    fn kill(&mut self, node: usize) -> anyhow::Result<()>;
    /// Starts node `node` again where it was.
    fn restart(&mut self, node: usize) -> anyhow::Result<()>;
    /// Until a replica of `lost` has taken over from it.
    fn wait_for_failover(&self, lost: usize, timeout: Duration) -> anyhow::Result<()>;
    /// Until node `node` says it is `role` (a replica: with its master link up).
    fn wait_for_role(&self, node: usize, role: Role, timeout: Duration) -> anyhow::Result<()>;
}

/// Both harnesses have these as inherent methods of the same names.
macro_rules! failing {
    ($harness:ty) => {
        impl Failing for $harness {
            fn pause(&mut self, node: usize) -> anyhow::Result<()> {
                <$harness>::pause(self, node)
            }
            fn resume(&mut self, node: usize) -> anyhow::Result<()> {
                <$harness>::resume(self, node)
            }
            fn cut_replicas(&self, node: usize) -> anyhow::Result<()> {
                <$harness>::cut_replicas(self, node)
            }
            fn repl_offset(&self, node: usize) -> anyhow::Result<u64> {
                <$harness>::repl_offset(self, node)
            }
            fn kill(&mut self, node: usize) -> anyhow::Result<()> {
                <$harness>::kill(self, node)
            }
            fn restart(&mut self, node: usize) -> anyhow::Result<()> {
                <$harness>::restart(self, node)
            }
            fn wait_for_failover(&self, lost: usize, timeout: Duration) -> anyhow::Result<()> {
                <$harness>::wait_for_failover(self, lost, timeout).map(|_| ())
            }
            fn wait_for_role(
                &self,
                node: usize,
                role: Role,
                timeout: Duration,
            ) -> anyhow::Result<()> {
                <$harness>::wait_for_role(self, node, role, timeout)
            }
        }
    };
}

failing!(ReplicatedCluster);
failing!(SentinelGroup);
