//! CustomResourceDefinitions generated from the same [`Schema`]s the Terraform front end serves,
//! so a managed resource accepts exactly the arguments a Terraform resource does.
//!
//! `spec.forProvider` holds the arguments, `status.atProvider` the computed (non-sensitive)
//! attributes; sensitive values only ever reach the connection secret. The standard Crossplane
//! managed-resource fields, conditions and printer columns are added around them.

use super::convert::{block_in, Part};
use super::names::{camel, KindNames, GROUP, VERSION};
use crate::cty::Type;
use crate::resource::Resource;
use crate::schema::{Block, Mode, Nesting};
use serde_json::{json, Map, Value as J};
use std::path::Path;
use std::sync::Arc;

/// The command that regenerates the committed CRDs (printed by the consistency test).
pub const REGENERATE: &str = "cargo run -- crossplane generate-crds --out package/crds";

fn type_schema(ty: &Type) -> J {
    match ty {
        Type::String => json!({"type": "string"}),
        Type::Number => json!({"type": "number"}),
        Type::Bool => json!({"type": "boolean"}),
        Type::Dynamic => json!({"x-kubernetes-preserve-unknown-fields": true}),
        Type::List(et) | Type::Set(et) => json!({"type": "array", "items": type_schema(et)}),
        Type::Map(et) => json!({"type": "object", "additionalProperties": type_schema(et)}),
        Type::Object(attrs) => {
            let props: Map<String, J> = attrs
                .iter()
                .map(|(k, t)| (camel(k), type_schema(t)))
                .collect();
            json!({"type": "object", "properties": props})
        }
        Type::Tuple(_) => json!({
            "type": "array",
            "items": {"x-kubernetes-preserve-unknown-fields": true}
        }),
    }
}

fn with_description(mut s: J, description: &str) -> J {
    if !description.is_empty() {
        if let J::Object(m) = &mut s {
            // Description first reads best in `kubectl explain` and in the YAML.
            let mut out = Map::new();
            out.insert("description".into(), J::String(description.to_string()));
            out.extend(std::mem::take(m));
            *m = out;
        }
    }
    s
}

/// The OpenAPI schema of one block's `part`. `top` leaves the required list out: at the top of
/// `forProvider` required arguments are enforced by CEL rules that respect management policies
/// (an observe-only resource needs no arguments).
fn block_schema(block: &Block, part: Part, top: bool) -> J {
    let mut props = Map::new();
    let mut required = vec![];
    for a in &block.attributes {
        // Write-only arguments keep secrets out of Terraform state; a managed resource never
        // holds a secret anyway (its sensitive arguments are Secret references), so Crossplane
        // users set the stored form of the argument by reference instead.
        let include = match part {
            Part::Arguments => a.accepts_config() && !a.write_only,
            Part::Observations => a.is_computed() && !a.sensitive,
        };
        if !include {
            continue;
        }
        let mut name = camel(&a.name);
        // Sensitive arguments never sit in a managed resource (anyone who can read it would see
        // them): like other Crossplane providers, the spec names a Secret key instead.
        let schema = if part == Part::Arguments && a.sensitive {
            name.push_str(SECRET_REF_SUFFIX);
            secret_ref(&format!(
                "{} Read from this Secret key; the value never appears in the managed resource.",
                a.description
            ))
        } else {
            with_description(type_schema(&a.ty), &a.description)
        };
        if part == Part::Arguments && a.mode == Mode::Required && !top {
            required.push(J::String(name.clone()));
        }
        props.insert(name, schema);
    }
    for b in &block.blocks {
        if !block_in(part, &b.block) {
            continue;
        }
        let name = camel(&b.name);
        let inner = block_schema(&b.block, part, false);
        let s = match b.nesting {
            Nesting::Single => inner,
            Nesting::List | Nesting::Set => {
                let mut s = json!({"type": "array", "items": inner});
                if part == Part::Arguments && b.max_items > 0 {
                    s["maxItems"] = json!(b.max_items);
                }
                if part == Part::Arguments && b.min_items > 0 {
                    s["minItems"] = json!(b.min_items);
                }
                s
            }
        };
        if part == Part::Arguments && b.min_items > 0 && !top {
            required.push(J::String(name.clone()));
        }
        props.insert(name, with_description(s, &b.block.description));
    }
    let mut s = json!({"type": "object", "properties": props});
    if !required.is_empty() {
        s["required"] = J::Array(required);
    }
    s
}

