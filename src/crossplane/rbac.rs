//! The controller's RBAC, derived from what the code does rather than written by hand: the
//! managed kinds and ProviderConfig (from [`crate::resources::all`]), the controller's own
//! calls (listed once here, next to a note of where each is made) and the Kubernetes kinds
//! each resource declares with [`Resource::managed_kinds`]. Verbs are exactly those used, so a
//! rule can only be missing (a forbidden call, reported on the managed resource) and never
//! wider than needed.
//!
//! Cluster-wide: the managed kinds, ProviderConfigs and every namespaced kind resources write
//! (they live in namespaces the managed resources name). Namespaced: Leases (only the
//! `--namespace-for-lease` namespace) and Events (the events of cluster-scoped managed
//! resources are written to `default`, as kube-runtime's `Recorder` does).

use super::names::{KindNames, GROUP};
use crate::cloud::kube::Verb;
use crate::resource::Resource;
use serde_json::{json, Value as J};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The name of the ServiceAccount, ClusterRole, Roles and bindings.
pub const NAME: &str = "provider-paved";
/// Where kube-runtime's `Recorder` writes the events of cluster-scoped objects.
pub const EVENTS_NAMESPACE: &str = "default";

/// One RBAC rule: the resources of one API group and the verbs on them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub group: String,
    pub resources: Vec<String>,
    pub verbs: Vec<Verb>,
}

impl Rule {
    pub fn to_json(&self) -> J {
        json!({
            "apiGroups": [self.group],
            "resources": self.resources,
            "verbs": self.verbs.iter().map(|v| v.as_str()).collect::<Vec<_>>(),
        })
    }
}

/// Collects (group, resource) → verbs and emits one rule per group and verb set.
#[derive(Default)]
struct Rules(BTreeMap<(String, String), Vec<Verb>>);

impl Rules {
    fn grant(&mut self, group: &str, resource: &str, verbs: &[Verb]) {
        let v = self
            .0
            .entry((group.to_string(), resource.to_string()))
            .or_default();
        v.extend_from_slice(verbs);
        v.sort();
        v.dedup();
    }

    fn into_rules(self) -> Vec<Rule> {
        let mut merged: BTreeMap<(String, Vec<Verb>), Vec<String>> = BTreeMap::new();
        for ((group, resource), verbs) in self.0 {
            merged.entry((group, verbs)).or_default().push(resource);
        }
        merged
            .into_iter()
            .map(|((group, verbs), resources)| Rule {
                group,
                resources,
                verbs,
            })
            .collect()
    }
}

/// Everything the controller needs cluster-wide.
pub fn cluster_rules(resources: &[Arc<dyn Resource>]) -> Vec<Rule> {
    let mut rules = Rules::default();
    for r in resources {
        let plural = KindNames::for_type(r.type_name()).plural;
        // cli::run_kind watches (list + watch); Reconcile::patch_meta and late_initialize
        // merge-patch metadata and spec.forProvider.
        rules.grant(GROUP, &plural, &[Verb::List, Verb::Watch, Verb::Patch]);
        // Reconcile::apply_status: server-side apply of the status subresource.
        rules.grant(GROUP, &format!("{plural}/status"), &[Verb::Patch]);
        // Connection secrets carry an owner reference with blockOwnerDeletion, which the
        // OwnerReferencesPermissionEnforcement admission plugin allows only to whoever may
        // update the owner's finalizers.
        rules.grant(GROUP, &format!("{plural}/finalizers"), &[Verb::Update]);
        for a in r.managed_kinds() {
            rules.grant(&a.kind.group(), &a.kind.plural(), a.verbs);
        }
    }
    // budget::committed (team budgets): the live cost report lists paved's Pods and volume
    // claims in every namespace (team_costs::gather).
    rules.grant("", "pods", &[Verb::List]);
    rules.grant("", "persistentvolumeclaims", &[Verb::List]);
    // provider_config::ProviderConfigs::get reads one by name.
    rules.grant(GROUP, "providerconfigs", &[Verb::Get]);
    // ProviderConfig credentials and `…SecretRef` arguments are read; connection secrets are
    // server-side applied (Reconcile::publish_connection: create, then patch).
    rules.grant("", "secrets", &[Verb::Get, Verb::Create, Verb::Patch]);
    rules.into_rules()
}

/// leader::Elector: reads, creates and renews (replaces) its Lease.
pub fn lease_rules() -> Vec<Rule> {
    vec![Rule {
        group: "coordination.k8s.io".into(),
        resources: vec!["leases".into()],
        verbs: vec![Verb::Get, Verb::Create, Verb::Update],
    }]
}

/// kube-runtime's `Recorder`: creates an event, patches it when it repeats.
pub fn event_rules() -> Vec<Rule> {
    vec![Rule {
        group: "events.k8s.io".into(),
        resources: vec!["events".into()],
        verbs: vec![Verb::Create, Verb::Patch],
    }]
}

