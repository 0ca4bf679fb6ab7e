//! The short human summary of a report (the JSON is the reports' `Serialize`).

use std::fmt::Write as _;

use crate::{pairings::PairingReport, stats::LatencySummary, streams::StreamsReport};

/// A few lines for the terminal.
pub fn pairings_summary(report: &PairingReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "loadgen run {}: {} pairings in {:.1} s at concurrency {} → {:.1} pairings/s ({:.0} HTTP requests each)",
        report.run_id,
        report.completed,
        report.elapsed_secs,
        report.concurrency,
        report.pairings_per_sec,
        report.http_requests_per_pairing,
    );
    latency_table(
        &mut out,
        &[
            ("connect", &report.latency.connect),
            ("accept", &report.latency.accept),
            ("event delivery", &report.latency.event_delivery),
            ("  host connect", &report.latency.by_role.host_connect),
            ("  host accept", &report.latency.by_role.host_accept),
            ("  inv. connect", &report.latency.by_role.invitee_connect),
            ("  inv. accept", &report.latency.by_role.invitee_accept),
        ],
    );
    let _ = writeln!(out, "errors: {}", report.errors.brief());
    if report.cleanup_errors.total > 0 {
        let _ = writeln!(out, "leave errors: {}", report.cleanup_errors.brief());
    }
    let healthz = &report.bound.healthz;
    let _ = write!(
        out,
        "bound: GET /healthz {:.0}/s (p50 {:.3} ms, errors {})",
        healthz.per_sec,
        healthz.latency.p50_ms,
        healthz.errors.brief()
    );
    if let Some(ping) = &report.bound.redis_ping {
        let _ = write!(
            out,
            ", Redis PING {:.0}/s (p50 {:.3} ms)",
            ping.per_sec, ping.latency.p50_ms
        );
    }
    let _ = writeln!(out);
    let cost = &report.store_cost;
    if cost.game_round_trips.is_some() || cost.redis_commands.is_some() {
        let show = |value: Option<f64>| value.map_or("-".to_owned(), |v| format!("{v:.1}"));
        let _ = writeln!(
            out,
            "per pairing: Redis round trips game {} + IM {}; Redis commands {}, Redis CPU {} ms, \
             Redis memory {} bytes",
            show(cost.game_round_trips),
            show(cost.im_round_trips),
            show(cost.redis_commands),
            cost.redis_cpu_ms
                .map_or("-".to_owned(), |v| format!("{v:.3}")),
            cost.redis_memory_bytes
                .map_or("-".to_owned(), |v| format!("{v:.0}")),
        );
    }
    for (service, routes) in [
        ("game", &cost.game_round_trips_by_route),
        ("IM", &cost.im_round_trips_by_route),
    ] {
        if !routes.is_empty() {
            let _ = writeln!(
                out,
                "{service} round trips per pairing by route: {}",
                by_route(routes)
            );
        }
    }
    if !report.cpu_ms_per_pairing.is_empty() {
        let each: Vec<String> = report
            .cpu_ms_per_pairing
            .iter()
            .map(|(name, ms)| format!("{name} {ms:.3} ms"))
            .collect();
        let _ = writeln!(out, "CPU per pairing: {}", each.join(", "));
    }
    if let Some(efficiency) = report.efficiency {
        let _ = writeln!(
            out,
            "efficiency: {:.1} pairings/s × {:.0} requests ÷ {:.0} healthz/s = {:.3}",
            report.pairings_per_sec, report.http_requests_per_pairing, healthz.per_sec, efficiency
        );
    }
    out
}

