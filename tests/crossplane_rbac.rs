//! The committed in-cluster install (package/rbac) must be exactly what the code needs: a resource that starts using
//! a new kind or verb (declared in `Resource::managed_kinds`) without regenerating fails here
//! with the command to run.

use paved::crossplane::deploy;
use serde_json::Value as J;
use std::path::Path;

fn package() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("package")
}

#[test]
fn committed_manifests_match_the_code() {
    let problems = deploy::check(&package().join("rbac"), &paved::resources::all());
    assert!(
        problems.is_empty(),
        "package/rbac is out of date:\n  - {}\nRegenerate with:\n  {}\nand commit the result.",
        problems.join("\n  - "),
        deploy::REGENERATE
    );
}

#[test]
fn package_describes_every_kind() {
    let text = std::fs::read_to_string(package().join("crossplane.yaml")).unwrap();
    let meta: J = serde_yaml::from_str(&text).unwrap();
    // Crossplane v2 dropped spec.controller (image, permissionRequests) from the metadata; the
    // RBAC is package/rbac, bound to the service account the DeploymentRuntimeConfig names.
    assert!(meta["spec"].get("controller").is_none());
    let readme = meta["metadata"]["annotations"]["meta.crossplane.io/readme"]
        .as_str()
        .unwrap_or_default();
    for r in paved::resources::all() {
        let kind = paved::crossplane::names::KindNames::for_type(r.type_name()).kind;
        assert!(
            readme.contains(&kind),
            "the package readme does not mention {kind}"
        );
    }
}