/// CEL rules for required top-level arguments, applied only when the management policies let
/// the controller create or update (the rule upjet-generated providers use).
fn required_rules(block: &Block) -> Vec<J> {
    let names = block
        .attributes
        .iter()
        .filter(|a| a.mode == Mode::Required)
        .map(|a| {
            if a.sensitive {
                format!("{}{SECRET_REF_SUFFIX}", camel(&a.name))
            } else {
                camel(&a.name)
            }
        })
        .chain(
            block
                .blocks
                .iter()
                .filter(|b| b.min_items > 0)
                .map(|b| camel(&b.name)),
        );
    names
        .map(|n| {
            json!({
                "message": format!("spec.forProvider.{n} is a required parameter"),
                "rule": format!("!('*' in self.managementPolicies || 'Create' in self.managementPolicies || 'Update' in self.managementPolicies) || has(self.forProvider.{n})"),
            })
        })
        .collect()
}

fn managed_spec_fields() -> Map<String, J> {
    let v = json!({
        "deletionPolicy": {
            "description": "What happens to the external object when this managed resource is deleted: Delete removes it, Orphan leaves it. The object is only deleted when managementPolicies also allow Delete.",
            "type": "string",
            "enum": ["Orphan", "Delete"],
            "default": "Delete"
        },
        "managementPolicies": {
            "description": "What the controller may do to the external object: Observe, Create, Update, Delete, LateInitialize, or * for all. [Observe] imports an existing object read-only (set the crossplane.io/external-name annotation).",
            "type": "array",
            "items": {"type": "string", "enum": ["Observe", "Create", "Update", "Delete", "LateInitialize", "*"]},
            "default": ["*"]
        },
        "providerConfigRef": {
            "description": "The ProviderConfig holding the credentials and platform defaults to use.",
            "type": "object",
            "default": {"name": "default"},
            "properties": {
                "name": {"description": "Name of the ProviderConfig.", "type": "string"},
                "policy": {
                    "description": "How the reference is resolved.",
                    "type": "object",
                    "properties": {
                        "resolution": {"type": "string", "enum": ["Required", "Optional"], "default": "Required"},
                        "resolve": {"type": "string", "enum": ["Always", "IfNotPresent"]}
                    }
                }
            },
            "required": ["name"]
        },
        "writeConnectionSecretToRef": {
            "description": "Secret to write connection details to (sensitive attributes and endpoint-like attributes such as url and port). Owned by this managed resource.",
            "type": "object",
            "properties": {
                "name": {"description": "Name of the secret.", "type": "string"},
                "namespace": {"description": "Namespace of the secret.", "type": "string"}
            },
            "required": ["name", "namespace"]
        }
    });
    match v {
        J::Object(m) => m,
        _ => unreachable!("literal object"),
    }
}

fn conditions_schema() -> J {
    json!({
        "description": "Conditions of the resource: Ready (the external object is available) and Synced (the last reconcile succeeded).",
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "lastTransitionTime": {"type": "string", "format": "date-time"},
                "message": {"type": "string"},
                "observedGeneration": {"type": "integer", "format": "int64"},
                "reason": {"type": "string"},
                "status": {"type": "string"},
                "type": {"type": "string"}
            },
            "required": ["lastTransitionTime", "reason", "status", "type"]
        },
        "x-kubernetes-list-map-keys": ["type"],
        "x-kubernetes-list-type": "map"
    })
}

