//! Plan helpers every paved resource shares: team/project attribution defaults and durations.

use crate::context::Context;
use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostics};
use std::time::Duration;

/// The attribution keys every object paved creates carries, on every cloud and in Kubernetes:
/// plain `team` and `project` are valid EC2 tag keys (activate them as AWS cost-allocation
/// tags), Kubernetes label keys (`team` is OpenCost's default team label) and GCP label keys
/// (lowercase letters only). The older `paved:team` / `paved.dev/team` forms are still written
/// and read, so pools and objects made before keep being found.
pub const ATTRIBUTION_KEYS: [&str; 2] = ["team", "project"];

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

/// The longest duration any paved argument accepts (timeouts, rollout and startup windows):
/// a day. Longer waits are a configuration mistake, and bounding them keeps every deadline
/// computed from them far from `Instant` overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// Parses a Terraform duration such as "20m", "1h30m" or "45s". `None` for anything else,
/// including a number too large to represent (checked arithmetic: never panics).
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
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        total = total.checked_add(n.checked_mul(unit)?)?;
    }
    num.is_empty().then_some(Duration::from_secs(total))
}

/// A deadline `d` from now. `d` is capped at [`MAX_DURATION`] and the addition is checked, so a
/// duration that slipped past validation can never panic.
pub fn deadline(d: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(d.min(MAX_DURATION)).unwrap_or(now)
}

/// The timeout for `op` from a resource's `timeouts` block, or `default`; at most
/// [`MAX_DURATION`].
pub fn timeout(v: &Value, op: &str, default: Duration) -> Duration {
    v.get("timeouts")
        .get(op)
        .as_str()
        .and_then(parse_duration)
        .unwrap_or(default)
        .min(MAX_DURATION)
}

/// Reports a duration argument at `path` that does not parse, is zero (when `nonzero`), or is
/// longer than [`MAX_DURATION`]. Unknown and null values are skipped.
pub fn check_duration(v: &Value, path: AttrPath, nonzero: bool, d: &mut Diagnostics) {
    let Some(s) = v.as_str() else { return };
    let looks_like = s.chars().all(|c| c.is_ascii_digit() || "hms".contains(c))
        && s.chars().any(|c| c.is_ascii_digit())
        && !s.ends_with(|c: char| c.is_ascii_digit());
    match parse_duration(s) {
        None if looks_like => d.attr_error(
            path,
            "Duration too long",
            format!("{s:?} is longer than the 24h limit; use at most \"24h\"."),
        ),
        None => d.attr_error(
            path,
            "Invalid duration",
            format!("{s:?} is not a duration; write it like \"30s\", \"20m\" or \"1h30m\"."),
        ),
        Some(x) if nonzero && x.is_zero() => d.attr_error(
            path,
            "Invalid duration",
            format!("{s:?} is zero; write a positive duration like \"30s\" or \"5m\"."),
        ),
        Some(x) if x > MAX_DURATION => d.attr_error(
            path,
            "Duration too long",
            format!(
                "{s:?} is {}h; durations are limited to 24h. Use at most \"24h\".",
                x.as_secs() / 3600
            ),
        ),
        Some(_) => {}
    }
}

/// Reports unparsable or too long durations in the `timeouts` block.
pub fn validate_timeouts(c: &Value, d: &mut Diagnostics) {
    for op in ["create", "update", "delete"] {
        check_duration(
            c.get("timeouts").get(op),
            AttrPath::attr("timeouts").then(op),
            false,
            d,
        );
    }
}

