//! Naming: how a Terraform type name and its snake_case attributes become a Kubernetes kind and
//! camelCase fields. One place, so the CRD generator and the reconciler can never disagree.

/// API group of every paved managed resource and of `ProviderConfig`.
pub const GROUP: &str = "paved.dev";
/// The one served (and stored) version.
pub const VERSION: &str = "v1alpha1";
/// Prefix of every Terraform type name this provider serves.
const TYPE_PREFIX: &str = "paved_";

/// Words spelled differently from plain capitalisation in a kind name (`paved_vector_db` →
/// `VectorDB`). Kept tiny on purpose: a kind name is forever, so every entry is a decision.
const ACRONYMS: &[(&str, &str)] = &[("db", "DB")];

/// The Kubernetes names of one managed-resource kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindNames {
    /// `GpuComputePool`
    pub kind: String,
    /// `gpucomputepools`
    pub plural: String,
    /// `gpucomputepool`
    pub singular: String,
    /// `GpuComputePoolList`
    pub list_kind: String,
}

impl KindNames {
    /// Names for a Terraform type name such as `paved_gpu_compute_pool`.
    pub fn for_type(type_name: &str) -> KindNames {
        let base = type_name.strip_prefix(TYPE_PREFIX).unwrap_or(type_name);
        let kind: String = base
            .split('_')
            .filter(|w| !w.is_empty())
            .map(|w| match ACRONYMS.iter().find(|(k, _)| *k == w) {
                Some((_, a)) => a.to_string(),
                None => capitalise(w),
            })
            .collect();
        let singular = kind.to_ascii_lowercase();
        KindNames {
            plural: pluralise(&singular),
            list_kind: format!("{kind}List"),
            singular,
            kind,
        }
    }

    /// `gpucomputepools.paved.dev`, the CRD's name.
    pub fn crd_name(&self) -> String {
        format!("{}.{GROUP}", self.plural)
    }
}

fn capitalise(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_ascii_uppercase().to_string() + c.as_str(),
        None => String::new(),
    }
}

/// English plural of a lower-case kind, the way Kubernetes resource names are usually written.
fn pluralise(s: &str) -> String {
    if s.ends_with('s') || s.ends_with('x') || s.ends_with("ch") || s.ends_with("sh") {
        format!("{s}es")
    } else if s.ends_with('y') && !s.ends_with("ay") && !s.ends_with("ey") && !s.ends_with("oy") {
        format!("{}ies", &s[..s.len() - 1])
    } else {
        format!("{s}s")
    }
}

/// `instance_type` → `instanceType`. Applied to attribute and block names only, never to map
/// keys (tags and labels are the user's own strings).
pub fn camel(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    let mut upper = false;
    for ch in snake.chars() {
        if ch == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.push(ch.to_ascii_uppercase());
            upper = false;
        } else {
            out.push(ch);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_follow_the_type_name() {
        let n = KindNames::for_type("paved_gpu_compute_pool");
        assert_eq!(n.kind, "GpuComputePool");
        assert_eq!(n.plural, "gpucomputepools");
        assert_eq!(n.singular, "gpucomputepool");
        assert_eq!(n.list_kind, "GpuComputePoolList");
        assert_eq!(n.crd_name(), "gpucomputepools.paved.dev");
        let n = KindNames::for_type("paved_model_endpoint");
        assert_eq!(
            (n.kind.as_str(), n.plural.as_str()),
            ("ModelEndpoint", "modelendpoints")
        );
    }

    #[test]
    fn acronyms_use_the_override_table() {
        let n = KindNames::for_type("paved_vector_db");
        assert_eq!(
            (n.kind.as_str(), n.plural.as_str()),
            ("VectorDB", "vectordbs")
        );
        let n = KindNames::for_type("paved_feature_store");
        assert_eq!(
            (n.kind.as_str(), n.plural.as_str()),
            ("FeatureStore", "featurestores")
        );
    }

    #[test]
    fn plurals() {
        assert_eq!(pluralise("policy"), "policies");
        assert_eq!(pluralise("gateway"), "gateways");
        assert_eq!(pluralise("index"), "indexes");
        assert_eq!(pluralise("class"), "classes");
    }

    #[test]
    fn camel_case() {
        assert_eq!(camel("instance_type"), "instanceType");
        assert_eq!(camel("id"), "id");
        assert_eq!(camel("gpus_total"), "gpusTotal");
        assert_eq!(camel("target_cpu_utilization"), "targetCpuUtilization");
        assert_eq!(camel("_x"), "x");
    }
}
