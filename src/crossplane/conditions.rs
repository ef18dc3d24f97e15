//! Status conditions in the shape Crossplane tooling reads (`kubectl get` READY/SYNCED columns,
//! `crossplane beta trace`): `Ready` says whether the external object is usable, `Synced`
//! whether the last reconcile succeeded.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Condition {
    #[serde(rename = "type")]
    pub type_: String,
    pub status: String,
    pub reason: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub message: String,
    pub last_transition_time: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
}

/// Messages longer than this are cut: conditions live in etcd with the object.
const MAX_MESSAGE: usize = 2048;

fn cond(type_: &str, status: bool, reason: &str, message: &str) -> Condition {
    let mut message = message.to_string();
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
        message.push('…');
    }
    Condition {
        type_: type_.to_string(),
        status: if status { "True" } else { "False" }.to_string(),
        reason: reason.to_string(),
        message,
        last_transition_time: String::new(),
        observed_generation: None,
    }
}

pub fn available() -> Condition {
    cond("Ready", true, "Available", "")
}
pub fn creating() -> Condition {
    cond("Ready", false, "Creating", "")
}
pub fn deleting() -> Condition {
    cond("Ready", false, "Deleting", "")
}
/// Not ready while a change paved started is under way: `reason` is `Creating`, `Updating`,
/// `Deleting` or `RollingBack`, `message` what it waits for.
pub fn in_progress(reason: &str, message: &str) -> Condition {
    cond("Ready", false, reason, message)
}
pub fn unavailable(message: &str) -> Condition {
    cond("Ready", false, "Unavailable", message)
}
pub fn reconcile_success() -> Condition {
    cond("Synced", true, "ReconcileSuccess", "")
}
pub fn reconcile_error(message: &str) -> Condition {
    cond("Synced", false, "ReconcileError", message)
}
/// A create or grow refused by the team's budget or GPU quota (nothing was sent to the cloud).
pub fn budget_exceeded(message: &str) -> Condition {
    cond("Synced", false, "BudgetExceeded", message)
}
pub fn reconcile_paused() -> Condition {
    cond(
        "Synced",
        false,
        "ReconcilePaused",
        "Reconciliation is paused (crossplane.io/paused or empty managementPolicies).",
    )
}

/// Sets `new` in `existing` (replacing the condition of the same type). The transition time
/// moves only when status, reason or message change, so an unchanged condition does not cause
/// a status write on every poll.
pub fn set(
    existing: &[Condition],
    mut new: Condition,
    now: &str,
    generation: Option<i64>,
) -> Vec<Condition> {
    new.observed_generation = generation;
    let mut out: Vec<Condition> = existing
        .iter()
        .filter(|c| c.type_ != new.type_)
        .cloned()
        .collect();
    let same = existing
        .iter()
        .find(|c| c.type_ == new.type_)
        .filter(|c| c.status == new.status && c.reason == new.reason && c.message == new.message);
    new.last_transition_time = match same {
        Some(c) => c.last_transition_time.clone(),
        None => now.to_string(),
    };
    out.push(new);
    out.sort_by(|a, b| a.type_.cmp(&b.type_));
    out
}

/// Now as RFC 3339 with second precision in UTC (`2026-01-02T03:04:05Z`), the format of
/// Kubernetes timestamps; such strings also compare correctly as text.
pub fn now_rfc3339() -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transitions_move_the_time_only_on_change() {
        let c = set(&[], creating(), "t1", Some(1));
        assert_eq!(c[0].last_transition_time, "t1");
        assert_eq!(c[0].observed_generation, Some(1));
        let c = set(&c, creating(), "t2", Some(2));
        assert_eq!(
            c[0].last_transition_time, "t1",
            "unchanged condition keeps its time"
        );
        assert_eq!(c[0].observed_generation, Some(2));
        let c = set(&c, available(), "t3", Some(2));
        assert_eq!(
            (c[0].reason.as_str(), c[0].last_transition_time.as_str()),
            ("Available", "t3")
        );
        let c = set(&c, reconcile_error("boom"), "t4", Some(2));
        let c = set(&c, reconcile_error("boom again"), "t5", Some(2));
        assert_eq!(c.len(), 2);
        assert_eq!(c[1].type_, "Synced");
        assert_eq!(
            c[1].last_transition_time, "t5",
            "a new message is a new transition"
        );
        let c = set(&c, reconcile_success(), "t6", Some(2));
        assert_eq!((c[1].status.as_str(), c[1].message.as_str()), ("True", ""));
    }

    #[test]
    fn long_messages_are_cut() {
        let c = reconcile_error(&"é".repeat(3000));
        assert!(c.message.len() <= MAX_MESSAGE + 3);
    }

    #[test]
    fn timestamps_are_kubernetes_shaped() {
        let t = now_rfc3339();
        assert_eq!(t.len(), 20);
        assert!(t.ends_with('Z') && t.as_bytes()[10] == b'T', "{t}");
    }
}
