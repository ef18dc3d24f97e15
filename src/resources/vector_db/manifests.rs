//! The Kubernetes objects behind one vector database, as JSON for server-side apply. Security
//! defaults are not options: non-root pods with read-only root file systems, no service account
//! token, a generated credential in a Secret, and ingress only from the owning (or listed) teams.

use super::engine::{self, Engine, AWS_CLI_IMAGE, CURL_IMAGE};
use super::spec::VectorDbSpec;
use super::team;
use crate::resources::workload::{self, SPEC_ANNOTATION};
use serde_json::{json, Map, Value as Json};

pub const ROLE_LABEL: &str = "paved.dev/role";
pub const DB_LABEL: &str = "paved.dev/vector-db";

pub fn labels(s: &VectorDbSpec) -> Map<String, Json> {
    let mut m = workload::labels("vector-db", &s.name, &s.team, s.project.as_deref());
    m.insert(DB_LABEL.into(), json!(s.name));
    m.insert("paved.dev/engine".into(), json!(s.engine.name()));
    m
}

fn with_role(s: &VectorDbSpec, role: &str) -> Map<String, Json> {
    let mut m = labels(s);
    m.insert(ROLE_LABEL.into(), json!(role));
    m
}

fn meta(s: &VectorDbSpec, name: &str) -> Json {
    json!({"name": name, "namespace": s.namespace, "labels": labels(s)})
}

fn engine_selector(s: &VectorDbSpec) -> Json {
    json!({DB_LABEL: s.name, ROLE_LABEL: "engine"})
}

/// Connection details clients mount; `key` is the API key (qdrant) or password (pgvector).
pub fn secret(s: &VectorDbSpec, key: &str) -> Json {
    let port = s.engine.port();
    let mut data = json!({"endpoint": s.host(), "port": port.to_string(), "api-key": key, "engine": s.engine.name()});
    if s.engine == Engine::Pgvector {
        data["username"] = json!("paved");
        data["database"] = json!("paved");
        data["password"] = json!(key);
        data["uri"] = json!(format!(
            "postgresql://paved:{key}@{}:{port}/paved",
            s.host()
        ));
    } else {
        data["url"] = json!(format!("http://{}:{port}", s.host()));
    }
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": meta(s, &s.secret_name()),
        "type": "Opaque",
        "stringData": data
    })
}

/// The backup upload's static AWS credentials, as the environment the AWS CLI reads.
pub fn backup_credentials_secret(s: &VectorDbSpec) -> Option<Json> {
    let (id, key) = s.backup_credentials.as_ref()?;
    Some(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": meta(s, &s.backup_credentials_name()),
        "type": "Opaque",
        "stringData": {"AWS_ACCESS_KEY_ID": id, "AWS_SECRET_ACCESS_KEY": key}
    }))
}

pub fn config_map(s: &VectorDbSpec) -> Json {
    let mut data = json!({
        "bootstrap.sh": engine::bootstrap_script(s.engine, &s.collections),
        "bootstrap.sql": engine::pgvector_sql(&s.collections),
        "backup.sh": engine::backup_dump_script(s.engine, &s.collections)
    });
    // Always present for pgvector: turning team_credentials off runs the script with no team,
    // which revokes every team role.
    if s.engine == Engine::Pgvector {
        let teams = team::credentials(s);
        data["roles.sh"] = json!(team::roles_script(&teams));
        data["roles.sql"] = json!(team::roles_sql(&teams));
    }
    json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": meta(s, &s.config_map_name()),
        "data": data
    })
}

/// Labels of a team's Secret: the database's attribution labels (so its cost and owner are
/// found from the Secret), the team it is for and the database's namespace, by which paved
/// finds every team Secret of a database across namespaces.
pub fn team_secret_labels(s: &VectorDbSpec, team: &str) -> Map<String, Json> {
    let mut m = with_role(s, team::SECRET_ROLE);
    m.insert(team::TEAM_LABEL.into(), json!(team));
    m.insert(team::DB_NAMESPACE_LABEL.into(), json!(s.namespace));
    m
}

/// Selects every team Secret of the database, in any namespace.
pub fn team_secret_selector(s: &VectorDbSpec) -> String {
    format!(
        "{DB_LABEL}={},{ROLE_LABEL}={},{}={}",
        s.name,
        team::SECRET_ROLE,
        team::DB_NAMESPACE_LABEL,
        s.namespace
    )
}