fn printer_columns() -> J {
    json!([
        {"name": "READY", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Ready')].status"},
        {"name": "SYNCED", "type": "string", "jsonPath": ".status.conditions[?(@.type=='Synced')].status"},
        {"name": "EXTERNAL-NAME", "type": "string", "jsonPath": ".metadata.annotations.crossplane\\.io/external-name"},
        {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ])
}

fn crd(
    names: &KindNames,
    categories: &[&str],
    description: &str,
    spec: J,
    status: J,
    columns: J,
) -> J {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": names.crd_name()},
        "spec": {
            "group": GROUP,
            "names": {
                "kind": names.kind,
                "listKind": names.list_kind,
                "plural": names.plural,
                "singular": names.singular,
                "categories": categories,
            },
            "scope": "Cluster",
            "versions": [{
                "name": VERSION,
                "served": true,
                "storage": true,
                "subresources": {"status": {}},
                "additionalPrinterColumns": columns,
                "schema": {"openAPIV3Schema": {
                    "description": description,
                    "type": "object",
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": spec,
                        "status": status,
                    },
                    "required": ["spec"],
                }},
            }],
        },
    })
}

/// The CRD of one managed-resource kind.
pub fn managed_crd(r: &dyn Resource) -> J {
    let names = KindNames::for_type(r.type_name());
    let schema = r.schema();
    let mut spec_props = Map::new();
    spec_props.insert(
        "forProvider".into(),
        with_description(
            block_schema(&schema.block, Part::Arguments, true),
            "The arguments of the external object (the Terraform resource's arguments, in camelCase).",
        ),
    );
    spec_props.extend(managed_spec_fields());
    let mut spec = json!({
        "description": format!("Desired state of the {}.", names.kind),
        "type": "object",
        "properties": spec_props,
        "required": ["forProvider"],
    });
    let rules = required_rules(&schema.block);
    if !rules.is_empty() {
        spec["x-kubernetes-validations"] = J::Array(rules);
    }
    let status = json!({
        "description": format!("Observed state of the {}.", names.kind),
        "type": "object",
        "properties": {
            "atProvider": with_description(
                block_schema(&schema.block, Part::Observations, true),
                "Values the provider computed or observed (sensitive values go to the connection secret instead).",
            ),
            "conditions": conditions_schema(),
            "observedGeneration": {"type": "integer", "format": "int64"},
        },
    });
    let description = format!(
        "{} {} is a paved managed resource (Terraform type {}).",
        schema.block.description,
        names.kind,
        r.type_name()
    );
    crd(
        &names,
        &["crossplane", "managed", "paved"],
        &description,
        spec,
        status,
        printer_columns(),
    )
}

/// Suffix of the field that replaces a sensitive argument in `spec.forProvider`.
pub const SECRET_REF_SUFFIX: &str = "SecretRef";

fn secret_ref(what: &str) -> J {
    json!({
        "description": what,
        "type": "object",
        "properties": {
            "namespace": {"description": "Namespace of the secret.", "type": "string"},
            "name": {"description": "Name of the secret.", "type": "string"},
            "key": {"description": "Key in the secret's data.", "type": "string"}
        },
        "required": ["namespace", "name", "key"]
    })
}