/// OnBehalf::impersonate (ProviderConfig `kubernetes.impersonateRequester`): the
/// controller sends a change's writes as its requester. Kept in a file of its own
/// (impersonate.yaml), applied only where a ProviderConfig turns impersonation on, since the
/// verb lets the controller act as any user.
pub fn impersonation_objects(namespace: &str) -> Vec<J> {
    let name = format!("{NAME}-impersonate");
    let rules = vec![Rule {
        group: "".into(),
        resources: vec!["users".into()],
        verbs: vec![Verb::Impersonate],
    }];
    vec![
        role("ClusterRole", None, &name, &rules),
        binding("ClusterRoleBinding", "ClusterRole", None, &name, namespace),
    ]
}

fn labels() -> J {
    json!({"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "paved"})
}

fn role(kind: &str, namespace: Option<&str>, name: &str, rules: &[Rule]) -> J {
    let mut meta = json!({"name": name, "labels": labels()});
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "rules": rules.iter().map(Rule::to_json).collect::<Vec<_>>(),
    })
}

fn binding(kind: &str, role_kind: &str, namespace: Option<&str>, name: &str, sa_ns: &str) -> J {
    let mut meta = json!({"name": name, "labels": labels()});
    if let Some(ns) = namespace {
        meta["namespace"] = json!(ns);
    }
    json!({
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": kind,
        "metadata": meta,
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": role_kind, "name": name},
        "subjects": [{"kind": "ServiceAccount", "name": NAME, "namespace": sa_ns}],
    })
}

/// The ServiceAccount, the ClusterRole and the Roles with their bindings, for a controller
/// running in `namespace` (which is also its lease namespace).
pub fn objects(resources: &[Arc<dyn Resource>], namespace: &str) -> Vec<J> {
    let events_name = format!("{NAME}-events");
    vec![
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": NAME, "namespace": namespace, "labels": labels()},
        }),
        role("ClusterRole", None, NAME, &cluster_rules(resources)),
        binding("ClusterRoleBinding", "ClusterRole", None, NAME, namespace),
        role("Role", Some(namespace), NAME, &lease_rules()),
        binding("RoleBinding", "Role", Some(namespace), NAME, namespace),
        role("Role", Some(EVENTS_NAMESPACE), &events_name, &event_rules()),
        binding(
            "RoleBinding",
            "Role",
            Some(EVENTS_NAMESPACE),
            &events_name,
            namespace,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verbs(rules: &[Rule], group: &str, resource: &str) -> Vec<&'static str> {
        rules
            .iter()
            .filter(|r| r.group == group && r.resources.iter().any(|x| x == resource))
            .flat_map(|r| r.verbs.iter().map(|v| v.as_str()))
            .collect()
    }

    #[test]
    fn rules_are_exactly_what_the_code_uses() {
        let rules = cluster_rules(&crate::resources::all());
        assert_eq!(
            verbs(&rules, GROUP, "modelendpoints"),
            ["list", "watch", "patch"]
        );
        assert_eq!(verbs(&rules, GROUP, "gpucomputepools/status"), ["patch"]);
        assert_eq!(verbs(&rules, GROUP, "providerconfigs"), ["get"]);
        // Secrets: managed by vector DBs and feature stores, plus connection secrets; listed
        // across namespaces for a vector DB's team credentials.
        assert_eq!(
            verbs(&rules, "", "secrets"),
            ["get", "list", "watch", "create", "patch", "delete"]
        );
        // Jobs are listed (old bootstrap Jobs), Deployments never are.
        assert_eq!(
            verbs(&rules, "batch", "jobs"),
            ["get", "list", "watch", "create", "patch", "delete"]
        );
        assert_eq!(
            verbs(&rules, "apps", "deployments"),
            ["get", "watch", "create", "patch", "delete"]
        );
        // Pods: only listed, by the budget check (never read, watched or written).
        assert_eq!(verbs(&rules, "", "pods"), ["list"]);
        // Nothing wider: no wildcard, no kind nobody uses.
        for r in &rules {
            assert!(!r.resources.iter().any(|x| x == "*"), "{r:?}");
            assert!(!r.group.contains('*'), "{r:?}");
        }
        assert!(verbs(&rules, "coordination.k8s.io", "leases").is_empty());
    }

    #[test]
    fn each_resource_merges_into_one_rule_per_group_and_verbs() {
        let rules = cluster_rules(&crate::resources::all());
        let mut seen = std::collections::HashSet::new();
        for r in &rules {
            assert!(seen.insert((r.group.clone(), r.verbs.clone())), "{r:?}");
            assert!(r.resources.windows(2).all(|w| w[0] < w[1]), "{r:?}");
        }
    }
}
