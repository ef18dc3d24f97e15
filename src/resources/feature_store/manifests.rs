//! The Kubernetes objects behind one feature store, as JSON for server-side apply: client
//! configuration, the online store's Secret, a managed Redis, the feature server, scheduled
//! materialization and network policies. Pods are non-root with read-only root file systems.

use super::config::{self, OnlineTarget, SECRET_ENV};
use super::schema::DATA_DIR;
use super::spec::{FeatureStoreSpec, OnlineStore};
use crate::resources::workload::{self, SPEC_ANNOTATION};
use serde_json::{json, Map, Value as Json};

pub const STORE_LABEL: &str = "paved.dev/feature-store";
pub const ROLE_LABEL: &str = "paved.dev/role";
pub const REDIS_IMAGE: &str = "redis:7.2.5-alpine";
pub const SERVER_PORT: i64 = 6566;

pub fn labels(s: &FeatureStoreSpec) -> Map<String, Json> {
    let mut m = workload::labels("feature-store", &s.name, &s.team, s.project.as_deref());
    m.insert(STORE_LABEL.into(), json!(s.name));
    m
}

fn with_role(s: &FeatureStoreSpec, role: &str) -> Map<String, Json> {
    let mut m = labels(s);
    m.insert(ROLE_LABEL.into(), json!(role));
    m
}

fn selector(s: &FeatureStoreSpec, role: &str) -> Json {
    json!({STORE_LABEL: s.name, ROLE_LABEL: role})
}

fn meta(s: &FeatureStoreSpec, name: &str) -> Json {
    json!({"name": name, "namespace": s.namespace, "labels": labels(s)})
}

/// The Secret and key that hold the online store's credential.
pub fn secret_ref(s: &FeatureStoreSpec) -> (String, &'static str) {
    match &s.online {
        OnlineStore::Redis { .. } => (s.secret_name(), "password"),
        OnlineStore::External { .. } => (s.secret_name(), "connection-string"),
        OnlineStore::VectorDb { name, .. } => (format!("{name}-credentials"), "api-key"),
    }
}

/// The Secret paved owns (managed Redis password or external connection string); None when
/// the credential belongs to a vector database.
pub fn secret(s: &FeatureStoreSpec, redis_password: &str) -> Option<Json> {
    let data = match &s.online {
        OnlineStore::Redis { .. } => json!({"password": redis_password}),
        OnlineStore::External { connection_string } => {
            json!({"connection-string": connection_string})
        }
        OnlineStore::VectorDb { .. } => return None,
    };
    Some(
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": meta(s, &s.secret_name()), "type": "Opaque", "stringData": data}),
    )
}

pub fn config_map(s: &FeatureStoreSpec, target: &OnlineTarget) -> Json {
    let (secret_name, secret_key) = secret_ref(s);
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": meta(s, &s.config_map_name()),
        "data": {
            "feature_store.yaml": config::feature_store_yaml(s, target),
            "online_store_endpoint": target.endpoint(),
            "feature_server_url": s.server_url(),
            "secret_env": SECRET_ENV,
            "secret_name": secret_name,
            "secret_key": secret_key
        }
    })
}

pub fn data_claim(s: &FeatureStoreSpec) -> Json {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": meta(s, &s.data_claim()),
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    })
}

fn container_security() -> Json {
    json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}})
}

fn pod_security(uid: i64) -> Json {
    json!({"runAsNonRoot": true, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid, "seccompProfile": {"type": "RuntimeDefault"}})
}

fn secret_env(s: &FeatureStoreSpec) -> Json {
    let (name, key) = secret_ref(s);
    json!({"name": SECRET_ENV, "valueFrom": {"secretKeyRef": {"name": name, "key": key}}})
}

pub fn redis_statefulset(s: &FeatureStoreSpec, size: &str) -> Json {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": meta(s, &s.redis_name()),
        "spec": {
            "serviceName": s.redis_name(),
            "replicas": 1,
            "selector": {"matchLabels": selector(s, "redis")},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": with_role(s, "redis")},
                "spec": {
                    "automountServiceAccountToken": false,
                    "securityContext": pod_security(999),
                    "containers": [{
                        "name": "redis",
                        "image": REDIS_IMAGE,
                        "args": ["--requirepass", format!("$({SECRET_ENV})"), "--appendonly", "yes", "--dir", "/data"],
                        "env": [secret_env(s)],
                        "ports": [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}],
                        "readinessProbe": {"exec": {"command": ["sh", "-c", format!("redis-cli -a \"${SECRET_ENV}\" --no-auth-warning ping | grep -q PONG")]}, "periodSeconds": 5},
                        "livenessProbe": {"tcpSocket": {"port": 6379}, "periodSeconds": 10},
                        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
                        "securityContext": container_security(),
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]
                    }]
                }
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": workload::claim_template_labels(labels(s))},
                                      "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}}]
        }
    })
}

