//! Typed errors raised inside resources and cloud clients. They become Terraform diagnostics (or
//! Crossplane conditions) only at the edges, so the wording a user sees lives in one place.

use crate::diag::{AttrPath, Diagnostic};
use std::sync::Arc;
use std::time::Duration;

/// The cause of an error, kept (with its own source chain) so the diagnostic and the Crossplane
/// condition can show *why*: "connection refused", the certificate error, the JSON parse error.
/// Shared rather than boxed so errors stay cheap to clone.
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync + 'static>);

impl Cause {
    pub fn new(e: impl std::error::Error + Send + Sync + 'static) -> Cause {
        Cause(Arc::new(e))
    }
    /// A cause known only as text (e.g. a message already flattened by a library).
    pub fn text(s: impl Into<String>) -> Cause {
        #[derive(Debug, thiserror::Error)]
        #[error("{0}")]
        struct Text(String);
        Cause(Arc::new(Text(s.into())))
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Cause({:?})", self.0.to_string())
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for Cause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

/// `e` followed by every cause in its source chain (`a: b: c`), skipping a cause whose text the
/// message already contains.
pub fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        let t = s.to_string();
        if !t.is_empty() && !out.contains(&t) {
            out = format!("{out}: {t}");
        }
        src = s.source();
    }
    out
}

#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum ResourceError {
    /// The configuration cannot work; the path says where.
    #[error("{summary}: {detail}")]
    Invalid {
        path: Option<AttrPath>,
        summary: String,
        detail: String,
    },
    /// A required provider setting (e.g. the `aws` block) is missing.
    #[error("provider not configured: {0}")]
    NotConfigured(String),
    /// A cloud API refused or failed a call (the call itself; says nothing about the object).
    #[error("{service} {operation} failed: {code}: {message}")]
    Cloud {
        service: &'static str,
        operation: &'static str,
        code: String,
        message: String,
        #[source]
        source: Option<Cause>,
    },
    /// No option (instance type × zone) had capacity; `tried` lists each attempt and its error.
    /// `cleanup_failed` says why instances launched by the attempt could not be terminated
    /// (`None`: nothing launched is left running).
    #[error("no capacity for {wanted} instance(s): tried {}", tried.join("; "))]
    Capacity {
        wanted: i64,
        tried: Vec<String>,
        cleanup_failed: Option<String>,
    },
    /// A runtime failure with a valid configuration: a rollout, a readiness wait or a bootstrap
    /// Job failed. Retrying may succeed once the cause is fixed.
    #[error("{summary}: {detail}")]
    Failed {
        summary: String,
        detail: String,
        #[source]
        source: Option<Cause>,
    },
    /// The object exists but cannot be read: its paved metadata is missing or does not parse, or
    /// reading it failed. Never to be taken as "gone".
    #[error("{what} cannot be read: {reason}")]
    Unreadable {
        what: String,
        reason: String,
        #[source]
        source: Option<Cause>,
    },
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("cancelled: the operation was asked to stop")]
    Cancelled,
    /// Import or read of an object that does not exist (gone). Only for a definite answer from
    /// the API ("no such object"); anything uncertain is `Unreadable` or `Cloud`.
    #[error("{0} not found")]
    NotFound(String),
    /// A create or grow would break the team's budget or GPU quota; nothing was sent to the
    /// cloud ([`crate::budget`]).
    #[error("{0}")]
    BudgetExceeded(crate::budget::Exceeded),
}

impl ResourceError {
    pub fn invalid(path: AttrPath, summary: &str, detail: impl Into<String>) -> ResourceError {
        ResourceError::Invalid {
            path: Some(path),
            summary: summary.to_string(),
            detail: detail.into(),
        }
    }

    /// A runtime failure (see [`ResourceError::Failed`]).
    pub fn failed(summary: &str, detail: impl Into<String>) -> ResourceError {
        ResourceError::Failed {
            summary: summary.to_string(),
            detail: detail.into(),
            source: None,
        }
    }

    /// An object that exists but cannot be read (see [`ResourceError::Unreadable`]).
    pub fn unreadable(
        what: impl Into<String>,
        reason: impl Into<String>,
        source: Option<Cause>,
    ) -> ResourceError {
        ResourceError::Unreadable {
            what: what.into(),
            reason: reason.into(),
            source,
        }
    }

    /// The message with its whole cause chain, for logs and Crossplane conditions.
    pub fn report(&self) -> String {
        chain(self)
    }

