//! The in-cluster install, generated (`crossplane generate-rbac --out package/rbac`): the RBAC
//! of [`super::rbac`], a plain Deployment, and the Crossplane `DeploymentRuntimeConfig` a
//! package install uses to give Crossplane's Deployment the same hardening. Both run the
//! controller non-root on a read-only root filesystem with leader election, bounded resources
//! and probes on the `--health-port` endpoints ([`super::health`]).
//!
//! The files are committed; `tests/crossplane_rbac.rs` fails when they drift from the code.

use super::rbac;
use crate::resource::Resource;
use serde_json::{json, Value as J};
use std::path::Path;
use std::sync::Arc;

/// The command that regenerates the committed manifests (printed by the drift test).
pub const REGENERATE: &str = "cargo run -- crossplane generate-rbac --out package/rbac";
/// Where the plain manifests install the controller (and its Lease).
pub const DEFAULT_NAMESPACE: &str = "crossplane-system";
/// The controller image `package/release.sh` builds, tagged with the crate version.
pub const IMAGE_REPOSITORY: &str = "ghcr.io/paved/provider-paved";
/// The port `/healthz` and `/readyz` are served on.
pub const HEALTH_PORT: u16 = 8081;
/// The uid and gid of the image's non-root user.
pub const RUN_AS: i64 = 65532;

pub fn image() -> String {
    format!("{IMAGE_REPOSITORY}:v{}", env!("CARGO_PKG_VERSION"))
}

fn args(namespace: &str) -> J {
    json!([
        "--leader-election",
        "--namespace-for-lease",
        namespace,
        "--health-port",
        HEALTH_PORT.to_string(),
        "--poll",
        "60s",
        "--max-reconcile-rate",
        "10"
    ])
}

fn pod_security() -> J {
    json!({
        "runAsNonRoot": true,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    })
}

/// The container's hardening, resources and probes (shared by both manifests).
fn container(name: &str, namespace: &str, with_image: bool) -> J {
    let probe = |path: &str, delay: u32| {
        json!({
            "httpGet": {"path": path, "port": "health"},
            "initialDelaySeconds": delay,
            "periodSeconds": 10,
            "timeoutSeconds": 2,
            "failureThreshold": 3,
        })
    };
    let mut c = json!({
        "name": name,
        "args": args(namespace),
        "ports": [{"name": "health", "containerPort": HEALTH_PORT, "protocol": "TCP"}],
        "securityContext": {
            "allowPrivilegeEscalation": false,
            "readOnlyRootFilesystem": true,
            "runAsNonRoot": true,
            "capabilities": {"drop": ["ALL"]},
        },
        // Measured: 81 MiB peak RSS reconciling 1,000 ModelEndpoints (docs/crossplane.md).
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "livenessProbe": probe("/healthz", 5),
        "readinessProbe": probe("/readyz", 2),
    });
    if with_image {
        c["image"] = json!(image());
        c["imagePullPolicy"] = json!("IfNotPresent");
    }
    c
}

/// A Deployment for installs without Crossplane's package manager (`kubectl apply`).
pub fn deployment(namespace: &str) -> J {
    let labels = json!({"app.kubernetes.io/name": rbac::NAME});
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": rbac::NAME, "namespace": namespace,
                     "labels": {"app.kubernetes.io/name": rbac::NAME, "app.kubernetes.io/part-of": "paved"}},
        "spec": {
            // Leader election makes a second replica a warm standby; one is enough to start.
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "serviceAccountName": rbac::NAME,
                    "securityContext": pod_security(),
                    "containers": [container("provider", namespace, true)],
                },
            },
        },
    })
}

