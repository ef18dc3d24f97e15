//! Typed errors raised inside resources and cloud clients. They become Terraform diagnostics (or
//! Crossplane conditions) only at the edges, so the wording a user sees lives in one place.

use crate::diag::{AttrPath, Diagnostic};
use std::time::Duration;

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
    /// A cloud API refused or failed a call.
    #[error("{service} {operation} failed: {code}: {message}")]
    Cloud {
        service: &'static str,
        operation: &'static str,
        code: String,
        message: String,
    },
    /// No option (instance type × zone) had capacity; `tried` lists each attempt and its error.
    #[error("no capacity for {wanted} instance(s): tried {}", tried.join("; "))]
    Capacity { wanted: i64, tried: Vec<String> },
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout { what: String, after: Duration },
    #[error("cancelled: Terraform asked the provider to stop")]
    Cancelled,
    /// Import or read of an object that does not exist.
    #[error("{0} not found")]
    NotFound(String),
}

impl ResourceError {
    pub fn invalid(path: AttrPath, summary: &str, detail: impl Into<String>) -> ResourceError {
        ResourceError::Invalid {
            path: Some(path),
            summary: summary.to_string(),
            detail: detail.into(),
        }
    }

    /// The user-facing form: a summary that names the failure and a detail that says what to do.
    pub fn to_diagnostic(&self) -> Diagnostic {
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
                format!("{what}. Add it to the provider \"paved\" block."),
            ),
            ResourceError::Cloud {
                service,
                operation,
                code,
                message,
            } => Diagnostic::error(
                format!("{service} {operation} failed: {code}"),
                format!(
                    "{message}\n\nThe cloud API returned error code {code}. Check the provider's credentials and the resource arguments; nothing was changed by this call."
                ),
            ),
            ResourceError::Capacity { wanted, tried } => Diagnostic::error(
                "No GPU capacity available",
                format!(
                    "Could not launch {wanted} instance(s). Every option was tried, in order:\n  - {}\nInstances launched during this attempt were terminated. Add instance_types or availability_zones, switch capacity_type, or retry later.",
                    tried.join("\n  - ")
                ),
            ),
            ResourceError::Timeout { what, after } => Diagnostic::error(
                "Timed out",
                format!(
                    "Waited {}s for {what}. Raise the matching value in the resource's timeouts block if the cloud is slow, then re-run apply.",
                    after.as_secs()
                ),
            ),
            ResourceError::Cancelled => Diagnostic::error(
                "Operation cancelled",
                "Terraform asked the provider to stop. The state returned records what exists so far.",
            ),
            ResourceError::NotFound(what) => Diagnostic::error(
                "Object not found",
                format!("{what} does not exist. Check the ID (and, for AWS objects, the region).")
            ),
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