    /// Short machine-readable kind (log field, condition reasons, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            ResourceError::Invalid { .. } => "Invalid",
            ResourceError::NotConfigured(_) => "NotConfigured",
            ResourceError::Cloud { .. } => "CloudError",
            ResourceError::Capacity { .. } => "NoCapacity",
            ResourceError::Failed { .. } => "Failed",
            ResourceError::Unreadable { .. } => "Unreadable",
            ResourceError::Timeout { .. } => "Timeout",
            ResourceError::Cancelled => "Cancelled",
            ResourceError::NotFound(_) => "NotFound",
            ResourceError::BudgetExceeded(_) => "BudgetExceeded",
        }
    }

    /// The user-facing form: a summary that names the failure and a detail that says what to do;
    /// the cause chain, if any, follows the detail.
    pub fn to_diagnostic(&self) -> Diagnostic {
        let mut d = self.base_diagnostic();
        let mut src = std::error::Error::source(self);
        let mut causes = vec![];
        while let Some(s) = src {
            let t = s.to_string();
            if !t.is_empty() && !d.detail.contains(&t) && !causes.contains(&t) {
                causes.push(t);
            }
            src = s.source();
        }
        if !causes.is_empty() {
            d.detail = format!("{}\n\nCaused by: {}", d.detail, causes.join(": "));
        }
        d
    }

    fn base_diagnostic(&self) -> Diagnostic {
        match self {
            ResourceError::Invalid {
                path,
                summary,
                detail,
            } => {
                let d = Diagnostic::error(summary.clone(), detail.clone());
                match path {
                    Some(p) => d.at(p.clone()),
                    None => d,
                }
            }
            ResourceError::NotConfigured(what) => Diagnostic::error(
                "Provider is missing configuration",
                format!("{what}. Add it to the provider configuration."),
            ),
            ResourceError::Cloud {
                service,
                operation,
                code,
                message,
                ..
            } => Diagnostic::error(
                format!("{service} {operation} failed: {code}"),
                format!(
                    "{message}\n\nThe cloud API returned error code {code}. Check the provider's credentials and the resource arguments; nothing was changed by this call."
                ),
            ),
            ResourceError::Capacity {
                wanted,
                tried,
                cleanup_failed,
            } => Diagnostic::error(
                "No GPU capacity available",
                format!(
                    "Could not launch {wanted} instance(s). Every option was tried, in order:\n  - {}\n{} Add instance_types or availability_zones, switch capacity_type, or retry later.",
                    tried.join("\n  - "),
                    match cleanup_failed {
                        None => "No instance launched during this attempt is left running.".to_string(),
                        Some(e) => format!("Terminating the instances launched during this attempt FAILED ({e}); they may still be running and are kept in the resource's state so the next apply or delete handles them."),
                    }
                ),
            ),
            ResourceError::Failed {
                summary, detail, ..
            } => Diagnostic::error(summary.clone(), detail.clone()),
            ResourceError::Unreadable { what, reason, .. } => Diagnostic::error(
                "Object cannot be read",
                format!("{what} exists but cannot be read: {reason}. It is not treated as deleted; fix or remove it by hand, or check access to it, then retry."),
            ),
            ResourceError::Timeout { what, after } => Diagnostic::error(
                "Timed out",
                format!(
                    "Waited {}s for {what}. Raise the matching timeout of the resource if the cloud is slow, then retry.",
                    after.as_secs()
                ),
            ),
            ResourceError::Cancelled => Diagnostic::error(
                "Operation cancelled",
                "The operation was asked to stop. The state returned records what exists so far.",
            ),
            ResourceError::NotFound(what) => Diagnostic::error(
                "Object not found",
                format!("{what} does not exist. Check the ID (and, for AWS objects, the region).")
            ),
            ResourceError::BudgetExceeded(e) => Diagnostic::error(
                match e {
                    crate::budget::Exceeded::Budget { .. } => "Team budget exceeded",
                    crate::budget::Exceeded::Gpus { .. } => "Team GPU quota exceeded",
                },
                format!("{e}. Nothing was created or changed."),
            )
            .at(AttrPath::attr("team")),
        }
    }
}

/// A failed create or update. `state` is what exists after the failure, so Terraform records it
/// and nothing is orphaned; `None` means nothing was created.
#[derive(Debug, Clone, PartialEq)]
pub struct ApplyError {
    pub error: ResourceError,
    pub state: Option<crate::cty::Value>,
}

impl From<ResourceError> for ApplyError {
    fn from(error: ResourceError) -> Self {
        ApplyError { error, state: None }
    }
}

impl ApplyError {
    pub fn with_state(error: ResourceError, state: crate::cty::Value) -> ApplyError {
        ApplyError {
            error,
            state: Some(state),
        }
    }
}

/// The message of a caught panic (`panic!` gives a `&str` or a `String` payload), for the front
/// ends that turn a panic into a diagnostic, a condition or an exit reason.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("client error (Connect)")]
    struct Transport(#[source] std::io::Error);

    #[test]
    fn causes_reach_the_diagnostic_and_the_report() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let e = ResourceError::Cloud {
            service: "Kubernetes",
            operation: "get",
            code: "Unreachable".into(),
            message: "StatefulSet db/x: client error (Connect)".into(),
            source: Some(Cause::new(Transport(io))),
        };
        assert_eq!(
            e.report(),
            "Kubernetes get failed: Unreachable: StatefulSet db/x: client error (Connect): connection refused"
        );
        let d = e.to_diagnostic();
        assert!(
            d.detail.ends_with("Caused by: connection refused"),
            "{}",
            d.detail
        );
        let f = ResourceError::Failed {
            summary: "Rollout failed".into(),
            detail: "deployment x failed".into(),
            source: Some(Cause::text("ProgressDeadlineExceeded")),
        };
        assert_eq!(f.kind(), "Failed");
        assert!(f
            .to_diagnostic()
            .detail
            .contains("Caused by: ProgressDeadlineExceeded"));
    }

    #[test]
    fn capacity_text_follows_the_cleanup() {
        let e = |cleanup_failed| ResourceError::Capacity {
            wanted: 2,
            tried: vec!["2 × g5.xlarge in any zone: InsufficientInstanceCapacity".into()],
            cleanup_failed,
        };
        assert!(e(None)
            .to_diagnostic()
            .detail
            .contains("No instance launched during this attempt is left running"));
        let d = e(Some("UnauthorizedOperation".into()))
            .to_diagnostic()
            .detail;
        assert!(
            d.contains("FAILED (UnauthorizedOperation)") && !d.contains("were terminated"),
            "{d}"
        );
    }
}