/// `route n, …`, the costliest first.
fn by_route(routes: &std::collections::BTreeMap<String, f64>) -> String {
    let mut each: Vec<(&String, &f64)> = routes.iter().collect();
    each.sort_by(|a, b| b.1.total_cmp(a.1).then_with(|| a.0.cmp(b.0)));
    each.iter()
        .map(|(route, n)| format!("{route} {n:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Two lines.
pub fn pending_summary(report: &crate::pending::PendingReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "loadgen run {}: {} of {} lobbies left waiting on a pending invitation in {:.1} s \
         ({:.0}/s), errors {}",
        report.run_id,
        report.opened,
        report.requested,
        report.open_secs,
        report.opened_per_sec,
        report.errors.brief()
    );
    let _ = writeln!(
        out,
        "Redis memory per waiting lobby: {} bytes",
        report
            .redis_memory_bytes_per_lobby
            .map_or("-".to_owned(), |b| format!("{b:.0}"))
    );
    out
}

/// One line per size.
pub fn partners_summary(report: &crate::partners::PartnersReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "loadgen run {}: GET /v1/users/{{id}}/partners, one call at a time",
        report.run_id
    );
    for row in &report.rows {
        let cost = &row.store_cost;
        let show = |value: Option<f64>, digits: usize| {
            value.map_or("-".to_owned(), |v| format!("{v:.digits$}"))
        };
        let cpu: Vec<String> = row
            .cpu_ms_per_call
            .iter()
            .map(|(name, ms)| format!("{name} {:.0} µs", ms * 1000.0))
            .collect();
        let _ = writeln!(
            out,
            "{} conversations → {} partners: p50 {:.3} ms, p99 {:.3} ms over {} calls; per call: \
             IM round trips {}, Redis commands {}, Redis CPU {} µs; CPU {}",
            row.conversations,
            row.partners,
            row.latency.p50_ms,
            row.latency.p99_ms,
            row.calls,
            show(cost.im_round_trips, 1),
            show(cost.redis_commands, 1),
            show(cost.redis_cpu_ms.map(|ms| ms * 1000.0), 0),
            cpu.join(", "),
        );
    }
    out
}

/// A few lines for the terminal.
pub fn streams_summary(report: &StreamsReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "loadgen run {}: {} of {} event streams held (opened in {:.1} s, {:.0}/s, {} source addresses, fd limit {})",
        report.run_id,
        report.streams_opened,
        report.streams_requested,
        report.open_secs,
        report.opened_per_sec,
        report.source_addrs.len().max(1),
        report
            .nofile_limit
            .map_or_else(|| "unknown".into(), |n| n.to_string()),
    );
    let _ = writeln!(out, "events delivered: {}", report.delivered);
    latency_table(
        &mut out,
        &[
            ("connect", &report.connect),
            ("event delivery", &report.event_delivery),
        ],
    );
    let _ = writeln!(out, "errors: {}", report.errors.brief());
    if report.cleanup_errors.total > 0 {
        let _ = writeln!(out, "leave errors: {}", report.cleanup_errors.brief());
    }
    if let Some(rss) = &report.game_rss {
        let mib = |kib: Option<u64>| {
            kib.map_or_else(
                || "?".into(),
                |kib| format!("{:.1} MiB", kib as f64 / 1024.0),
            )
        };
        let _ = writeln!(
            out,
            "game-service (pid {}) RSS: {} before, {} with the streams held, {} after the events ({} KiB per stream); {} open fds while held",
            rss.pid,
            mib(rss.before_kib),
            mib(rss.streams_held_kib),
            mib(rss.after_events_kib),
            rss.per_stream_kib
                .map_or_else(|| "?".into(), |kib| format!("{kib:.1}")),
            rss.open_fds_held
                .map_or_else(|| "?".into(), |fds| fds.to_string()),
        );
    }
    out
}

fn latency_table(out: &mut String, rows: &[(&str, &LatencySummary)]) {
    let _ = writeln!(
        out,
        "{:<16} {:>9} {:>9} {:>9} {:>9} {:>8}",
        "latency (ms)", "p50", "p90", "p99", "max", "count"
    );
    for (name, s) in rows {
        let _ = writeln!(
            out,
            "  {:<14} {:>9.3} {:>9.3} {:>9.3} {:>9.3} {:>8}",
            name, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms, s.count
        );
    }
}