/// Checks a whole-number argument at `path` against the documented platform limit `lo..=hi`:
/// fractions, numbers beyond the range (however large: `1e30`, `-5`) and numbers that do not
/// fit an integer are reported with the limit. Returns the value when it is valid, `None` when
/// it is null, unknown or reported. `what` names it in the message ("nodes.max").
pub fn check_count(
    v: &Value,
    path: AttrPath,
    lo: i64,
    hi: i64,
    what: &str,
    d: &mut Diagnostics,
) -> Option<i64> {
    let Value::Number(n) = v else { return None };
    let f = n.as_f64();
    if f.is_finite() && f.fract() != 0.0 {
        d.attr_error(
            path,
            "Not a whole number",
            format!("{what} = {f} must be a whole number between {lo} and {hi}."),
        );
        return None;
    }
    match n.as_i64().filter(|i| (lo..=hi).contains(i)) {
        Some(i) => Some(i),
        None => {
            let shown = n
                .as_i64()
                .map_or_else(|| format!("{f:e}"), |i| i.to_string());
            d.attr_error(
                path,
                "Number out of range",
                format!("{what} = {shown} is outside the supported range {lo}..{hi}; use a value between {lo} and {hi} (see the resource's Limits)."),
            );
            None
        }
    }
}

/// Reports a string argument longer than `max` bytes.
pub fn check_len(v: &Value, path: AttrPath, max: usize, what: &str, d: &mut Diagnostics) {
    if let Some(s) = v.as_str().filter(|s| s.len() > max) {
        d.attr_error(
            path,
            "Value too long",
            format!(
                "{what} is {} characters long; the limit is {max}. Shorten it.",
                s.len()
            ),
        );
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
    size_bytes(q).is_some()
}

/// The number of bytes in a quantity accepted by [`is_size`]; `None` when it is not one or does
/// not fit in 64 bits (checked arithmetic).
pub fn size_bytes(q: &str) -> Option<u64> {
    let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let unit = &q[digits.len()..];
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mult: u64 = match unit {
        "Mi" => 1 << 20,
        "Gi" => 1 << 30,
        "Ti" => 1 << 40,
        "M" => 1_000_000,
        "G" => 1_000_000_000,
        "T" => 1_000_000_000_000,
        _ => return None,
    };
    digits.parse::<u64>().ok()?.checked_mul(mult)
}

/// 1 TiB, for size limits.
pub const TI: u64 = 1 << 40;

/// Reports a size argument at `path` that is not a quantity, is zero, or exceeds `max` bytes
/// (written in the message as `max_text`, e.g. "64Ti").
pub fn check_size(
    v: &Value,
    path: AttrPath,
    max: u64,
    max_text: &str,
    what: &str,
    d: &mut Diagnostics,
) {
    let Some(q) = v.as_str() else { return };
    let looks_like = {
        let digits = q.trim_end_matches(|c: char| c.is_ascii_alphabetic());
        !digits.is_empty()
            && digits.chars().all(|c| c.is_ascii_digit())
            && ["Mi", "Gi", "Ti", "M", "G", "T"].contains(&&q[digits.len()..])
    };
    match size_bytes(q) {
        Some(0) => d.attr_error(
            path,
            "Invalid size",
            format!("{what} = {q:?} is zero; give a positive size like \"10Gi\"."),
        ),
        Some(b) if b <= max => {}
        _ if looks_like => d.attr_error(
            path,
            "Size too large",
            format!(
                "{what} = {q:?} is larger than the {max_text} limit; use at most \"{max_text}\"."
            ),
        ),
        _ => d.attr_error(
            path,
            "Invalid size",
            format!("{q:?} is not a size; write it like \"10Gi\" or \"500Mi\"."),
        ),
    }
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
        // Overflow is refused, never a panic (debug builds trapped on `n * 3600`).
        assert_eq!(parse_duration("5124095576030432h"), None);
        assert_eq!(
            parse_duration("18446744073709551615s"),
            Some(Duration::from_secs(u64::MAX))
        );
        assert_eq!(parse_duration("18446744073709551615s1s"), None);
        assert_eq!(parse_duration("99999999999999999999999h"), None);
    }

    fn paths(d: &Diagnostics) -> Vec<(String, String)> {
        d.iter()
            .map(|x| {
                (
                    x.path.as_ref().map(|p| p.to_string()).unwrap_or_default(),
                    x.summary.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn durations_are_bounded_at_validate_and_at_use() {
        let mut d = Diagnostics::new();
        for s in ["24h", "1h30m", "0s"] {
            check_duration(&Value::string(s), AttrPath::attr("t"), false, &mut d);
        }
        assert!(d.is_empty(), "{d:?}");
        for s in [
            "25h",
            "5124095576030432h",
            "18446744073709551615s",
            "soon",
            "0s",
        ] {
            check_duration(&Value::string(s), AttrPath::attr("t"), true, &mut d);
        }
        let got: Vec<String> = paths(&d).into_iter().map(|p| p.1).collect();
        assert_eq!(
            got,
            [
                "Duration too long",
                "Duration too long",
                "Duration too long",
                "Invalid duration",
                "Invalid duration"
            ]
        );
        // A deadline from any duration is safe.
        let _ = deadline(Duration::from_secs(u64::MAX));
        let mut v = Value::object([(
            "timeouts",
            Value::object([("create", Value::string("18446744073709551615s"))]),
        )]);
        assert_eq!(timeout(&v, "create", Duration::ZERO), MAX_DURATION);
        v.set_attr("timeouts", Value::Null);
        assert_eq!(
            timeout(&v, "create", Duration::from_secs(5)),
            Duration::from_secs(5)
        );
    }

    #[test]
    fn counts_are_whole_and_in_range() {
        let mut d = Diagnostics::new();
        let p = || AttrPath::attr("n");
        assert_eq!(
            check_count(&Value::int(1000), p(), 0, 1000, "n", &mut d),
            Some(1000)
        );
        assert_eq!(check_count(&Value::Null, p(), 0, 1000, "n", &mut d), None);
        assert_eq!(
            check_count(&Value::Unknown, p(), 0, 1000, "n", &mut d),
            None
        );
        assert!(d.is_empty());
        for v in [
            Value::int(1001),
            Value::int(-1),
            Value::float(1e15),
            Value::float(1e30),
            Value::float(-1e300),
            Value::float(2.5),
        ] {
            assert_eq!(check_count(&v, p(), 0, 1000, "n", &mut d), None, "{v:?}");
        }
        let got: Vec<String> = paths(&d).into_iter().map(|p| p.1).collect();
        assert_eq!(
            got,
            [
                "Number out of range",
                "Number out of range",
                "Number out of range",
                "Number out of range",
                "Number out of range",
                "Not a whole number"
            ]
        );
        assert!(d
            .iter()
            .all(|x| x.detail.contains("0..1000") || x.detail.contains("between 0 and 1000")));
    }

    #[test]
    fn sizes_are_bounded() {
        assert_eq!(size_bytes("1Gi"), Some(1 << 30));
        assert_eq!(size_bytes("99999999999999999999Ti"), None);
        assert_eq!(size_bytes("20000000Ti"), None, "overflows u64 bytes");
        let mut d = Diagnostics::new();
        check_size(
            &Value::string("64Ti"),
            AttrPath::attr("s"),
            64 * TI,
            "64Ti",
            "size",
            &mut d,
        );
        assert!(d.is_empty());
        for q in ["65Ti", "99999999999999999999Ti", "0Gi", "10GB"] {
            check_size(
                &Value::string(q),
                AttrPath::attr("s"),
                64 * TI,
                "64Ti",
                "size",
                &mut d,
            );
        }
        let got: Vec<String> = paths(&d).into_iter().map(|p| p.1).collect();
        assert_eq!(
            got,
            [
                "Size too large",
                "Size too large",
                "Invalid size",
                "Invalid size"
            ]
        );
    }

    #[test]
    fn dns_labels() {
        assert!(is_dns_label("llm-7b"));
        assert!(!is_dns_label("LLM"));
        assert!(!is_dns_label("-a"));
        assert!(!is_dns_label(&"a".repeat(64)));
    }
}