/// The runtime config a Crossplane package install references
/// (`spec.runtimeConfigRef.name: provider-paved`): Crossplane creates the Deployment and the
/// service account, named here after the one [`rbac::objects`] binds, because Crossplane v2
/// grants a provider only its own CRDs, Secrets, ConfigMaps, core Events and Leases and has no
/// permission requests. `package-runtime` is the container Crossplane runs the image in.
pub fn deployment_runtime_config() -> J {
    json!({
        "apiVersion": "pkg.crossplane.io/v1beta1",
        "kind": "DeploymentRuntimeConfig",
        "metadata": {"name": rbac::NAME},
        "spec": {
            "serviceAccountTemplate": {"metadata": {"name": rbac::NAME}},
            "deploymentTemplate": {
                "spec": {
                    "replicas": 1,
                    "selector": {},
                    "template": {
                        "spec": {
                            "securityContext": pod_security(),
                            "containers": [container("package-runtime", DEFAULT_NAMESPACE, false)],
                        },
                    },
                },
            },
        },
    })
}

/// Files and their content, for a controller in `namespace`.
pub fn files(resources: &[Arc<dyn Resource>], namespace: &str) -> Vec<(&'static str, String)> {
    vec![
        ("rbac.yaml", render(&rbac::objects(resources, namespace))),
        (
            "impersonate.yaml",
            render(&rbac::impersonation_objects(namespace)),
        ),
        ("deployment.yaml", render(&[deployment(namespace)])),
        (
            "deploymentruntimeconfig.yaml",
            render(&[deployment_runtime_config()]),
        ),
    ]
}

/// Multi-document YAML with the generated-file header.
pub fn render(docs: &[J]) -> String {
    let mut out = String::from(
        "# Generated by `terraform-provider-paved crossplane generate-rbac`. Do not edit.\n",
    );
    for d in docs {
        out.push_str("---\n");
        out.push_str(&serde_yaml::to_string(d).expect("manifests are plain JSON"));
    }
    out
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Writes [`files`] into `out`; returns the paths written.
pub fn write(
    out: &Path,
    resources: &[Arc<dyn Resource>],
    namespace: &str,
) -> Result<Vec<String>, WriteError> {
    let werr = |p: &Path, e| WriteError::Write {
        path: p.display().to_string(),
        source: e,
    };
    std::fs::create_dir_all(out).map_err(|e| werr(out, e))?;
    let mut written = vec![];
    for (name, text) in files(resources, namespace) {
        let p = out.join(name);
        std::fs::write(&p, text).map_err(|e| werr(&p, e))?;
        written.push(p.display().to_string());
    }
    Ok(written)
}

/// The committed files that differ from what [`write`] would produce for the default namespace.
pub fn check(dir: &Path, resources: &[Arc<dyn Resource>]) -> Vec<String> {
    files(resources, DEFAULT_NAMESPACE)
        .into_iter()
        .filter_map(
            |(name, text)| match std::fs::read_to_string(dir.join(name)) {
                Ok(t) if t == text => None,
                Ok(_) => Some(format!("{name} differs from the generated manifest")),
                Err(_) => Some(format!("{name} is missing")),
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runtime_config_runs_as_the_bound_service_account() {
        let drc = deployment_runtime_config();
        let sa = &drc["spec"]["serviceAccountTemplate"]["metadata"]["name"];
        let objects = rbac::objects(&crate::resources::all(), DEFAULT_NAMESPACE);
        let bound: Vec<&J> = objects
            .iter()
            .filter(|o| o["kind"] == "ClusterRoleBinding")
            .map(|o| &o["subjects"][0]["name"])
            .collect();
        assert_eq!(bound, [sa]);
        let c = &drc["spec"]["deploymentTemplate"]["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["name"], "package-runtime");
        assert!(
            c.get("image").is_none(),
            "Crossplane sets the package image"
        );
    }

    #[test]
    fn deployment_is_hardened_and_probed() {
        let d = deployment("ns");
        let pod = &d["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        assert_eq!(pod["securityContext"]["runAsUser"], RUN_AS);
        assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
        assert!(c["resources"]["limits"]["memory"].is_string());
        let args: Vec<&str> = c["args"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(J::as_str)
            .collect();
        assert!(args
            .windows(2)
            .any(|w| w == ["--namespace-for-lease", "ns"]));
        assert!(args.contains(&"--leader-election"));
        // The flags parse as the controller's own.
        let owned: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        assert!(super::super::cli::parse(&owned).is_ok());
    }
}
