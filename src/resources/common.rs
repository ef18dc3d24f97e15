//! Plan helpers every paved resource shares: team/project attribution defaults and durations.

use crate::context::Context;
use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostics};
use std::time::Duration;

/// Fills `team` and `project` from the provider defaults when the configuration leaves them
/// out; a resource without a team is an error because its cost could not be attributed.
pub fn plan_attribution(
    ctx: &Context,
    config: &Value,
    planned: &mut Value,
    diags: &mut Diagnostics,
    what: &str,
) {
    if config.get("team").is_null() {
        match &ctx.defaults.team {
            Some(t) => planned.set_attr("team", Value::string(t)),
            None => diags.attr_error(
                AttrPath::attr("team"),
                "Missing team",
                format!("Every {what} is charged to a team. Set team here, or default_team in the provider block."),
            ),
        }
    }
    if config.get("project").is_null() {
        planned.set_attr(
            "project",
            ctx.defaults
                .project
                .clone()
                .map_or(Value::Null, Value::String),
        );
    }
}

/// Deletion protection of data-holding resources: the refusal both front ends show, at plan time
/// (Terraform's destroy plan) and when a delete is attempted.
pub fn deletion_refused(prior: &Value, what: &str) -> Option<crate::error::ResourceError> {
    (prior.get("deletion_protection").as_bool() == Some(true)).then(|| {
        crate::error::ResourceError::invalid(
            AttrPath::attr("deletion_protection"),
            "Deletion protection is on",
            format!("{what} {} has deletion_protection = true, so it is not deleted and its data stay. To delete it, set deletion_protection = false, apply that change, then destroy.", prior.get("id").as_str().unwrap_or("")),
        )
    })
}

/// States written before `deletion_protection` existed read it as false (its default), so the
/// first plan after an upgrade shows no change.
pub fn default_deletion_protection(state: &mut Value) {
    if state.get("deletion_protection").is_null() {
        state.set_attr("deletion_protection", Value::Bool(false));
    }
}

/// Parses a Terraform duration such as "20m", "1h30m" or "45s".
pub fn parse_duration(s: &str) -> Option<Duration> {
    let mut total = 0u64;
    let mut num = String::new();
    if s.is_empty() {
        return None;
    }
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().ok()?;
        num.clear();
        total += n * match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
    }
    num.is_empty().then_some(Duration::from_secs(total))
}

/// The timeout for `op` from a resource's `timeouts` block, or `default`.
pub fn timeout(v: &Value, op: &str, default: Duration) -> Duration {
    v.get("timeouts")
        .get(op)
        .as_str()
        .and_then(parse_duration)
        .unwrap_or(default)
}

/// Reports unparsable durations in the `timeouts` block.
pub fn validate_timeouts(c: &Value, d: &mut Diagnostics) {
    for op in ["create", "update", "delete"] {
        if let Some(s) = c.get("timeouts").get(op).as_str() {
            if parse_duration(s).is_none() {
                d.attr_error(
                    AttrPath::attr("timeouts").then(op),
                    "Invalid duration",
                    format!(
                        "{s:?} is not a duration; write it like \"30s\", \"20m\" or \"1h30m\"."
                    ),
                );
            }
        }
    }
}

/// True for a DNS-1123 label (Kubernetes object names, pool names).
pub fn is_dns_label(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 63
        && n.chars()
            .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || ch == '-')
        && !n.starts_with('-')
        && !n.ends_with('-')
}

/// Whether any argument differs between two states (computed attributes ignored).
pub fn args_changed(prior: &Value, planned: &Value, computed: &[&str]) -> bool {
    let strip = |v: &Value| {
        let mut v = v.clone();
        for k in computed {
            v.set_attr(k, Value::Null);
        }
        v
    };
    strip(prior) != strip(planned)
}

/// For resources whose status reads back `Degraded: why`: the status is unknown after any
/// change, and a Degraded object (something deleted out of band, a failed Job) gets a planned
/// update that repairs it.
pub fn plan_status(prior: &Value, planned: &mut Value, computed: &[&str]) {
    planned.set_attr("status", prior.get("status").clone());
    let degraded = prior
        .get("status")
        .as_str()
        .is_some_and(|s| s.starts_with("Degraded"));
    if degraded || args_changed(prior, planned, computed) {
        planned.set_attr("status", Value::Unknown);
    }
}

/// Kubernetes object names: `name` and `namespace` must be DNS labels, and `name` short enough
/// for the suffixes the resource appends.
pub fn check_names(c: &Value, max_name: usize, what: &str, d: &mut Diagnostics) {
    for attr in ["name", "namespace"] {
        if let Some(n) = c.get(attr).as_str().filter(|n| !is_dns_label(n)) {
            d.attr_error(AttrPath::attr(attr), "Invalid Kubernetes name", format!("{n:?} must be 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit."));
        }
    }
    if let Some(n) = c
        .get("name")
        .as_str()
        .filter(|n| n.len() > max_name || n.starts_with(|ch: char| ch.is_ascii_digit()))
    {
        d.attr_error(AttrPath::attr("name"), &format!("Invalid {what} name"), format!("{n:?} must start with a letter and be at most {max_name} characters: its objects' names append suffixes."));
    }
}

/// A team name must be a valid Kubernetes label value: NetworkPolicies admit pods by it.
pub fn check_team(team: &Value, d: &mut Diagnostics) {
    if let Some(t) = team
        .as_str()
        .filter(|t| crate::resources::workload::label_value(t).is_none() || t.is_empty())
    {
        d.attr_error(AttrPath::attr("team"), "Invalid team name", format!("{t:?} cannot be a Kubernetes label value (1-63 letters, digits, '-', '_' or '.', starting and ending with a letter or digit); pods are admitted to the team's databases by that label."));
    }
}

/// Kubernetes quantities for volumes and memory (`10Gi`, `512Mi`, `1Ti`).
pub fn is_size(q: &str) -> bool {
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &q[digits.len()..];
    !digits.is_empty()
        && digits.chars().all(|c| c.is_ascii_digit())
        && ["Mi", "Gi", "Ti", "M", "G", "T"].contains(&unit)
}

/// Five cron fields, each made of digits and `*/,-` (what a CronJob's schedule takes).
pub fn is_cron(s: &str) -> bool {
    let f: Vec<&str> = s.split_whitespace().collect();
    f.len() == 5
        && f.iter()
            .all(|x| x.chars().all(|c| c.is_ascii_digit() || "*/,-".contains(c)))
}

/// Reports an invalid cron schedule at `path`.
pub fn validate_cron(v: &Value, path: AttrPath, d: &mut Diagnostics) {
    if let Some(s) = v.as_str().filter(|s| !is_cron(s)) {
        d.attr_error(path, "Invalid schedule", format!("{s:?} is not a cron schedule; write five fields like \"0 3 * * *\" (daily at 03:00)."));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_schedules() {
        assert!(is_size("10Gi") && is_size("500Mi") && !is_size("10GB") && !is_size("Gi"));
        assert!(is_cron("0 3 * * *") && is_cron("*/15 * * * 1-5") && !is_cron("daily"));
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("20m"), Some(Duration::from_secs(1200)));
        assert_eq!(parse_duration("1h30m"), Some(Duration::from_secs(5400)));
        assert_eq!(parse_duration("45s"), Some(Duration::from_secs(45)));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("5d"), None);
        assert_eq!(parse_duration(""), None);
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("llm-7b"));
        assert!(!is_dns_label("LLM"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
    }
}