/// One team's connection details, in the team's namespace, where its pods can mount them.
pub fn team_secret(
    s: &VectorDbSpec,
    c: &team::TeamCredential,
    password: &str,
    issued_at: &str,
) -> Json {
    let (role, host, port) = (c.role(), s.host(), s.engine.port());
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {
            "name": team::secret_name(&s.name, &c.team),
            "namespace": team::team_namespace(&c.team),
            "labels": team_secret_labels(s, &c.team),
            "annotations": {team::ISSUED_AT: issued_at, "paved.dev/access": match c.access {
                team::Access::ReadWrite => "read-write",
                team::Access::ReadOnly => "read-only",
            }}
        },
        "type": "Opaque",
        "stringData": {
            "endpoint": host, "port": port.to_string(), "engine": s.engine.name(),
            "username": role, "password": password, "database": "paved",
            "uri": format!("postgresql://{role}:{password}@{host}:{port}/paved")
        }
    })
}

/// The team roles' SCRAM verifiers (role → verifier), in the database's namespace for the
/// roles Job. A verifier does not let anyone log in; the passwords stay in the teams' Secrets.
///
/// Written as `data`, not `stringData`: server-side apply then drops the key of a removed team
/// (keys only ever written through `stringData` are not owned by the field manager, and stay).
pub fn team_roles_secret(s: &VectorDbSpec, verifiers: &[(String, String)]) -> Json {
    use base64::Engine as _;
    let data: Map<String, Json> = verifiers
        .iter()
        .map(|(role, v)| {
            let b64 = base64::engine::general_purpose::STANDARD.encode(v);
            (role.clone(), json!(b64))
        })
        .collect();
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": meta(s, &s.team_roles_secret_name()),
        "type": "Opaque",
        "data": data
    })
}

/// Sets the team roles: creates, re-keys and revokes them (see [`team::roles_sql`]).
pub fn team_roles_job(s: &VectorDbSpec, job: &str, teams: &[team::TeamCredential]) -> Json {
    let mut pod = script_pod(s, team::JOB_ROLE, &s.image, "roles.sh", "Never");
    if let Some(env) = pod["spec"]["containers"][0]["env"].as_array_mut() {
        for (i, c) in teams.iter().enumerate() {
            env.push(
                json!({"name": team::verifier_env(i), "valueFrom": {"secretKeyRef": {
                "name": s.team_roles_secret_name(), "key": c.role()}}}),
            );
        }
    }
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": job, "namespace": s.namespace, "labels": with_role(s, team::JOB_ROLE)},
        "spec": {"backoffLimit": 4, "activeDeadlineSeconds": 600, "template": pod}
    })
}

fn ports(s: &VectorDbSpec) -> Vec<Json> {
    match s.engine {
        Engine::Qdrant => vec![
            json!({"name": "http", "port": 6333, "targetPort": 6333, "protocol": "TCP"}),
            json!({"name": "grpc", "port": 6334, "targetPort": 6334, "protocol": "TCP"}),
        ],
        Engine::Pgvector => {
            vec![json!({"name": "postgres", "port": 5432, "targetPort": 5432, "protocol": "TCP"})]
        }
    }
}

pub fn client_service(s: &VectorDbSpec) -> Json {
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta(s, &s.name),
        "spec": {"type": "ClusterIP", "selector": engine_selector(s), "ports": ports(s)}
    })
}

/// Stable per-replica DNS names (`name-0.name-headless`) for clustering and replication.
pub fn headless_service(s: &VectorDbSpec) -> Json {
    let mut p = ports(s);
    if s.engine == Engine::Qdrant {
        p.push(json!({"name": "p2p", "port": 6335, "targetPort": 6335, "protocol": "TCP"}));
    }
    json!({
        "apiVersion": "v1", "kind": "Service",
        "metadata": meta(s, &s.headless()),
        "spec": {"clusterIP": "None", "publishNotReadyAddresses": true, "selector": engine_selector(s), "ports": p}
    })
}