pub fn redis_service(s: &FeatureStoreSpec) -> Json {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta(s, &s.redis_name()),
        "spec": {"selector": selector(s, "redis"), "ports": [{"name": "redis", "port": 6379, "targetPort": 6379, "protocol": "TCP"}]}
    })
}

/// Which teams' pods a NetworkPolicy admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admit {
    /// The owning team only (the managed Redis: its password never leaves the owner).
    Owner,
    /// The owner and `allowed_teams` (the feature server).
    OwnerAndAllowed,
}

/// The client pods' selector: one team as before (`matchLabels`), several as a set.
fn team_selector(s: &FeatureStoreSpec, admit: Admit) -> Json {
    let mut teams = vec![s.team.clone()];
    if admit == Admit::OwnerAndAllowed {
        teams.extend(s.allowed_teams.iter().filter(|t| **t != s.team).cloned());
    }
    if teams.len() == 1 {
        json!({"matchLabels": {"paved.dev/team": s.team}})
    } else {
        json!({"matchExpressions": [{"key": "paved.dev/team", "operator": "In", "values": teams}]})
    }
}

/// Ingress to `role` pods on `port` only from the admitted teams' pods.
pub fn network_policy(
    s: &FeatureStoreSpec,
    name: &str,
    role: &str,
    port: i64,
    admit: Admit,
) -> Json {
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": meta(s, name),
        "spec": {
            "podSelector": {"matchLabels": selector(s, role)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {}, "podSelector": team_selector(s, admit)}],
                         "ports": [{"protocol": "TCP", "port": port}]}]
        }
    })
}

/// A pod running `feast` against the generated feature_store.yaml.
fn feast_pod(s: &FeatureStoreSpec, role: &str, command: Json, restart: &str) -> Json {
    let mut mounts = vec![
        json!({"name": "config", "mountPath": "/feast/repo", "readOnly": true}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    ];
    let mut volumes = vec![
        json!({"name": "config", "configMap": {"name": s.config_map_name()}}),
        json!({"name": "tmp", "emptyDir": {}}),
    ];
    if s.uses_files() {
        mounts.push(json!({"name": "data", "mountPath": DATA_DIR}));
        volumes
            .push(json!({"name": "data", "persistentVolumeClaim": {"claimName": s.data_claim()}}));
    }
    let mut c = json!({
        "name": role,
        "image": s.image,
        "command": command,
        "env": [secret_env(s), {"name": "HOME", "value": "/tmp"}, {"name": "FEAST_USAGE", "value": "False"}],
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"memory": "2Gi"}},
        "securityContext": container_security(),
        "volumeMounts": mounts
    });
    if role == "server" {
        c["ports"] = json!([{"name": "http", "containerPort": SERVER_PORT, "protocol": "TCP"}]);
        c["readinessProbe"] =
            json!({"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5});
        c["livenessProbe"] = json!({"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10, "failureThreshold": 6});
    }
    json!({
        "metadata": {"labels": with_role(s, role)},
        "spec": {
            "restartPolicy": restart,
            "automountServiceAccountToken": false,
            "securityContext": pod_security(1000),
            "containers": [c],
            "volumes": volumes
        }
    })
}

/// Changes only the configuration (feature_store.yaml, the credential) would not otherwise
/// restart the feature server; a hash of them on the pod template does.
pub fn config_hash(s: &FeatureStoreSpec, target: &OnlineTarget, credential: &str) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(config::feature_store_yaml(s, target));
    if let OnlineStore::External { connection_string } = &s.online {
        h.update(connection_string);
    } else {
        h.update(credential);
    }
    hex::encode(h.finalize())[..16].to_string()
}

pub fn server_deployment(s: &FeatureStoreSpec, spec_annotation: &str, config_hash: &str) -> Json {
    let mut m = meta(s, &s.server_name());
    m["annotations"] = json!({SPEC_ANNOTATION: spec_annotation});
    let mut template = feast_pod(
        s,
        "server",
        json!([
            "feast",
            "--chdir",
            "/feast/repo",
            "serve",
            "--host",
            "0.0.0.0",
            "--port",
            SERVER_PORT.to_string()
        ]),
        "Always",
    );
    template["metadata"]["annotations"] = json!({"paved.dev/config-hash": config_hash});
    // A ReadWriteOnce volume cannot be held by an old and a new pod on different nodes.
    let strategy = if s.uses_files() {
        json!({"type": "Recreate"})
    } else {
        json!({"type": "RollingUpdate"})
    };
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": m,
        "spec": {
            "replicas": s.replicas,
            "progressDeadlineSeconds": 300,
            "strategy": strategy,
            "selector": {"matchLabels": selector(s, "server")},
            "template": template
        }
    })
}

