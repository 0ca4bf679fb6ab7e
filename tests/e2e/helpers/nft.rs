//! nftables tables of a test's own, in the host's network or in a namespace's: made from a ruleset, read back with their counters, deleted on drop (failure or not).
//!
//! They need root (CAP_NET_ADMIN) and `nft` (Debian's `nftables`, which `scripts/test.sh`
//! installs); without them the tests that use them fail, they never skip.

use std::process::{Command, Stdio};

use anyhow::{Context, bail};

/// One `inet` table, deleted on drop.
pub struct NftTable {
    name: String,
    /// The network namespace it lives in (`ip netns exec`); `None`: the host's.
    netns: Option<String>,
}

impl NftTable {
    /// Creates table `inet <name>` with `body` (its chains and rules, nft syntax) in
    /// `netns`'s network (or the host's). `purpose` says what the table is for, in the error
    /// that nft refused it.
    pub fn create(
        name: &str,
        netns: Option<&str>,
        body: &str,
        purpose: &str,
    ) -> anyhow::Result<Self> {
        let ruleset = format!("table inet {name} {{\n{body}\n}}\n");
        let (ok, output) = nft(netns, &["-f", "-"], Some(&ruleset))?;
        if !ok {
            bail!(
                "nft refused the table that {purpose} (this test needs root, or CAP_NET_ADMIN, \
                 and it never skips): {output}\n{ruleset}"
            );
        }
        Ok(Self {
            name: name.to_owned(),
            netns: netns.map(str::to_owned),
        })
    }

    /// Appends `rule` (nft syntax) to chain `chain` of this table.
    pub fn add_rule(&self, chain: &str, rule: &str) -> anyhow::Result<()> {
        let mut args = vec!["add", "rule", "inet", &self.name, chain];
        args.extend(rule.split_whitespace());
        let (ok, output) = nft(self.netns.as_deref(), &args, None)?;
        if !ok {
            bail!("nft refused `{rule}` in {}/{chain}: {output}", self.name);
        }
        Ok(())
    }

    /// The packets every counter of the table counted, added up.
    pub fn packets(&self) -> anyhow::Result<u64> {
        let listing = self.listing()?;
        let mut total = 0;
        let mut words = listing.split_whitespace();
        while let Some(word) = words.next() {
            if word == "packets" {
                let count = words.next().context("a counter without a count")?;
                total += count
                    .parse::<u64>()
                    .with_context(|| format!("a counter of {count:?} packets"))?;
            }
        }
        Ok(total)
    }

    /// The table with its counters.
    pub fn listing(&self) -> anyhow::Result<String> {
        let (ok, output) = nft(
            self.netns.as_deref(),
            &["list", "table", "inet", &self.name],
            None,
        )?;
        if !ok {
            bail!("nft could not list table {}: {output}", self.name);
        }
        Ok(output)
    }

    /// The listing, or why there is none: for a failure message.
    pub fn describe(&self) -> String {
        self.listing().unwrap_or_else(|err| format!("{err:#}"))
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        match nft(
            self.netns.as_deref(),
            &["delete", "table", "inet", &self.name],
            None,
        ) {
            Ok((true, _)) => {}
            Ok((false, output)) => eprintln!("could not delete nft table {}: {output}", self.name),
            Err(err) => eprintln!("could not delete nft table {}: {err:#}", self.name),
        }
    }
}

/// Runs `nft` with `args` (and `input` on its stdin), in `netns`'s network when given: whether
/// it succeeded, and what it printed.
fn nft(netns: Option<&str>, args: &[&str], input: Option<&str>) -> anyhow::Result<(bool, String)> {
    let mut command = match netns {
        Some(netns) => {
            let mut command = Command::new("ip");
            command.args(["netns", "exec", netns, "nft"]);
            command
        }
        None => Command::new("nft"),
    };
    let mut child = command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .context(
            "running `nft`: this test needs it (Debian: apt-get install nftables; \
             scripts/test.sh installs it) and never skips",
        )?;
    if let Some(input) = input {
        use std::io::Write;
        child
            .stdin
            .take()
            .context("nft's stdin")?
            .write_all(input.as_bytes())?;
    }
    drop(child.stdin.take());
    let output = child.wait_with_output().context("waiting for nft")?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok((output.status.success(), text))
}
