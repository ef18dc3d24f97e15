//! Diagnostics: what a user reads when something is wrong. Every attribute-level problem carries
//! the attribute path so Terraform can point at the exact line of configuration.

use std::fmt;

/// One step of an attribute path: an attribute or block name, a map key or a list index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Attr(String),
    Key(String),
    Index(i64),
}

/// A path into a resource's value, e.g. `nodes.desired` or `tags["team"]`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AttrPath(pub Vec<Step>);

impl AttrPath {
    pub fn root() -> AttrPath {
        AttrPath(vec![])
    }
    /// `AttrPath::attr("nodes").attr("min")`.
    pub fn attr(name: &str) -> AttrPath {
        AttrPath(vec![Step::Attr(name.to_string())])
    }
    pub fn then(mut self, name: &str) -> AttrPath {
        self.0.push(Step::Attr(name.to_string()));
        self
    }
    pub fn key(mut self, key: &str) -> AttrPath {
        self.0.push(Step::Key(key.to_string()));
        self
    }
    pub fn index(mut self, i: usize) -> AttrPath {
        self.0.push(Step::Index(i as i64));
        self
    }
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Step::Attr(a) if i == 0 => write!(f, "{a}")?,
                Step::Attr(a) => write!(f, ".{a}")?,
                Step::Key(k) => write!(f, "[{k:?}]")?,
                Step::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub summary: String,
    pub detail: String,
    pub path: Option<AttrPath>,
}

impl Diagnostic {
    pub fn error(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            summary: summary.into(),
            detail: detail.into(),
            path: None,
        }
    }
    pub fn warning(summary: impl Into<String>, detail: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(summary, detail)
        }
    }
    pub fn at(mut self, path: AttrPath) -> Diagnostic {
        self.path = Some(path);
        self
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(p) = &self.path {
            write!(f, "{p}: ")?;
        }
        write!(f, "{}: {}", self.summary, self.detail)
    }
}

/// An ordered list of diagnostics; errors and warnings travel together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn new() -> Diagnostics {
        Diagnostics(vec![])
    }
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    /// Adds an attribute error: the common case in validation.
    pub fn attr_error(&mut self, path: AttrPath, summary: &str, detail: impl Into<String>) {
        self.0.push(Diagnostic::error(summary, detail).at(path));
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| d.severity == Severity::Error)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn iter(&self) -> impl Iterator<Item = &Diagnostic> {
        self.0.iter()
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_render_like_terraform_references() {
        let p = AttrPath::attr("nodes").then("min");
        assert_eq!(p.to_string(), "nodes.min");
        assert_eq!(
            AttrPath::attr("tags").key("team").to_string(),
            "tags[\"team\"]"
        );
        assert_eq!(
            AttrPath::attr("subnet_ids").index(2).to_string(),
            "subnet_ids[2]"
        );
    }

    #[test]
    fn errors_are_counted_warnings_are_not() {
        let mut d = Diagnostics::new();
        d.push(Diagnostic::warning("w", "x"));
        assert!(!d.has_errors());
        d.attr_error(AttrPath::attr("a"), "bad", "fix it");
        assert!(d.has_errors());
    }
}
