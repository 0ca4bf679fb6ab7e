//! CPU time of named processes (`--cpu-pid game=PID`), read from `/proc/PID/stat` before and after the measured phase: CPU milliseconds per pairing for each, the repeatable unit of what a pairing costs each service when instruction counters are not available.

use std::collections::BTreeMap;

use anyhow::Context;

/// Clock ticks per second of `/proc/PID/stat`'s times (`USER_HZ`: 100 on Linux, whatever
/// the kernel's own tick rate).
const TICKS_PER_SEC: f64 = 100.0;

/// CPU seconds (user + system, every thread) of each named process at one instant; names that
/// share a label are summed (a cluster's masters as `redis`).
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot(BTreeMap<String, f64>);

impl CpuSnapshot {
    pub fn take(pids: &[(String, u32)]) -> Self {
        let mut seconds: BTreeMap<String, Option<f64>> = BTreeMap::new();
        for (name, pid) in pids {
            let total = seconds.entry(name.clone()).or_insert(Some(0.0));
            match cpu_seconds(*pid) {
                Ok(cpu) => *total = total.map(|sum| sum + cpu),
                Err(err) => {
                    // A sum over fewer processes than the other snapshot's would mislead.
                    eprintln!("loadgen: CPU of {name} (pid {pid}): {err:#}");
                    *total = None;
                }
            }
        }
        Self(
            seconds
                .into_iter()
                .filter_map(|(name, sum)| Some((name, sum?)))
                .collect(),
        )
    }

    /// Milliseconds of CPU per completed pairing since `before`, by name.
    pub fn per_pairing(&self, before: &Self, completed: u64) -> BTreeMap<String, f64> {
        if completed == 0 {
            return BTreeMap::new();
        }
        self.0
            .iter()
            .filter_map(|(name, after)| {
                let before = before.0.get(name)?;
                Some((name.clone(), (after - before) * 1000.0 / completed as f64))
            })
            .collect()
    }
}

/// `utime + stime` of process `pid`, in seconds.
fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat"))?;
    parse_cpu_seconds(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))
}

fn parse_cpu_seconds(stat: &str) -> anyhow::Result<f64> {
    // The command name (field 2) may hold spaces and parentheses: count from its end.
    let after_name = stat.rsplit_once(')').context("no command name")?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // Fields 14 and 15 of the line (utime, stime) are the 12th and 13th after the name.
    let ticks = |index: usize| -> anyhow::Result<f64> {
        fields
            .get(index)
            .with_context(|| format!("field {} missing", index + 3))?
            .parse::<f64>()
            .with_context(|| format!("field {} is not a number", index + 3))
    };
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_SEC)
}

/// `NAME=PID` of `--cpu-pid`.
pub fn parse_named_pid(value: &str) -> anyhow::Result<(String, u32)> {
    let (name, pid) = value
        .split_once('=')
        .with_context(|| format!("--cpu-pid takes NAME=PID, not {value:?}"))?;
    let pid = pid
        .parse()
        .with_context(|| format!("--cpu-pid {value}: {pid:?} is not a process id"))?;
    Ok((name.to_owned(), pid))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_user_and_system_time_past_a_name_with_spaces() {
        let stat = "4242 (game (worker) 1) S 1 4242 4242 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 \
                    4 0 100 1000 10 18446744073709551615";
        assert_eq!(parse_cpu_seconds(stat).ok(), Some(3.0));
    }

    #[test]
    fn sums_processes_sharing_a_name_and_divides_by_pairings() {
        let before = CpuSnapshot(BTreeMap::from([("redis".to_owned(), 1.0)]));
        let after = CpuSnapshot(BTreeMap::from([("redis".to_owned(), 3.0)]));
        let per = after.per_pairing(&before, 1000);
        assert_eq!(per.get("redis").copied(), Some(2.0));
        assert!(after.per_pairing(&before, 0).is_empty());
    }

    #[test]
    fn parses_name_equals_pid() {
        assert_eq!(parse_named_pid("im=77").ok(), Some(("im".to_owned(), 77)));
        assert!(parse_named_pid("im").is_err());
        assert!(parse_named_pid("im=x").is_err());
    }
}
