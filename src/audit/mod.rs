//! The audit trail: one `paved.dev/audit/v1` record before a change reaches a cloud (the
//! *intent*) and one after it ends (the *result*), sharing a request id, so a process killed in
//! between leaves an intent with no result, which the next run reports and closes.
//!
//! Records hold argument names and only non-sensitive values (see [`changes`]); secrets never
//! reach them. The format is published as `docs/audit.schema.json`.

pub mod cli;
mod file;

pub use file::{AuditLog, DEFAULT_MAX_BYTES};

use crate::cty::Value;
use crate::schema::Block;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub const SCHEMA: &str = "paved.dev/audit/v1";

/// A sink that cannot take a record: the change it guards must not start.
#[derive(Debug, thiserror::Error)]
#[error("cannot write the audit trail {path}: {source}")]
pub struct AuditError {
    pub path: String,
    #[source]
    pub source: std::io::Error,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Intent,
    Result,
}

/// How a change ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Succeeded,
    Failed,
    /// The process that wrote the intent ended before its result (closed by a later run).
    Interrupted,
}

/// One changed argument: its path, and its new value when the argument is not sensitive and
/// holds a plain value (strings, numbers, booleans).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub argument: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub schema: String,
    /// RFC 3339, UTC, with milliseconds.
    pub time: String,
    pub phase: Phase,
    pub request_id: String,
    /// `terraform` (also OpenTofu) or `crossplane`.
    pub front_end: String,
    /// The cloud identities paved acted as, by cloud (`aws`: the STS caller ARN), once known
    /// (the first change of a process checks the credentials, so its intent may have none).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub actor: BTreeMap<String, String>,
    /// On whose behalf: the provider's `audit.requester`, else `PAVED_REQUESTER`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,
    pub resource_type: String,
    /// The resource's ID when it is known (always on results of creates that got one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// `create`, `update`, `drift_correct` (the controller restoring an unchanged spec),
    /// `delete`, `import` (also the controller adopting an object) or `rollback` (the controller's automatic
    /// recovery of a failed change).
    pub action: String,
    #[serde(default)]
    pub changed: Vec<Change>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Outcome>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    /// The writing process, so a later run can tell an interrupted change from one in flight.
    pub host: String,
    pub pid: u32,
}

/// What the front end knows of a change before it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Subject {
    pub front_end: &'static str,
    pub requester: Option<String>,
    /// The cloud identities known when the change starts ([`crate::context::Context::identities`]).
    pub actor: BTreeMap<String, String>,
    pub resource_type: String,
    pub action: &'static str,
    /// The state the change starts from and the state it aims at (Null for create / delete).
    pub prior: Value,
    pub planned: Value,
}

/// A configured trail: where records go and on whose behalf changes are made.
#[derive(Debug)]
pub struct Trail {
    /// The JSON Lines file: the record of truth, written first.
    pub log: AuditLog,
    pub requester: Option<String>,
    /// An HTTP collector (a SIEM) fed through a spool on disk, at least once.
    pub http: Option<Arc<crate::delivery::HttpSink>>,
}

/// A change whose intent is on disk; [`Pending::finish`] writes its result.
pub struct Pending<'a> {
    trail: &'a Trail,
    intent: Record,
    started: std::time::Instant,
}

impl Trail {
    pub fn new(log: AuditLog, requester: Option<String>) -> Trail {
        Trail {
            log,
            requester,
            http: None,
        }
    }

    pub fn with_http(mut self, sink: Arc<crate::delivery::HttpSink>) -> Trail {
        self.http = Some(sink);
        self
    }

    /// Writes one record to every sink: the file, then the HTTP spool.
    fn write(&self, r: &Record) -> Result<(), AuditError> {
        self.log.append(r)?;
        self.spool(r)
    }

    fn spool(&self, r: &Record) -> Result<(), AuditError> {
        let Some(h) = &self.http else { return Ok(()) };
        let err = |source| AuditError {
            path: h.spool().path().display().to_string(),
            source,
        };
        let line = serde_json::to_string(r).map_err(|e| err(std::io::Error::other(e)))?;
        h.enqueue(&line).map_err(err)
    }

    /// Reports and closes the intents of processes that died before their result
    /// ([`AuditLog::close_interrupted`]), sending the closing results to the HTTP sink too.
    pub fn close_interrupted(&self) -> Result<Vec<Record>, AuditError> {
        let closed = self.log.close_interrupted()?;
        for r in &closed {
            self.spool(r)?;
        }
        Ok(closed)
    }

    /// Writes the intent of a change. An error means the change must not start.
    pub fn begin(&self, block: &Block, mut subject: Subject) -> Result<Pending<'_>, AuditError> {
        subject.requester = subject.requester.or_else(|| self.requester.clone());
        let intent = subject.intent(block, &request_id());
        self.log.append(&intent)?;
        if let Err(e) = self.spool(&intent) {
            // The file holds the intent the spool refused: close it there, so the refused
            // change does not look interrupted.
            let _ = self.log.append(&intent.result(
                Outcome::Failed,
                Some(format!("not started: {e}")),
                None,
                Duration::ZERO,
            ));
            return Err(e);
        }
        Ok(Pending {
            trail: self,
            intent,
            started: std::time::Instant::now(),
        })
    }
}

