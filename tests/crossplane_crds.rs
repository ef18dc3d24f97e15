//! The committed CRDs under package/crds must be exactly what the generator produces from the
//! current schemas: a schema change (or a new resource in `resources::all()`) without
//! regenerating fails here with the command to run.

use paved::crossplane::crd;
use std::path::Path;

#[test]
fn committed_crds_match_the_schemas() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("package/crds");
    let problems = crd::check(&dir, &paved::resources::all());
    assert!(
        problems.is_empty(),
        "package/crds is out of date:\n  - {}\nRegenerate with:\n  {}\nand commit the result.",
        problems.join("\n  - "),
        crd::REGENERATE
    );
}

#[test]
fn every_resource_has_a_managed_kind() {
    let all = paved::crossplane::crd::all(&paved::resources::all());
    assert_eq!(
        all.len(),
        paved::resources::all().len() + 1,
        "one CRD per resource plus ProviderConfig"
    );
    for (file, c) in all {
        assert_eq!(c["spec"]["group"], "paved.dev", "{file}");
        assert_eq!(c["spec"]["scope"], "Cluster", "{file}");
    }
}