pub fn network_policy(s: &VectorDbSpec) -> Json {
    let mut teams = vec![s.team.clone()];
    teams.extend(s.allowed_teams.iter().filter(|t| **t != s.team).cloned());
    let client_ports: Vec<Json> = ports(s)
        .iter()
        .map(|p| json!({"protocol": "TCP", "port": p["port"]}))
        .collect();
    json!({
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": meta(s, &s.name),
        "spec": {
            "podSelector": {"matchLabels": engine_selector(s)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [{"namespaceSelector": {}, "podSelector": {"matchExpressions": [
                    {"key": "paved.dev/team", "operator": "In", "values": teams}]}}],
                 "ports": client_ports},
                // Replicas talk to each other (qdrant consensus and shard transfer).
                {"from": [{"podSelector": {"matchLabels": engine_selector(s)}}]}
            ]
        }
    })
}

pub fn pod_disruption_budget(s: &VectorDbSpec) -> Json {
    json!({
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": meta(s, &s.name),
        "spec": {"selector": {"matchLabels": engine_selector(s)}, "maxUnavailable": 1}
    })
}

fn key_ref(s: &VectorDbSpec) -> Json {
    json!({"secretKeyRef": {"name": s.secret_name(), "key": "api-key"}})
}

/// Environment that lets engine tools (psql, pg_dump, curl scripts) reach the database.
fn client_env(s: &VectorDbSpec) -> Vec<Json> {
    match s.engine {
        Engine::Pgvector => vec![
            json!({"name": "PGHOST", "value": s.host()}),
            json!({"name": "PGPORT", "value": "5432"}),
            json!({"name": "PGUSER", "value": "paved"}),
            json!({"name": "PGDATABASE", "value": "paved"}),
            json!({"name": "PGPASSWORD", "valueFrom": key_ref(s)}),
        ],
        Engine::Qdrant => vec![
            json!({"name": "QDRANT_URL", "value": format!("http://{}:6333", s.host())}),
            json!({"name": "QDRANT_API_KEY", "valueFrom": key_ref(s)}),
        ],
    }
}

fn container_security() -> Json {
    json!({"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}})
}

fn pod_security(uid: i64) -> Json {
    json!({"runAsNonRoot": true, "runAsUser": uid, "runAsGroup": uid, "fsGroup": uid, "seccompProfile": {"type": "RuntimeDefault"}})
}

pub fn statefulset(s: &VectorDbSpec, spec_annotation: &str) -> Json {
    let e = s.engine;
    let (env, probe_ready, probe_live, extra_mounts, extra_volumes, command) = match e {
        Engine::Qdrant => {
            let mut env = vec![
                json!({"name": "QDRANT__SERVICE__API_KEY", "valueFrom": key_ref(s)}),
                json!({"name": "QDRANT__STORAGE__SNAPSHOTS_PATH", "value": "/qdrant/snapshots"}),
                json!({"name": "QDRANT__TELEMETRY_DISABLED", "value": "true"}),
            ];
            let mut command = Json::Null;
            if s.replicas > 1 {
                env.push(json!({"name": "QDRANT__CLUSTER__ENABLED", "value": "true"}));
                // Replica 0 starts the Raft cluster; the others join it by its stable name.
                let peer = format!("{}.{}", "$(hostname)", s.headless());
                command = json!(["sh", "-c", format!(
                    "if [ \"${{HOSTNAME##*-}}\" = 0 ]; then exec ./entrypoint.sh --uri http://{peer}:6335; else exec ./entrypoint.sh --bootstrap http://{}-0.{}:6335 --uri http://{peer}:6335; fi",
                    s.name, s.headless())]);
            }
            (
                env,
                json!({"httpGet": {"path": "/readyz", "port": 6333}, "periodSeconds": 5}),
                json!({"httpGet": {"path": "/livez", "port": 6333}, "periodSeconds": 10, "failureThreshold": 6}),
                vec![json!({"name": "snapshots", "mountPath": "/qdrant/snapshots"})],
                vec![json!({"name": "snapshots", "emptyDir": {}})],
                command,
            )
        }
        Engine::Pgvector => (
            vec![
                json!({"name": "POSTGRES_USER", "value": "paved"}),
                json!({"name": "POSTGRES_DB", "value": "paved"}),
                json!({"name": "POSTGRES_PASSWORD", "valueFrom": key_ref(s)}),
                json!({"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"}),
            ],
            json!({"exec": {"command": ["pg_isready", "-U", "paved", "-d", "paved"]}, "periodSeconds": 5}),
            json!({"exec": {"command": ["pg_isready", "-U", "paved", "-d", "paved"]}, "periodSeconds": 10, "failureThreshold": 6}),
            vec![json!({"name": "run", "mountPath": "/var/run/postgresql"})],
            vec![json!({"name": "run", "emptyDir": {}})],
            Json::Null,
        ),
    };
    let mut mounts = vec![
        json!({"name": "data", "mountPath": e.data_path()}),
        json!({"name": "tmp", "mountPath": "/tmp"}),
    ];
    mounts.extend(extra_mounts);
    let mut volumes = vec![json!({"name": "tmp", "emptyDir": {}})];
    volumes.extend(extra_volumes);
    let container_ports: Vec<Json> = ports(s)
        .iter()
        .map(|p| json!({"name": p["name"], "containerPort": p["port"], "protocol": "TCP"}))
        .collect();
    let mut container = json!({
        "name": e.name(),
        "image": s.image,
        "ports": container_ports,
        "env": env,
        "resources": {"requests": {"cpu": s.cpu, "memory": s.memory}, "limits": {"memory": s.memory}},
        "readinessProbe": probe_ready,
        "livenessProbe": probe_live,
        "securityContext": container_security(),
        "volumeMounts": mounts
    });
    if !command.is_null() {
        container["command"] = command;
    }
    let mut claim = json!({
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": s.storage_size}}
    });
    if let Some(c) = &s.storage_class {
        claim["storageClassName"] = json!(c);
    }
    let mut ann = Map::new();
    ann.insert(SPEC_ANNOTATION.into(), json!(spec_annotation));
    ann.insert("paved.dev/engine-version".into(), json!(s.version));
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": s.name, "namespace": s.namespace, "labels": labels(s), "annotations": ann},
        "spec": {
            "serviceName": s.headless(),
            "replicas": s.replicas,
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": engine_selector(s)},
            // Destroying the database destroys its volumes; scaling down keeps them.
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
            "template": {
                "metadata": {"labels": with_role(s, "engine")},
                "spec": {
                    "automountServiceAccountToken": false,
                    "securityContext": pod_security(e.uid()),
                    "containers": [container],
                    "volumes": volumes
                }
            },
            "volumeClaimTemplates": [{"metadata": {"name": "data", "labels": workload::claim_template_labels(labels(s))}, "spec": claim}]
        }
    })
}

