//! Management policies and the reconcile decision, as a pure function of what was observed.
//!
//! Kept free of I/O so every combination the crossplane-runtime documentation describes
//! (observe-only, orphan on delete, paused…) is a table test rather than a cluster test.

use std::collections::BTreeSet;

/// One management action (`spec.managementPolicies` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ManagementAction {
    All,
    Observe,
    Create,
    Update,
    Delete,
    LateInitialize,
}

impl ManagementAction {
    fn parse(s: &str) -> Option<ManagementAction> {
        Some(match s {
            "*" => ManagementAction::All,
            "Observe" => ManagementAction::Observe,
            "Create" => ManagementAction::Create,
            "Update" => ManagementAction::Update,
            "Delete" => ManagementAction::Delete,
            "LateInitialize" => ManagementAction::LateInitialize,
            _ => return None,
        })
    }
}

/// The set of actions the controller may take on the external object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policies(BTreeSet<ManagementAction>);

impl Default for Policies {
    fn default() -> Self {
        Policies([ManagementAction::All].into())
    }
}

impl Policies {
    /// Parses `spec.managementPolicies`; absent means `["*"]` (the CRD default). Unknown entries
    /// are ignored (the CRD's enum rejects them before they reach us).
    pub fn from_json(v: Option<&serde_json::Value>) -> Policies {
        match v.and_then(|v| v.as_array()) {
            None => Policies::default(),
            Some(items) => Policies(
                items
                    .iter()
                    .filter_map(|i| i.as_str().and_then(ManagementAction::parse))
                    .collect(),
            ),
        }
    }

    pub fn of(actions: &[ManagementAction]) -> Policies {
        Policies(actions.iter().copied().collect())
    }

    pub fn can(&self, a: ManagementAction) -> bool {
        self.0.contains(&ManagementAction::All) || self.0.contains(&a)
    }

    /// `[]`: the documented way to pause through management policies.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether the controller may change the external object at all. Arguments are validated
    /// (and required) only then: an observe-only resource may name nothing but its external name.
    pub fn may_change(&self) -> bool {
        self.can(ManagementAction::Create) || self.can(ManagementAction::Update)
    }
}

/// `spec.deletionPolicy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeletionPolicy {
    #[default]
    Delete,
    Orphan,
}

impl DeletionPolicy {
    pub fn from_json(v: Option<&serde_json::Value>) -> DeletionPolicy {
        match v.and_then(|v| v.as_str()) {
            Some("Orphan") => DeletionPolicy::Orphan,
            _ => DeletionPolicy::Delete,
        }
    }
}

/// Whether deleting the managed resource deletes the external object: both the deletion policy
/// and the management policies must allow it, so either one can protect an object.
pub fn should_delete(p: &Policies, d: DeletionPolicy) -> bool {
    d == DeletionPolicy::Delete && p.can(ManagementAction::Delete)
}

/// What the reconciler learned before deciding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Facts {
    pub paused: bool,
    pub deleting: bool,
    /// The external object exists (observed by external name).
    pub exists: bool,
    /// The observed object matches the desired plan (an empty second `terraform plan`).
    pub up_to_date: bool,
    /// A create was started (pending marker) and never confirmed, and no external name was
    /// recorded to look for what it made.
    pub create_unknown: bool,
}

/// The one thing to do in this reconcile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// `crossplane.io/paused` or `managementPolicies: []`: touch nothing, report ReconcilePaused.
    Paused,
    /// Deleting and the external object is gone: remove the finalizer.
    Finalize,
    /// Deleting and policies keep the external object: remove the finalizer, leave the object.
    Orphan,
    Delete,
    Create,
    Update,
    /// Nothing to change: exists and is up to date, or drifted but updates are not allowed.
    Observe,
    /// Observe-only and the object does not exist: an error the user must fix.
    Missing,
    /// A previous create may have made something we cannot find: refuse to create again.
    CreateUnknown,
}