impl Trail {
    /// A change whose intent an earlier call wrote (a Crossplane delete spans reconciles):
    /// the same request, timed from `started_unix_ms`.
    pub fn resume(
        &self,
        block: &Block,
        mut subject: Subject,
        request_id: &str,
        started_unix_ms: u64,
    ) -> Pending<'_> {
        subject.requester = subject.requester.or_else(|| self.requester.clone());
        let ago = Duration::from_millis(unix_ms().saturating_sub(started_unix_ms));
        let now = std::time::Instant::now();
        Pending {
            trail: self,
            intent: subject.intent(block, request_id),
            started: now.checked_sub(ago).unwrap_or(now),
        }
    }
}

pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Pending<'_> {
    pub fn request_id(&self) -> &str {
        &self.intent.request_id
    }

    /// The intent record (for sinks that mirror it, such as Kubernetes Events).
    pub fn intent(&self) -> &Record {
        &self.intent
    }

    /// Writes the result and returns it with how writing it went. The change has happened
    /// either way: an error here is reported as a warning by the caller, not as a failed change.
    pub fn finish(
        self,
        outcome: Outcome,
        error: Option<String>,
        state: Option<&Value>,
        actor: BTreeMap<String, String>,
    ) -> (Record, Result<(), AuditError>) {
        let mut r = self
            .intent
            .result(outcome, error, state, self.started.elapsed());
        r.actor.extend(actor);
        let written = self.trail.write(&r);
        (r, written)
    }
}

pub fn now() -> String {
    stamp(time::OffsetDateTime::now_utc())
}

/// RFC 3339 in UTC with exactly three fraction digits, so records' times compare as strings.
pub fn stamp(t: time::OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

pub fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown".into())
}

/// A random version-4 UUID.
pub fn request_id() -> String {
    crate::ids::uuid(rand::random(), 4)
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(String::from)
}

impl Subject {
    /// The intent record of this change.
    pub fn intent(&self, block: &Block, request_id: &str) -> Record {
        let target = if self.planned.is_null() {
            &self.prior
        } else {
            &self.planned
        };
        Record {
            schema: SCHEMA.into(),
            time: now(),
            phase: Phase::Intent,
            request_id: request_id.into(),
            front_end: self.front_end.into(),
            actor: self.actor.clone(),
            requester: self.requester.clone(),
            resource_type: self.resource_type.clone(),
            resource_id: text(target.get("id")).or_else(|| text(self.prior.get("id"))),
            name: text(target.get("name")),
            team: text(target.get("team")),
            project: text(target.get("project")),
            action: self.action.into(),
            changed: changes(block, &self.prior, &self.planned),
            result: None,
            error: None,
            duration_ms: None,
            host: host(),
            pid: std::process::id(),
        }
    }
}

impl Record {
    /// One line for a Kubernetes Event's note (at most 1 KiB, the Events API's limit): what,
    /// on whose behalf, as whom, and how it ended.
    pub fn summary(&self) -> String {
        let mut s = format!(
            "{} {} {}",
            match self.phase {
                Phase::Intent => "intent:",
                Phase::Result => "result:",
            },
            self.action,
            self.resource_id
                .as_deref()
                .or(self.name.as_deref())
                .unwrap_or("-")
        );
        if let Some(r) = &self.requester {
            s += &format!(" requested by {r}");
        }
        if !self.actor.is_empty() {
            let a: Vec<String> = self.actor.iter().map(|(k, v)| format!("{k}={v}")).collect();
            s += &format!(" as {}", a.join(","));
        }
        s += &format!("; request {}", self.request_id);
        if !self.changed.is_empty() {
            let c: Vec<&str> = self.changed.iter().map(|c| c.argument.as_str()).collect();
            s += &format!("; changed {}", c.join(", "));
        }
        if let Some(o) = self.result {
            let o = match o {
                Outcome::Succeeded => "succeeded",
                Outcome::Failed => "failed",
                Outcome::Interrupted => "interrupted",
            };
            s += &format!("; {o} in {} ms", self.duration_ms.unwrap_or(0));
        }
        if let Some(e) = &self.error {
            s += &format!(": {e}");
        }
        if s.len() > 1024 {
            let mut cut = 1021;
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            s.truncate(cut);
            s += "...";
        }
        s
    }

    /// The result record closing this intent; `state` is what exists afterwards, if known.
    pub fn result(
        &self,
        outcome: Outcome,
        error: Option<String>,
        state: Option<&Value>,
        took: Duration,
    ) -> Record {
        let mut r = self.clone();
        r.time = now();
        r.phase = Phase::Result;
        r.result = Some(outcome);
        r.error = error;
        r.duration_ms = Some(took.as_millis() as u64);
        if let Some(s) = state {
            // An import's intent knows only the ID; what it found names the rest.
            r.resource_id = text(s.get("id")).or(r.resource_id);
            r.name = r.name.or_else(|| text(s.get("name")));
            r.team = r.team.or_else(|| text(s.get("team")));
            r.project = r.project.or_else(|| text(s.get("project")));
        }
        r.host = host();
        r.pid = std::process::id();
        r
    }
}