/// The cluster-scoped `ProviderConfig`: credentials and platform defaults for managed resources.
pub fn provider_config_crd() -> J {
    let names = KindNames {
        kind: "ProviderConfig".into(),
        plural: "providerconfigs".into(),
        singular: "providerconfig".into(),
        list_kind: "ProviderConfigList".into(),
    };
    let spec = json!({
        "description": "Credentials and defaults for paved managed resources that reference this ProviderConfig.",
        "type": "object",
        "properties": {
            "credentials": {
                "description": "AWS credentials. Secret: a key holding an AWS shared-credentials file ([default] aws_access_key_id/aws_secret_access_key) or JSON {\"access_key_id\", \"secret_access_key\"}. InjectedIdentity or None: the standard AWS credential chain of the controller (environment, IRSA, instance role).",
                "type": "object",
                "properties": {
                    "source": {"type": "string", "enum": ["None", "Secret", "InjectedIdentity"], "default": "None"},
                    "secretRef": secret_ref("The secret holding the credentials document.")
                },
                "x-kubernetes-validations": [{
                    "rule": "self.source != 'Secret' || has(self.secretRef)",
                    "message": "credentials.secretRef is required when source is Secret"
                }]
            },
            "aws": {
                "description": "AWS settings.",
                "type": "object",
                "properties": {
                    "region": {"description": "Default region for AWS resources.", "type": "string"},
                    "endpoints": {
                        "description": "Custom service endpoints, e.g. LocalStack at http://127.0.0.1:4566.",
                        "type": "object",
                        "properties": {
                            "ec2": {"description": "EC2 endpoint URL.", "type": "string"},
                            "sts": {"description": "STS endpoint URL.", "type": "string"}
                        }
                    },
                    "skipCredentialsValidation": {"description": "Skip the STS GetCallerIdentity check made before the first change.", "type": "boolean"}
                }
            },
            "gcp": {
                "description": "Google Cloud settings for GPU pools with cloud gcp.",
                "type": "object",
                "properties": {
                    "project": {"description": "Default project for GCP resources.", "type": "string"},
                    "region": {"description": "Default region for GCP resources, e.g. us-central1.", "type": "string"},
                    "endpoint": {"description": "Compute API root, e.g. http://127.0.0.1:18090; default https://compute.googleapis.com.", "type": "string"},
                    "credentials": {
                        "description": "Secret: a key holding a service-account key or other Google credentials JSON, or an OAuth 2 access token. InjectedIdentity or None: the controller's application default credentials (GOOGLE_APPLICATION_CREDENTIALS, else the metadata server: GKE workload identity, a VM's service account); with a loopback endpoint and neither GOOGLE_APPLICATION_CREDENTIALS nor GCE_METADATA_HOST set, requests go unauthenticated (the local Compute API).",
                        "type": "object",
                        "properties": {
                            "source": {"type": "string", "enum": ["None", "InjectedIdentity", "Secret"], "default": "None"},
                            "secretRef": secret_ref("The secret holding the credentials JSON or access token.")
                        },
                        "x-kubernetes-validations": [{
                            "rule": "self.source != 'Secret' || has(self.secretRef)",
                            "message": "gcp.credentials.secretRef is required when source is Secret"
                        }]
                    }
                }
            },
            "kubernetes": {
                "description": "The cluster that Kubernetes-backed resources (model endpoints) are created in. InjectedIdentity: the cluster the controller runs in, with its own identity. Secret: a kubeconfig stored in a secret.",
                "type": "object",
                "properties": {
                    "source": {"type": "string", "enum": ["InjectedIdentity", "Secret"], "default": "InjectedIdentity"},
                    "secretRef": secret_ref("The secret holding the kubeconfig."),
                    "impersonateRequester": {"description": "Send the Kubernetes writes of a change with Impersonate-User set to the managed resource's paved.dev/requested-by annotation, so the kube-apiserver authorizes them as the requester and its audit log names both paved and the requester. The controller needs the impersonate verb on users (generate-rbac grants it) and the requester needs RBAC for what the change writes.", "type": "boolean", "default": false}
                },
                "x-kubernetes-validations": [{
                    "rule": "self.source != 'Secret' || has(self.secretRef)",
                    "message": "kubernetes.secretRef is required when source is Secret"
                }]
            },
            "defaultTeam": {"description": "Team charged for resources that do not set team.", "type": "string"},
            "defaultProject": {"description": "Project for resources that do not set project.", "type": "string"},
            "defaultTags": {"description": "Tags applied to every cloud object; resource tags override them.", "type": "object", "additionalProperties": {"type": "string"}},
            "budgets": {
                "description": "Team budgets: a create, or a change that raises a resource's maximum monthly cost, gets Synced=False (reason BudgetExceeded) and creates nothing when the team's committed cost plus the resource's maximum would exceed the budget.",
                "type": "array",
                "items": {"type": "object", "required": ["team", "monthlyUSD"], "properties": {
                    "team": {"type": "string", "minLength": 1},
                    "monthlyUSD": {"type": "number", "minimum": 0}
                }},
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["team"]
            },
            "gpuQuotas": {
                "description": "Team GPU quotas: a create or grow of a GPU pool is refused (Synced=False, reason BudgetExceeded) when the team's pools would hold more GPUs.",
                "type": "array",
                "items": {"type": "object", "required": ["team", "maxGPUs"], "properties": {
                    "team": {"type": "string", "minLength": 1},
                    "maxGPUs": {"type": "integer", "minimum": 0}
                }},
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["team"]
            }
        }
    });
    let status = json!({
        "type": "object",
        "properties": {"conditions": conditions_schema()}
    });
    let columns = json!([
        {"name": "SECRET-NAME", "type": "string", "jsonPath": ".spec.credentials.secretRef.name", "priority": 1},
        {"name": "AGE", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
    ]);
    crd(
        &names,
        &["crossplane", "provider", "paved"],
        "ProviderConfig configures how paved managed resources reach AWS, Google Cloud and Kubernetes, and the platform defaults (team, project, tags) they get.",
        spec,
        status,
        columns,
    )
}

/// Every CRD with its file name (`<group>_<plural>.yaml`, the layout Crossplane packages use).
pub fn all(resources: &[Arc<dyn Resource>]) -> Vec<(String, J)> {
    let mut out = vec![(
        format!("{GROUP}_providerconfigs.yaml"),
        provider_config_crd(),
    )];
    for r in resources {
        let n = KindNames::for_type(r.type_name());
        out.push((
            format!("{GROUP}_{}.yaml", n.plural),
            managed_crd(r.as_ref()),
        ));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// The YAML text committed for a CRD.
pub fn render(crd: &J) -> String {
    let body = serde_yaml::to_string(crd).expect("CRDs are plain JSON and always serialise");
    format!("# Generated by `terraform-provider-paved crossplane generate-crds`. Do not edit.\n---\n{body}")
}

#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Writes every CRD into `out` and removes stale `paved.dev_*.yaml` files (a resource removed
/// from the registry must not leave its CRD behind). Returns the files written.
pub fn write(out: &Path, resources: &[Arc<dyn Resource>]) -> Result<Vec<String>, GenerateError> {
    let werr = |p: &Path, e| GenerateError::Write {
        path: p.display().to_string(),
        source: e,
    };
    std::fs::create_dir_all(out).map_err(|e| werr(out, e))?;
    let crds = all(resources);
    if let Ok(entries) = std::fs::read_dir(out) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with(&format!("{GROUP}_")) && !crds.iter().any(|(n, _)| *n == name) {
                std::fs::remove_file(e.path()).map_err(|err| werr(&e.path(), err))?;
            }
        }
    }
    let mut written = vec![];
    for (name, crd) in crds {
        let p = out.join(&name);
        std::fs::write(&p, render(&crd)).map_err(|e| werr(&p, e))?;
        written.push(name);
    }
    Ok(written)
}

/// Differences between the CRDs in `dir` and what the generator produces now: missing,
/// stale or extra files, by name.
pub fn check(dir: &Path, resources: &[Arc<dyn Resource>]) -> Vec<String> {
    let crds = all(resources);
    let mut problems = vec![];
    for (name, crd) in &crds {
        match std::fs::read_to_string(dir.join(name)) {
            Ok(text) if text == render(crd) => {}
            Ok(_) => problems.push(format!("{name} differs from the generated CRD")),
            Err(_) => problems.push(format!("{name} is missing")),
        }
    }
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with(&format!("{GROUP}_")) && !crds.iter().any(|(n, _)| *n == name) {
                problems.push(format!("{name} has no resource any more"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{Attribute, Schema};

    #[test]
    fn small_schema_becomes_an_openapi_schema() {
        let s = Schema::new(
            0,
            Block::new("A thing.")
                .attr(Attribute::computed("id", Type::String, "The ID."))
                .attr(Attribute::required("instance_type", Type::String, "Type."))
                .attr(Attribute::optional(
                    "tags",
                    Type::map(Type::String),
                    "Tags.",
                ))
                .attr(Attribute::computed("token", Type::String, "Secret.").sensitive())
                .attr(Attribute::optional_computed(
                    "max_size",
                    Type::Number,
                    "Max.",
                ))
                .block(
                    "nodes",
                    Nesting::Single,
                    Block::new("Nodes.")
                        .attr(Attribute::required("min_count", Type::Number, "Min."))
                        .attr(Attribute::optional("spot", Type::Bool, "Spot.")),
                )
                .required_block()
                .block(
                    "rules",
                    Nesting::List,
                    Block::new("Rules.").attr(Attribute::required("port", Type::Number, "P.")),
                ),
        );
        let args = block_schema(&s.block, Part::Arguments, true);
        let p = &args["properties"];
        assert_eq!(
            p["instanceType"],
            json!({"description": "Type.", "type": "string"})
        );
        assert_eq!(p["tags"]["additionalProperties"], json!({"type": "string"}));
        assert_eq!(p["maxSize"]["type"], "number");
        assert!(
            p.get("id").is_none() && p.get("token").is_none(),
            "computed-only attributes are not arguments"
        );
        assert_eq!(p["nodes"]["type"], "object");
        assert_eq!(p["nodes"]["required"], json!(["minCount"]));
        assert_eq!(p["nodes"]["properties"]["spot"]["type"], "boolean");
        assert_eq!(p["rules"]["type"], "array");
        assert_eq!(p["rules"]["items"]["properties"]["port"]["type"], "number");
        assert!(
            args.get("required").is_none(),
            "top-level requirements are CEL rules"
        );

        let obs = block_schema(&s.block, Part::Observations, true);
        let keys: Vec<&String> = obs["properties"].as_object().unwrap().keys().collect();
        assert_eq!(
            keys,
            vec!["id", "maxSize"],
            "sensitive values never reach status"
        );

        let rules = required_rules(&s.block);
        assert_eq!(rules.len(), 2);
        assert_eq!(
            rules[0]["message"],
            "spec.forProvider.instanceType is a required parameter"
        );
        assert!(rules[1]["rule"]
            .as_str()
            .unwrap()
            .ends_with("has(self.forProvider.nodes)"));
    }

    #[test]
    fn managed_crds_carry_the_crossplane_fields() {
        let r = crate::resources::all();
        let c = managed_crd(r[0].as_ref());
        let v = &c["spec"]["versions"][0];
        let spec = &v["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
        assert_eq!(spec["deletionPolicy"]["default"], "Delete");
        assert_eq!(spec["managementPolicies"]["default"], json!(["*"]));
        assert_eq!(
            spec["providerConfigRef"]["default"],
            json!({"name": "default"})
        );
        assert_eq!(c["spec"]["scope"], "Cluster");
        assert_eq!(
            c["spec"]["names"]["categories"],
            json!(["crossplane", "managed", "paved"])
        );
        assert_eq!(v["subresources"], json!({"status": {}}));
        let cols: Vec<&str> = v["additionalPrinterColumns"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["name"].as_str().unwrap())
            .collect();
        assert_eq!(cols, ["READY", "SYNCED", "EXTERNAL-NAME", "AGE"]);
        let yaml = render(&c);
        assert!(yaml.contains("crossplane\\.io/external-name"));
    }
}
