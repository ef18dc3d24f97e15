//! The Kubernetes objects behind one endpoint, as JSON manifests applied with server-side apply.
//! Security defaults (non-root, no token automount, read-only root, ingress only on the serving
//! port) are not options: they are what "compliance by default" means here.

use super::spec::{id_name, EndpointSpec};
use serde_json::{json, Map, Value as Json};

use crate::resources::cost;
pub use crate::resources::workload::SPEC_ANNOTATION;
use crate::resources::workload::{self, label_value};
pub const VERSION_ANNOTATION: &str = "paved.dev/model-version";
pub const URI_ANNOTATION: &str = "paved.dev/model-uri";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Track {
    Stable,
    Canary,
}

impl Track {
    pub fn as_str(self) -> &'static str {
        match self {
            Track::Stable => "stable",
            Track::Canary => "canary",
        }
    }
}

pub fn deployment_name(s: &EndpointSpec, t: Track) -> String {
    match t {
        Track::Stable => s.name.clone(),
        Track::Canary => format!("{}-canary", s.name),
    }
}

pub fn labels(s: &EndpointSpec) -> Map<String, Json> {
    let mut m = workload::labels("model-endpoint", &s.name, &s.team, s.project.as_deref());
    m.insert("paved.dev/endpoint".into(), json!(s.name));
    m
}

fn annotations(s: &EndpointSpec, version: &str, image: &str) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert(URI_ANNOTATION.into(), json!(s.model_uri));
    m.insert(VERSION_ANNOTATION.into(), json!(version));
    if let Some(d) = &s.model_digest {
        m.insert("paved.dev/model-digest".into(), json!(d));
    }
    if let Some(f) = &s.model_format {
        m.insert("paved.dev/model-format".into(), json!(f));
    }
    m.insert("paved.dev/runtime-image".into(), json!(image));
    if let Some(c) = &s.cuda_version {
        m.insert("paved.dev/cuda-version".into(), json!(c));
    }
    if let Some(p) = &s.pool_id {
        m.insert("paved.dev/pool-id".into(), json!(p));
    }
    if let Some(p) = s.gpu_hourly_usd {
        // On the pods too, so a cost report of what runs prices them as the endpoint does.
        m.insert(cost::GPU_PRICE_ANNOTATION.into(), json!(p.to_string()));
    }
    if let Some(v) = &s.vector_db_id {
        m.insert("paved.dev/vector-db".into(), json!(v));
    }
    if let Some(f) = &s.feature_store_id {
        m.insert("paved.dev/feature-store".into(), json!(f));
    }
    m
}

/// Environment and volumes that connect the endpoint to its vector database and feature
/// store. Credentials stay in their Secrets (secretKeyRef), never in the Deployment.
fn connections(s: &EndpointSpec) -> (Vec<Json>, Vec<Json>, Vec<Json>) {
    let (mut env, mut mounts, mut volumes) = (vec![], vec![], vec![]);
    if let Some(id) = &s.vector_db_id {
        let secret = format!("{}-credentials", id_name(id));
        for (var, key) in [
            ("VECTOR_DB_ENDPOINT", "endpoint"),
            ("VECTOR_DB_PORT", "port"),
            ("VECTOR_DB_ENGINE", "engine"),
            ("VECTOR_DB_API_KEY", "api-key"),
        ] {
            env.push(
                json!({"name": var, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}),
            );
        }
    }
    if let Some(id) = &s.feature_store_id {
        let name = id_name(id);
        env.push(json!({"name": "FEAST_FEATURE_SERVER_URL", "valueFrom": {"configMapKeyRef": {"name": format!("{name}-feast"), "key": "feature_server_url"}}}));
        env.push(json!({"name": "FEAST_REPO_PATH", "value": "/etc/feast"}));
        if let Some((secret, key)) = &s.feature_store_secret {
            env.push(json!({"name": crate::resources::feature_store::config::SECRET_ENV, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}));
        }
        mounts.push(json!({"name": "feast", "mountPath": "/etc/feast", "readOnly": true}));
        volumes.push(json!({"name": "feast", "configMap": {"name": format!("{name}-feast"), "items": [{"key": "feature_store.yaml", "path": "feature_store.yaml"}]}}));
    }
    (env, mounts, volumes)
}