pub fn server_service(s: &FeatureStoreSpec) -> Json {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta(s, &s.name),
        "spec": {"selector": selector(s, "server"), "ports": [{"name": "http", "port": 80, "targetPort": "http", "protocol": "TCP"}]}
    })
}

pub fn materialize_cron_job(s: &FeatureStoreSpec, schedule: &str) -> Json {
    let cmd = json!([
        "sh",
        "-c",
        "exec feast --chdir /feast/repo materialize-incremental \"$(date -u +%Y-%m-%dT%H:%M:%S)\""
    ]);
    json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": meta(s, &s.materialize_name()),
        "spec": {
            "schedule": schedule,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {"backoffLimit": 2, "template": feast_pod(s, "materialize", cmd, "OnFailure")}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cty::Value;

    fn spec(kind: &str) -> FeatureStoreSpec {
        let mut v = super::super::schema::schema().block.null_object();
        v.set_attr("name", Value::string("drivers"));
        v.set_attr("team", Value::string("pricing"));
        v.set_attr(
            "online_store",
            Value::object([
                ("kind", Value::string(kind)),
                ("vector_db_id", Value::string("default/docs")),
                ("connection_string", Value::string("r:6379,password=x")),
                ("storage_size", Value::Null),
            ]),
        );
        FeatureStoreSpec::from_value(&v)
    }

    #[test]
    fn credentials_come_from_the_right_secret() {
        assert_eq!(
            secret_ref(&spec("redis")),
            ("drivers-online-store".into(), "password")
        );
        assert_eq!(
            secret_ref(&spec("vector_db")),
            ("docs-credentials".into(), "api-key")
        );
        assert!(secret(&spec("vector_db"), "p").is_none());
        let d = server_deployment(&spec("vector_db"), "{}", "h");
        let env = &d["spec"]["template"]["spec"]["containers"][0]["env"][0];
        assert_eq!(env["valueFrom"]["secretKeyRef"]["name"], "docs-credentials");
    }

    #[test]
    fn file_persistence_mounts_the_volume_and_recreates() {
        let d = server_deployment(&spec("redis"), "{}", "h");
        assert_eq!(d["spec"]["strategy"]["type"], "Recreate");
        let vols = d["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
        assert!(vols
            .iter()
            .any(|v| v["persistentVolumeClaim"]["claimName"] == "drivers-data"));
        assert_eq!(
            d["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"],
            true
        );
    }

    #[test]
    fn the_server_admits_allowed_teams_and_redis_only_the_owner() {
        let mut s = spec("redis");
        s.allowed_teams = vec!["fraud".into(), "pricing".into()];
        let server = network_policy(&s, "drivers", "server", SERVER_PORT, Admit::OwnerAndAllowed);
        assert_eq!(
            server["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0],
            json!({"key": "paved.dev/team", "operator": "In", "values": ["pricing", "fraud"]})
        );
        let redis = network_policy(&s, "drivers-redis", "redis", 6379, Admit::Owner);
        assert_eq!(
            redis["spec"]["ingress"][0]["from"][0]["podSelector"],
            json!({"matchLabels": {"paved.dev/team": "pricing"}})
        );
    }

    #[test]
    fn redis_admits_only_the_team() {
        let n = network_policy(&spec("redis"), "drivers-redis", "redis", 6379, Admit::Owner);
        assert_eq!(
            n["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]["paved.dev/team"],
            "pricing"
        );
        assert_eq!(n["spec"]["podSelector"]["matchLabels"][ROLE_LABEL], "redis");
    }
}