fn script_pod(s: &VectorDbSpec, role: &str, image: &str, script: &str, restart: &str) -> Json {
    let uid = if image == CURL_IMAGE {
        100
    } else {
        s.engine.uid()
    };
    json!({
        "metadata": {"labels": with_role(s, role)},
        "spec": {
            "restartPolicy": restart,
            "automountServiceAccountToken": false,
            "securityContext": pod_security(uid),
            "containers": [{
                "name": role,
                "image": image,
                "command": ["sh", format!("/bootstrap/{script}")],
                "env": client_env(s),
                "securityContext": container_security(),
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                "volumeMounts": [{"name": "scripts", "mountPath": "/bootstrap", "readOnly": true},
                                  {"name": "tmp", "mountPath": "/tmp"}]
            }],
            "volumes": [{"name": "scripts", "configMap": {"name": s.config_map_name()}}, {"name": "tmp", "emptyDir": {}}]
        }
    })
}

fn tool_image(s: &VectorDbSpec) -> &str {
    match s.engine {
        Engine::Pgvector => &s.image,
        Engine::Qdrant => CURL_IMAGE,
    }
}

/// Creates the collections once the engine is ready.
pub fn bootstrap_job(s: &VectorDbSpec) -> Json {
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": s.bootstrap_job_name(), "namespace": s.namespace, "labels": with_role(s, "bootstrap")},
        "spec": {
            "backoffLimit": 4,
            "activeDeadlineSeconds": 600,
            "template": script_pod(s, "bootstrap", tool_image(s), "bootstrap.sh", "Never")
        }
    })
}