fn meta(s: &EndpointSpec, name: &str) -> Json {
    json!({"name": name, "namespace": s.namespace, "labels": labels(s)})
}

pub fn service_account(s: &EndpointSpec) -> Json {
    json!({
        "apiVersion": "v1", "kind": "ServiceAccount",
        "metadata": meta(s, &s.name),
        "automountServiceAccountToken": false
    })
}

pub fn service(s: &EndpointSpec) -> Json {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta(s, &s.name),
        "spec": {
            "type": "ClusterIP",
            "selector": {"paved.dev/endpoint": s.name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]
        }
    })
}

pub fn network_policy(s: &EndpointSpec) -> Json {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": meta(s, &s.name),
        "spec": {
            "podSelector": {"matchLabels": {"paved.dev/endpoint": s.name}},
            "policyTypes": ["Ingress"],
            "ingress": [{"ports": [{"protocol": "TCP", "port": s.port}]}]
        }
    })
}

pub fn pod_disruption_budget(s: &EndpointSpec) -> Json {
    json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": meta(s, &s.name),
        "spec": {
            "selector": {"matchLabels": {"paved.dev/endpoint": s.name}},
            "maxUnavailable": 1
        }
    })
}

pub fn hpa(s: &EndpointSpec) -> Json {
    let (stable, canary) = s.split();
    let (target, min) = if stable > 0 {
        (deployment_name(s, Track::Stable), stable)
    } else {
        (deployment_name(s, Track::Canary), canary)
    };
    json!({
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": meta(s, &s.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target},
            "minReplicas": min,
            "maxReplicas": (s.max_replicas - if stable > 0 { canary } else { 0 }).max(min),
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": s.target_cpu}}}]
        }
    })
}