/// The arguments a change sets or changes, by name; values only for non-sensitive,
/// non-write-only attributes holding a string, number or bool. Computed-only attributes are
/// not arguments and are left out; a nested block is named, not its content.
pub fn changes(block: &Block, prior: &Value, planned: &Value) -> Vec<Change> {
    if planned.is_null() {
        return vec![];
    }
    let mut out = vec![];
    for a in &block.attributes {
        if a.mode == crate::schema::Mode::Computed {
            continue;
        }
        let (before, after) = (prior.get(&a.name), planned.get(&a.name));
        if before == after || (prior.is_null() && after.is_null()) {
            continue;
        }
        let value = if a.sensitive || a.write_only {
            None
        } else {
            plain(after)
        };
        out.push(Change {
            argument: a.name.clone(),
            value,
        });
    }
    for b in &block.blocks {
        let (before, after) = (prior.get(&b.name), planned.get(&b.name));
        if before == after || (prior.is_null() && is_empty(after)) {
            continue;
        }
        out.push(Change {
            argument: b.name.clone(),
            value: None,
        });
    }
    out
}

fn is_empty(v: &Value) -> bool {
    v.is_null() || (matches!(v, Value::List(_) | Value::Set(_)) && v.elements().is_empty())
}

fn plain(v: &Value) -> Option<serde_json::Value> {
    use crate::cty::Number;
    match v {
        Value::String(s) => Some(serde_json::Value::String(s.clone())),
        Value::Bool(b) => Some(serde_json::Value::Bool(*b)),
        Value::Null => Some(serde_json::Value::Null),
        Value::Number(Number::Int(i)) => Some(serde_json::Value::from(*i)),
        Value::Number(Number::Float(f)) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
            Some(serde_json::Value::from(*f as i64))
        }
        Value::Number(Number::Float(f)) => {
            serde_json::Number::from_f64(*f).map(serde_json::Value::Number)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cty::Type;
    use crate::schema::{Attribute, Nesting};

    fn block() -> Block {
        Block::new("t")
            .attr(Attribute::required("name", Type::String, ""))
            .attr(Attribute::optional("size", Type::Number, ""))
            .attr(Attribute::optional("password", Type::String, "").sensitive())
            .attr(Attribute::computed("id", Type::String, ""))
            .block(
                "nodes",
                Nesting::Single,
                Block::new("n").attr(Attribute::optional("max", Type::Number, "")),
            )
    }

    #[test]
    fn changes_name_arguments_and_never_carry_sensitive_values() {
        let b = block();
        let v = |size: f64, pw: &str, max: i64| {
            Value::object([
                ("name", Value::string("a")),
                ("size", Value::float(size)),
                ("password", Value::string(pw)),
                ("id", Value::string("x-1")),
                ("nodes", Value::object([("max", Value::int(max))])),
            ])
        };
        let created = changes(&b, &Value::Null, &v(2.0, "hunter2", 3));
        let names: Vec<&str> = created.iter().map(|c| c.argument.as_str()).collect();
        assert_eq!(names, ["name", "size", "password", "nodes"]);
        assert_eq!(created[1].value, Some(serde_json::json!(2)));
        assert_eq!(created[2].value, None);
        let updated = changes(&b, &v(2.0, "hunter2", 3), &v(2.5, "hunter3", 3));
        assert_eq!(
            updated,
            [
                Change {
                    argument: "size".into(),
                    value: Some(serde_json::json!(2.5))
                },
                Change {
                    argument: "password".into(),
                    value: None
                }
            ]
        );
        assert!(changes(&b, &v(2.0, "x", 3), &Value::Null).is_empty());
        let line = serde_json::to_string(&updated).unwrap();
        assert!(!line.contains("hunter"));
    }

    #[test]
    fn an_intent_and_its_result_share_the_request_id() {
        let s = Subject {
            front_end: "terraform",
            actor: Default::default(),
            requester: Some("alice".into()),
            resource_type: "paved_vector_db".into(),
            action: "create",
            prior: Value::Null,
            planned: Value::object([
                ("name", Value::string("docs")),
                ("team", Value::string("ml")),
            ]),
        };
        let id = request_id();
        assert_eq!((id.len(), &id[14..15]), (36, "4"));
        let i = s.intent(&block(), &id);
        assert_eq!(
            (i.phase, i.team.as_deref(), i.result),
            (Phase::Intent, Some("ml"), None)
        );
        let done = Value::object([("id", Value::string("ns/docs"))]);
        let r = i.result(
            Outcome::Succeeded,
            None,
            Some(&done),
            Duration::from_millis(1500),
        );
        assert_eq!(
            (r.request_id.as_str(), r.phase),
            (id.as_str(), Phase::Result)
        );
        assert_eq!(
            (r.resource_id.as_deref(), r.duration_ms),
            (Some("ns/docs"), Some(1500))
        );
        let back: Record = serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
        assert!(i.time.ends_with('Z') && i.time.contains('.'), "{}", i.time);
    }
}
