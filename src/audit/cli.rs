//! `terraform-provider-paved audit`: the trail as a table or JSON, filtered by team, time and
//! resource, read from the live file and its rotated predecessors.

use super::{AuditLog, Phase, Record, DEFAULT_MAX_BYTES};

pub const USAGE: &str = "usage:
  terraform-provider-paved audit --file FILE [--team TEAM] [--since TIME|DURATION]
                                 [--resource ID|NAME|TYPE] [--format table|json]
Prints the audit trail (FILE and its rotations FILE.1 … FILE.5, oldest first). --since takes
an RFC 3339 UTC time (2026-12-04T10:00:00Z) or a duration back from now (90m, 24h, 7d).
FILE defaults to PAVED_AUDIT_FILE. JSON prints one record per line, as in the file.";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    pub file: String,
    pub team: Option<String>,
    /// Normalised to the records' own form (milliseconds, `Z`), so strings compare as times.
    pub since: Option<String>,
    pub resource: Option<String>,
    pub json: bool,
}

/// `2026-12-04T10:00:00Z` → `2026-12-04T10:00:00.000Z`; `24h` → now − 24 h in that form.
pub fn parse_since(s: &str, now: time::OffsetDateTime) -> Result<String, String> {
    let bad = || {
        format!(
            "--since {s}: use an RFC 3339 UTC time such as 2026-12-04T10:00:00Z, or 90m, 24h, 7d"
        )
    };
    if let Some(n) = s.strip_suffix(['m', 'h', 'd']) {
        let n: i64 = n.parse().map_err(|_| bad())?;
        let secs = match s.chars().last() {
            Some('m') => 60,
            Some('h') => 3600,
            _ => 86400,
        };
        let t = now - time::Duration::seconds(n.checked_mul(secs).ok_or_else(bad)?);
        return Ok(super::stamp(t));
    }
    let body = s.strip_suffix('Z').ok_or_else(bad)?;
    let shape = body.len() >= 19
        && body.as_bytes()[10] == b'T'
        && body[..19]
            .chars()
            .enumerate()
            .all(|(i, c)| matches!(i, 4 | 7 | 10 | 13 | 16) || c.is_ascii_digit());
    if !shape {
        return Err(bad());
    }
    let frac = body[19..].strip_prefix('.').unwrap_or("");
    if body.len() > 19 && (frac.is_empty() || !frac.chars().all(|c| c.is_ascii_digit())) {
        return Err(bad());
    }
    Ok(format!("{}.{:0<3.3}Z", &body[..19], frac))
}

pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Options, String> {
    let mut it = args.iter().flat_map(|a| match a.split_once('=') {
        Some((k, v)) if a.starts_with("--") => vec![k.to_string(), v.to_string()],
        _ => vec![a.clone()],
    });
    let mut o = Options::default();
    let mut file = None;
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match a.as_str() {
            "--file" => file = Some(value("--file")?),
            "--team" => o.team = Some(value("--team")?),
            "--since" => {
                o.since = Some(parse_since(
                    &value("--since")?,
                    time::OffsetDateTime::now_utc(),
                )?)
            }
            "--resource" => o.resource = Some(value("--resource")?),
            "--format" => match value("--format")?.as_str() {
                "table" => o.json = false,
                "json" => o.json = true,
                f => return Err(format!("--format {f}: use table or json")),
            },
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    o.file = file
        .or_else(|| env("PAVED_AUDIT_FILE"))
        .filter(|f| !f.is_empty())
        .ok_or("no audit file: pass --file (or set PAVED_AUDIT_FILE)")?;
    Ok(o)
}

pub fn selected(o: &Options, r: &Record) -> bool {
    o.team.as_ref().is_none_or(|t| r.team.as_ref() == Some(t))
        && o.since
            .as_ref()
            .is_none_or(|s| r.time.as_str() >= s.as_str())
        && o.resource.as_ref().is_none_or(|x| {
            r.resource_id.as_ref() == Some(x) || r.name.as_ref() == Some(x) || &r.resource_type == x
        })
}

pub fn table(records: &[Record]) -> String {
    let mut rows = vec![[
        "TIME".to_string(),
        "PHASE".into(),
        "ACTION".into(),
        "RESULT".into(),
        "RESOURCE".into(),
        "TEAM".into(),
        "REQUESTER".into(),
        "CHANGED".into(),
        "REQUEST".into(),
    ]];
    for r in records {
        let result = match (r.phase, r.result) {
            (Phase::Intent, _) => "-".to_string(),
            (_, Some(o)) => serde_json::to_value(o)
                .ok()
                .and_then(|v| v.as_str().map(String::from))
                .unwrap_or_default(),
            _ => "?".into(),
        };
        rows.push([
            r.time.clone(),
            format!("{:?}", r.phase).to_lowercase(),
            r.action.clone(),
            result,
            format!(
                "{} {}",
                r.resource_type,
                r.resource_id
                    .as_deref()
                    .or(r.name.as_deref())
                    .unwrap_or("-")
            ),
            r.team.clone().unwrap_or_else(|| "-".into()),
            r.requester.clone().unwrap_or_else(|| "-".into()),
            if r.changed.is_empty() {
                "-".into()
            } else {
                r.changed
                    .iter()
                    .map(|c| c.argument.as_str())
                    .collect::<Vec<_>>()
                    .join(",")
            },
            r.request_id.clone(),
        ]);
    }
    let widths: Vec<usize> = (0..9)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    for r in records.iter().filter(|r| r.error.is_some()) {
        out.push_str(&format!(
            "error {}: {}\n",
            r.request_id,
            r.error.as_deref().unwrap_or_default()
        ));
    }
    out
}

/// Runs the command; the exit code (0 printed, 1 unreadable, 2 bad arguments).
pub fn main(args: &[String]) -> i32 {
    let o = match parse(args, |k| std::env::var(k).ok()) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("terraform-provider-paved audit: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() { 0 } else { 2 };
        }
    };
    let log = AuditLog::new(&o.file, DEFAULT_MAX_BYTES);
    if log.files().is_empty() {
        eprintln!("terraform-provider-paved audit: {} does not exist", o.file);
        return 1;
    }
    match log.read_all() {
        Ok(all) => {
            let picked: Vec<Record> = all.into_iter().filter(|r| selected(&o, r)).collect();
            if o.json {
                for r in &picked {
                    println!("{}", serde_json::to_string(r).unwrap_or_default());
                }
            } else {
                print!("{}", table(&picked));
            }
            0
        }
        Err(e) => {
            eprintln!("terraform-provider-paved audit: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn since_takes_times_and_durations_in_the_records_form() {
        let now = time::OffsetDateTime::from_unix_timestamp(1796385600).unwrap()
            + time::Duration::milliseconds(500);
        assert_eq!(
            parse_since("2026-12-04T10:00:00Z", now).unwrap(),
            "2026-12-04T10:00:00.000Z"
        );
        assert_eq!(
            parse_since("2026-12-04T10:00:00.25Z", now).unwrap(),
            "2026-12-04T10:00:00.250Z"
        );
        assert_eq!(parse_since("90m", now).unwrap(), "2026-12-04T10:30:00.500Z");
        assert_eq!(parse_since("1d", now).unwrap(), "2026-12-03T12:00:00.500Z");
        for bad in [
            "yesterday",
            "2026-12-04 10:00:00Z",
            "2026-12-04T10:00:00+01:00",
            "h",
            "2026-12-04T10:00:00.Z",
        ] {
            assert!(parse_since(bad, now).is_err(), "{bad}");
        }
    }

    #[test]
    fn arguments_need_a_file_and_filter_records() {
        assert!(parse(&args("--team ml"), |_| None)
            .unwrap_err()
            .contains("--file"));
        let o = parse(&args("--team ml --resource ns/docs --format json"), |_| {
            Some("/tmp/a".into())
        })
        .unwrap();
        assert_eq!((o.file.as_str(), o.json), ("/tmp/a", true));
        assert!(parse(&args("--file a --format xml"), |_| None).is_err());
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "schema": "paved.dev/audit/v1", "time": "2026-12-04T10:00:00.000Z", "phase": "result",
            "request_id": "r1", "front_end": "terraform", "resource_type": "paved_vector_db",
            "resource_id": "ns/docs", "team": "ml", "action": "create", "changed": [{"argument": "name", "value": "docs"}],
            "result": "failed", "error": "boom", "host": "h", "pid": 1}))
        .unwrap();
        assert!(selected(&o, &r));
        r.team = Some("search".into());
        assert!(!selected(&o, &r));
        let t = table(&[r]);
        assert!(
            t.contains("failed")
                && t.contains("paved_vector_db ns/docs")
                && t.contains("error r1: boom"),
            "{t}"
        );
    }
}