/// The stable or canary Deployment. `spec_annotation` (stable only) carries the configured
/// arguments so `terraform import` can rebuild them from the cluster alone.
pub fn deployment(s: &EndpointSpec, t: Track, spec_annotation: Option<&str>) -> Json {
    let (stable, canary) = s.split();
    let (replicas, version, image) = match (t, &s.canary) {
        (Track::Canary, Some(c)) => (canary, c.version.clone(), c.image.clone()),
        _ => (stable, s.model_version.clone(), s.image.clone()),
    };
    let name = deployment_name(s, t);
    let mut pod_labels = labels(s);
    pod_labels.insert("paved.dev/track".into(), json!(t.as_str()));
    if let Some(v) = label_value(&version) {
        pod_labels.insert("app.kubernetes.io/version".into(), json!(v));
    }
    let mut env = vec![
        json!({"name": "MODEL_URI", "value": s.model_uri}),
        json!({"name": "MODEL_VERSION", "value": version}),
        json!({"name": "PORT", "value": s.port.to_string()}),
    ];
    if let Some(d) = &s.model_digest {
        env.push(json!({"name": "MODEL_DIGEST", "value": d}));
    }
    if let Some(f) = &s.model_format {
        env.push(json!({"name": "MODEL_FORMAT", "value": f}));
    }
    env.extend(s.env.iter().map(|(k, v)| json!({"name": k, "value": v})));
    let (conn_env, conn_mounts, conn_volumes) = connections(s);
    env.extend(conn_env);
    let mut mounts = vec![json!({"name": "tmp", "mountPath": "/tmp"})];
    mounts.extend(conn_mounts);
    let mut volumes = vec![json!({"name": "tmp", "emptyDir": {}})];
    volumes.extend(conn_volumes);
    let mut requests = json!({"cpu": s.cpu, "memory": s.memory});
    let mut limits = json!({"memory": s.memory});
    let mut tolerations = vec![];
    if s.gpus > 0 {
        requests["nvidia.com/gpu"] = json!(s.gpus);
        limits["nvidia.com/gpu"] = json!(s.gpus);
        tolerations
            .push(json!({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}));
    }
    let mut pod_spec = json!({
        "serviceAccountName": s.name,
        "automountServiceAccountToken": false,
        "securityContext": {
            "runAsNonRoot": true, "runAsUser": 65532, "runAsGroup": 65532, "fsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"}
        },
        "containers": [{
            "name": "server",
            "image": image,
            "args": s.args,
            "ports": [{"name": "http", "containerPort": s.port, "protocol": "TCP"}],
            "env": env,
            "resources": {"requests": requests, "limits": limits},
            "readinessProbe": {"httpGet": {"path": s.readiness_path, "port": "http"}, "periodSeconds": 5, "failureThreshold": 3},
            "livenessProbe": {"httpGet": {"path": s.liveness_path, "port": "http"}, "periodSeconds": 10, "failureThreshold": 3},
            "startupProbe": {"httpGet": {"path": s.readiness_path, "port": "http"}, "periodSeconds": 5,
                              "failureThreshold": (s.startup_timeout.as_secs() / 5).max(1)},
            "securityContext": {
                "allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true,
                "capabilities": {"drop": ["ALL"]}
            },
            "volumeMounts": mounts
        }],
        "volumes": volumes,
        "tolerations": tolerations
    });
    if let Some(p) = &s.pool_id {
        pod_spec["nodeSelector"] = json!({"paved.dev/pool-id": p});
    }
    let mut ann = annotations(s, &version, &image);
    if let Some(a) = spec_annotation {
        ann.insert(SPEC_ANNOTATION.into(), json!(a));
    }
    // GPUs are the scarce resource: roll one replica at a time without a surge replica, so a
    // rollout never needs more GPUs than the endpoint already holds.
    let strategy = if s.gpus > 0 {
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}})
    } else {
        json!({"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}})
    };
    let mut m = labels(s);
    m.insert("paved.dev/track".into(), json!(t.as_str()));
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": s.namespace, "labels": m, "annotations": ann},
        "spec": {
            "replicas": replicas,
            "progressDeadlineSeconds": s.startup_timeout.as_secs().max(10),
            "revisionHistoryLimit": 5,
            "strategy": strategy,
            "selector": {"matchLabels": {"paved.dev/endpoint": s.name, "paved.dev/track": t.as_str()}},
            "template": {
                "metadata": {"labels": pod_labels, "annotations": annotations(s, &version, &image)},
                "spec": pod_spec
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cty::Value;

    fn spec() -> EndpointSpec {
        let mut v = super::super::schema::schema().block.null_object();
        v.set_attr("name", Value::string("llm"));
        v.set_attr("team", Value::string("search"));
        v.set_attr("pool_id", Value::string("gp-1"));
        v.set_attr(
            "model",
            Value::object([
                ("uri", Value::string("s3://m/llm")),
                ("version", Value::string("v1")),
                ("digest", Value::Null),
                ("format", Value::Null),
            ]),
        );
        v.set_attr(
            "resources",
            Value::object([
                ("gpus", Value::int(1)),
                ("cpu", Value::string("2")),
                ("memory", Value::string("8Gi")),
            ]),
        );
        EndpointSpec::from_value(&v)
    }

    #[test]
    fn deployments_are_locked_down_and_carry_lineage() {
        let d = deployment(&spec(), Track::Stable, Some("{}"));
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["containers"][0]["securityContext"]["allowPrivilegeEscalation"],
            false
        );
        assert_eq!(
            pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"],
            1
        );
        assert_eq!(pod["nodeSelector"]["paved.dev/pool-id"], "gp-1");
        assert_eq!(pod["tolerations"][0]["key"], "nvidia.com/gpu");
        assert_eq!(d["metadata"]["annotations"][VERSION_ANNOTATION], "v1");
        assert_eq!(d["metadata"]["labels"]["paved.dev/team"], "search");
        assert_eq!(
            d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], 0,
            "GPU rollouts never surge"
        );
    }

    #[test]
    fn network_policy_admits_only_the_serving_port() {
        let n = network_policy(&spec());
        assert_eq!(
            n["spec"]["ingress"],
            json!([{"ports": [{"protocol": "TCP", "port": 8080}]}])
        );
    }
}
