//! A network namespace of the test's own, joined to the host by a veth pair: a process run in it (`ip netns exec`) reaches the host only over the veth, where nftables can cut it off; deleted on drop, failure or not.
//!
//! It needs root (CAP_NET_ADMIN and CAP_SYS_ADMIN) and iproute2's `ip`; without them the tests
//! that use it fail, they never skip.

use std::{
    process::Command,
    sync::atomic::{AtomicU32, Ordering},
};

use anyhow::{Context, bail};

/// The namespace and its veth pair (host end `<ns>h`, namespace end `<ns>n`), with a /30 of
/// `10.213.0.0/16` between them.
pub struct Netns {
    name: String,
    host_link: String,
    host_ip: String,
    ns_ip: String,
}

impl Netns {
    /// Creates the namespace, the veth pair and their addresses, both ends (and the
    /// namespace's loopback) up.
    pub fn create() -> anyhow::Result<Self> {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let pid = std::process::id();
        // Interface names have at most 15 bytes.
        let name = format!("e2e{}x{n}", pid % 1_000_000);
        let block = (pid.wrapping_mul(7).wrapping_add(n)) % 16_384;
        let (third, fourth) = (block / 64, (block % 64) * 4);
        ip(&["netns", "add", &name]).context(
            "creating a network namespace: this test needs root (CAP_NET_ADMIN, \
             CAP_SYS_ADMIN) and iproute2, and it never skips",
        )?;
        let netns = Self {
            host_link: format!("{name}h"),
            host_ip: format!("10.213.{third}.{}", fourth + 1),
            ns_ip: format!("10.213.{third}.{}", fourth + 2),
            name,
        };
        // From here on, a failure drops `netns`, which deletes what was made.
        let ns_link = format!("{}n", netns.name);
        ip(&[
            "link",
            "add",
            &netns.host_link,
            "type",
            "veth",
            "peer",
            "name",
            &ns_link,
        ])?;
        ip(&["link", "set", &ns_link, "netns", &netns.name])?;
        ip(&[
            "addr",
            "add",
            &format!("{}/30", netns.host_ip),
            "dev",
            &netns.host_link,
        ])?;
        ip(&["link", "set", &netns.host_link, "up"])?;
        let inside = |args: &[&str]| {
            let mut all = vec!["netns", "exec", &netns.name, "ip"];
            all.extend_from_slice(args);
            ip(&all)
        };
        inside(&[
            "addr",
            "add",
            &format!("{}/30", netns.ns_ip),
            "dev",
            &ns_link,
        ])?;
        inside(&["link", "set", &ns_link, "up"])?;
        inside(&["link", "set", "lo", "up"])?;
        Ok(netns)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The host end's address: what the namespace reaches the host's servers on.
    pub fn host_ip(&self) -> &str {
        &self.host_ip
    }

    /// The namespace end's address: what the host reaches a server in the namespace on.
    pub fn ns_ip(&self) -> &str {
        &self.ns_ip
    }

    /// The command prefix that runs a program in the namespace.
    pub fn exec_prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.name]
            .map(str::to_owned)
            .to_vec()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        // Deleting the namespace deletes its end of the pair, and with it the pair, and every
        // nftables table inside; the host end is deleted too in case the pair was never moved.
        if let Err(err) = ip(&["netns", "del", &self.name]) {
            eprintln!("could not delete network namespace {}: {err:#}", self.name);
        }
        let leftover = Command::new("ip")
            .args(["link", "show", &self.host_link])
            .output()
            .is_ok_and(|output| output.status.success());
        if leftover && let Err(err) = ip(&["link", "del", &self.host_link]) {
            eprintln!("could not delete veth {}: {err:#}", self.host_link);
        }
    }
}

/// Runs `ip args…`, failing with what it printed.
fn ip(args: &[&str]) -> anyhow::Result<()> {
    let output = Command::new("ip")
        .args(args)
        .output()
        .context("running `ip` (iproute2): this test needs it and never skips")?;
    if !output.status.success() {
        bail!(
            "ip {} failed ({}): {}{}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}
