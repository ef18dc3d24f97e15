//! The report as people read it (a table) and as programs read it (JSON).

use super::Report;
use std::fmt::Write;

/// One row per team and project, then the objects behind it, then the totals and sources.
pub fn table(r: &Report) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<20} {:<16} {:>11} {:>12} {:>5} {:>5} {:>5} {:>11}",
        "TEAM", "PROJECT", "USD/HOUR", "USD/MONTH", "GPUS", "REQ", "IDLE", "IDLE USD/H"
    );
    for t in &r.teams {
        let _ = writeln!(
            out,
            "{:<20} {:<16} {:>11.4} {:>12.2} {:>5} {:>5} {:>5} {:>11.4}",
            t.team,
            t.project.as_deref().unwrap_or("-"),
            t.hourly_usd,
            t.monthly_usd,
            t.gpus_provisioned,
            t.gpus_requested,
            t.idle_gpus,
            t.idle_gpu_hourly_usd
        );
        for i in &t.resources {
            let gpus = match (i.gpus_provisioned, i.gpus_requested) {
                (0, 0) => String::new(),
                (p, 0) => format!("  {p} GPU"),
                (_, q) => format!("  requests {q} GPU"),
            };
            let _ = writeln!(
                out,
                "    {:<24} {}/{}  {}  {:.4}/h{}",
                i.kind, i.location, i.name, i.resource, i.hourly_usd, gpus
            );
        }
    }
    let _ = writeln!(
        out,
        "total {:.4} USD/hour, idle GPUs {:.4} USD/hour",
        r.total_hourly_usd, r.total_idle_gpu_hourly_usd
    );
    for s in &r.sources {
        let _ = writeln!(out, "read: {s}");
    }
    out
}

pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|_| "{}".into())
}