/// Dumps (pgvector) or snapshots (qdrant) into a scratch volume, then copies it to S3.
pub fn backup_cron_job(s: &VectorDbSpec, schedule: &str, destination: &str) -> Json {
    let mut pod = script_pod(s, "backup", tool_image(s), "backup.sh", "OnFailure");
    let mut dump = pod["spec"]["containers"][0].take();
    if let Some(m) = dump["volumeMounts"].as_array_mut() {
        m.push(json!({"name": "backup", "mountPath": "/backup"}));
    }
    pod["spec"]["initContainers"] = json!([dump]);
    if let Some(v) = pod["spec"]["volumes"].as_array_mut() {
        v.push(json!({"name": "backup", "emptyDir": {}}));
    }
    pod["spec"]["containers"] = json!([{
        "name": "upload",
        "image": AWS_CLI_IMAGE,
        "command": ["sh", "-c", "aws s3 cp --recursive /backup \"$DESTINATION/$(date -u +%Y%m%dT%H%M%SZ)/\""],
        "env": [{"name": "DESTINATION", "value": destination.trim_end_matches('/')}, {"name": "HOME", "value": "/tmp"}],
        "securityContext": container_security(),
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "volumeMounts": [{"name": "backup", "mountPath": "/backup", "readOnly": true}, {"name": "tmp", "mountPath": "/tmp"}]
    }]);
    // Static credentials come from their own Secret, never from the pod spec.
    if s.backup_credentials.is_some() {
        pod["spec"]["containers"][0]["envFrom"] =
            json!([{"secretRef": {"name": s.backup_credentials_name()}}]);
    }
    // The upload container shares the dump's scratch volume, so the pod runs as one identity.
    pod["spec"]["securityContext"] = pod_security(s.engine.uid());
    json!({
        "apiVersion": "batch/v1", "kind": "CronJob",
        "metadata": meta(s, &s.backup_name()),
        "spec": {
            "schedule": schedule,
            "concurrencyPolicy": "Forbid",
            "successfulJobsHistoryLimit": 3,
            "failedJobsHistoryLimit": 3,
            "jobTemplate": {"spec": {"backoffLimit": 2, "template": pod}}
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cty::Value;

    fn spec(engine: &str, replicas: i64) -> VectorDbSpec {
        let mut v = super::super::schema::schema().block.null_object();
        v.set_attr("name", Value::string("docs"));
        v.set_attr("namespace", Value::string("ml"));
        v.set_attr("team", Value::string("search"));
        v.set_attr("engine", Value::string(engine));
        v.set_attr("replicas", Value::int(replicas));
        v.set_attr("allowed_teams", Value::string_list(["ranking"]));
        VectorDbSpec::from_value(&v)
    }

    fn with_backup(key: &str, write_only: bool) -> VectorDbSpec {
        let mut v = super::super::schema::schema().block.null_object();
        v.set_attr("name", Value::string("docs"));
        v.set_attr("namespace", Value::string("ml"));
        v.set_attr("team", Value::string("search"));
        v.set_attr("engine", Value::string("pgvector"));
        let mut b = super::super::schema::schema()
            .block
            .nested("backup")
            .unwrap()
            .block
            .null_object();
        b.set_attr("schedule", Value::string("0 3 * * *"));
        b.set_attr("destination", Value::string("s3://b/docs"));
        b.set_attr("access_key_id", Value::string("AKIDEXAMPLE"));
        let attr = if write_only {
            "secret_access_key_wo"
        } else {
            "secret_access_key"
        };
        b.set_attr(attr, Value::string(key));
        v.set_attr("backup", b);
        VectorDbSpec::from_value(&v)
    }

    #[test]
    fn backup_credentials_live_in_their_own_secret_whichever_form_gave_them() {
        for wo in [false, true] {
            let s = with_backup("s3cr3t-key", wo);
            let secret = backup_credentials_secret(&s).unwrap();
            assert_eq!(secret["metadata"]["name"], "docs-backup-credentials");
            assert_eq!(secret["stringData"]["AWS_SECRET_ACCESS_KEY"], "s3cr3t-key");
            assert_eq!(secret["stringData"]["AWS_ACCESS_KEY_ID"], "AKIDEXAMPLE");
            let cj = backup_cron_job(&s, "0 3 * * *", "s3://b/docs");
            assert!(!cj.to_string().contains("s3cr3t-key"), "key in the CronJob");
            assert_eq!(
                cj["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["envFrom"]
                    [0]["secretRef"]["name"],
                "docs-backup-credentials"
            );
        }
        let plain = spec("pgvector", 1);
        assert!(backup_credentials_secret(&plain).is_none());
    }

    #[test]
    fn network_policy_admits_the_team_and_listed_teams_only() {
        let n = network_policy(&spec("qdrant", 1));
        let from = &n["spec"]["ingress"][0]["from"][0]["podSelector"]["matchExpressions"][0];
        assert_eq!(from["key"], "paved.dev/team");
        assert_eq!(from["values"], json!(["search", "ranking"]));
        assert_eq!(n["spec"]["policyTypes"], json!(["Ingress"]));
    }

    #[test]
    fn statefulset_is_locked_down_and_keeps_the_key_out_of_the_manifest() {
        let s = spec("pgvector", 1);
        let sts = statefulset(&s, "{}");
        let pod = &sts["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(pod["automountServiceAccountToken"], false);
        assert_eq!(
            pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"],
            true
        );
        assert_eq!(
            sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"],
            "10Gi"
        );
        assert_eq!(
            sts["spec"]["persistentVolumeClaimRetentionPolicy"]["whenDeleted"],
            "Delete"
        );
        let env = pod["containers"][0]["env"].as_array().unwrap();
        let pw = env
            .iter()
            .find(|e| e["name"] == "POSTGRES_PASSWORD")
            .unwrap();
        assert!(pw["value"].is_null() && pw["valueFrom"]["secretKeyRef"]["key"] == "api-key");
    }

    #[test]
    fn qdrant_clusters_only_with_several_replicas() {
        let one = statefulset(&spec("qdrant", 1), "{}");
        assert!(one["spec"]["template"]["spec"]["containers"][0]["command"].is_null());
        let three = statefulset(&spec("qdrant", 3), "{}");
        let c = &three["spec"]["template"]["spec"]["containers"][0];
        assert!(c["command"][2]
            .as_str()
            .unwrap()
            .contains("--bootstrap http://docs-0.docs-headless:6335"));
        assert!(c["env"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["name"] == "QDRANT__CLUSTER__ENABLED"));
    }

    #[test]
    fn team_secrets_live_in_the_team_namespace_and_the_job_reads_verifiers_only() {
        let mut s = spec("pgvector", 1);
        s.team_credentials = true;
        let teams = team::credentials(&s);
        let sec = team_secret(&s, &teams[1], "pw-ranking", "2026-12-04T12:00:00Z");
        assert_eq!(sec["metadata"]["namespace"], "ranking");
        assert_eq!(sec["metadata"]["name"], "docs-ranking-credentials");
        assert_eq!(sec["metadata"]["labels"]["paved.dev/team"], "search");
        assert_eq!(sec["metadata"]["labels"][team::TEAM_LABEL], "ranking");
        assert_eq!(sec["metadata"]["labels"][team::DB_NAMESPACE_LABEL], "ml");
        assert_eq!(
            sec["metadata"]["annotations"][team::ISSUED_AT],
            "2026-12-04T12:00:00Z"
        );
        assert_eq!(sec["stringData"]["username"], "team_ranking");
        assert_eq!(
            sec["stringData"]["uri"],
            "postgresql://team_ranking:pw-ranking@docs.ml.svc.cluster.local:5432/paved"
        );
        let job = team_roles_job(&s, "docs-team-roles-x", &teams);
        let text = job.to_string();
        assert!(!text.contains("pw-ranking") && !text.contains("SCRAM"));
        let env = job["spec"]["template"]["spec"]["containers"][0]["env"]
            .as_array()
            .unwrap();
        let v1 = env
            .iter()
            .find(|e| e["name"] == "PAVED_VERIFIER_1")
            .unwrap();
        assert_eq!(v1["valueFrom"]["secretKeyRef"]["name"], "docs-team-roles");
        assert_eq!(v1["valueFrom"]["secretKeyRef"]["key"], "team_ranking");
        assert!(config_map(&s)["data"]["roles.sql"]
            .as_str()
            .unwrap()
            .contains("'team_ranking', 'r'"));
        assert_eq!(
            team_secret_selector(&s),
            "paved.dev/vector-db=docs,paved.dev/role=team-credential,paved.dev/vector-db-namespace=ml"
        );
    }

    #[test]
    fn bootstrap_job_is_named_after_its_collections() {
        let mut a = spec("qdrant", 1);
        let j1 = bootstrap_job(&a)["metadata"]["name"].clone();
        a.collections.push(super::super::spec::Collection {
            name: "x".into(),
            dimension: 3,
            distance: "cosine".into(),
        });
        let j2 = bootstrap_job(&a)["metadata"]["name"].clone();
        assert_ne!(j1, j2);
        assert_eq!(
            bootstrap_job(&a)["spec"]["template"]["metadata"]["labels"][ROLE_LABEL],
            "bootstrap"
        );
    }
}