pub fn decide(p: &Policies, d: DeletionPolicy, f: Facts) -> Decision {
    use Decision::*;
    if f.paused || p.is_empty() {
        return Paused;
    }
    if f.deleting {
        return match (f.exists, should_delete(p, d)) {
            (false, _) => Finalize,
            (true, true) => Delete,
            (true, false) => Orphan,
        };
    }
    if !f.exists {
        return if f.create_unknown {
            CreateUnknown
        } else if p.can(ManagementAction::Create) {
            Create
        } else {
            Missing
        };
    }
    if !f.up_to_date && p.can(ManagementAction::Update) {
        Update
    } else {
        Observe
    }
}

#[cfg(test)]
mod tests {
    use super::ManagementAction::*;
    use super::*;
    use serde_json::json;

    #[test]
    fn decisions() {
        let all = Policies::default();
        let observe = Policies::of(&[Observe]);
        let no_delete = Policies::of(&[Observe, Create, Update, LateInitialize]);
        let exists = Facts {
            exists: true,
            up_to_date: true,
            ..Facts::default()
        };
        let drifted = Facts {
            exists: true,
            ..Facts::default()
        };
        let gone = Facts::default();
        let none = Policies::of(&[]);
        let del = |f: Facts| Facts {
            deleting: true,
            ..f
        };
        let cases: Vec<(&str, &Policies, DeletionPolicy, Facts, Decision)> = vec![
            (
                "a missing object is created",
                &all,
                DeletionPolicy::Delete,
                gone,
                Decision::Create,
            ),
            (
                "a drifted object is updated",
                &all,
                DeletionPolicy::Delete,
                drifted,
                Decision::Update,
            ),
            (
                "an up-to-date object is only observed",
                &all,
                DeletionPolicy::Delete,
                exists,
                Decision::Observe,
            ),
            (
                "observe-only never updates drift",
                &observe,
                DeletionPolicy::Delete,
                drifted,
                Decision::Observe,
            ),
            (
                "observe-only never creates",
                &observe,
                DeletionPolicy::Delete,
                gone,
                Decision::Missing,
            ),
            (
                "observe-only never deletes",
                &observe,
                DeletionPolicy::Delete,
                del(exists),
                Decision::Orphan,
            ),
            (
                "deletion deletes by default",
                &all,
                DeletionPolicy::Delete,
                del(exists),
                Decision::Delete,
            ),
            (
                "deletionPolicy Orphan keeps the object",
                &all,
                DeletionPolicy::Orphan,
                del(exists),
                Decision::Orphan,
            ),
            (
                "policies without Delete keep the object",
                &no_delete,
                DeletionPolicy::Delete,
                del(exists),
                Decision::Orphan,
            ),
            (
                "deleting a gone object just finalizes",
                &all,
                DeletionPolicy::Delete,
                del(gone),
                Decision::Finalize,
            ),
            (
                "an unconfirmed create without a name is not repeated",
                &all,
                DeletionPolicy::Delete,
                Facts {
                    create_unknown: true,
                    ..gone
                },
                Decision::CreateUnknown,
            ),
            (
                "paused wins over everything",
                &all,
                DeletionPolicy::Delete,
                Facts {
                    paused: true,
                    deleting: true,
                    ..exists
                },
                Decision::Paused,
            ),
            (
                "empty management policies pause",
                &none,
                DeletionPolicy::Delete,
                drifted,
                Decision::Paused,
            ),
        ];
        for (reason, p, d, f, want) in cases {
            assert_eq!(decide(p, d, f), want, "{reason}");
        }
    }

    #[test]
    fn parsing() {
        assert_eq!(Policies::from_json(None), Policies::default());
        let p = Policies::from_json(Some(&json!(["Observe", "LateInitialize"])));
        assert!(p.can(LateInitialize) && p.can(Observe) && !p.can(Create) && !p.may_change());
        assert!(Policies::from_json(Some(&json!(["*"]))).can(Delete));
        assert_eq!(
            DeletionPolicy::from_json(Some(&json!("Orphan"))),
            DeletionPolicy::Orphan
        );
        assert_eq!(DeletionPolicy::from_json(None), DeletionPolicy::Delete);
    }
}
