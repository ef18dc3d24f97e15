//! The feature store's arguments as typed Rust, with defaults for blocks the user left out.

use super::schema::{DATA_DIR, DEFAULT_IMAGE};
use crate::cty::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum OnlineStore {
    /// A Redis StatefulSet paved runs beside the feature server.
    Redis {
        storage_size: String,
    },
    /// A paved_vector_db, by ID (`namespace/name`).
    VectorDb {
        namespace: String,
        name: String,
    },
    External {
        connection_string: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct FeatureStoreSpec {
    pub name: String,
    pub namespace: String,
    pub team: String,
    /// Teams besides `team` whose pods may call the feature server.
    pub allowed_teams: Vec<String>,
    pub project: Option<String>,
    pub feast_project: String,
    pub offline_store: String,
    pub registry: String,
    pub online: OnlineStore,
    pub replicas: i64,
    pub image: String,
    pub schedule: Option<String>,
}

fn s(v: &Value, d: &str) -> String {
    v.as_str().unwrap_or(d).to_string()
}

pub fn default_feast_project(name: &str) -> String {
    name.replace('-', "_")
}

impl FeatureStoreSpec {
    pub fn from_value(v: &Value) -> FeatureStoreSpec {
        let name = s(v.get("name"), "");
        let o = v.get("online_store");
        let online = match o.get("kind").as_str().unwrap_or("redis") {
            "vector_db" => {
                let id = s(o.get("vector_db_id"), "");
                let (ns, n) = id.split_once('/').unwrap_or(("", &id));
                OnlineStore::VectorDb {
                    namespace: ns.to_string(),
                    name: n.to_string(),
                }
            }
            // Write-only in Terraform >= 1.11: apply sees it in place of the stored argument.
            "external" => OnlineStore::External {
                connection_string: o
                    .get("connection_string")
                    .as_str()
                    .or(o.get("connection_string_wo").as_str())
                    .unwrap_or_default()
                    .to_string(),
            },
            _ => OnlineStore::Redis {
                storage_size: s(o.get("storage_size"), "1Gi"),
            },
        };
        let fs = v.get("feature_server");
        FeatureStoreSpec {
            feast_project: v
                .get("feast_project")
                .as_str()
                .map_or_else(|| default_feast_project(&name), str::to_string),
            namespace: s(v.get("namespace"), "default"),
            team: s(v.get("team"), ""),
            allowed_teams: v.get("allowed_teams").as_string_vec().unwrap_or_default(),
            project: v.get("project").as_str().map(str::to_string),
            offline_store: s(
                v.get("offline_store"),
                &format!("file://{DATA_DIR}/offline"),
            ),
            registry: s(v.get("registry"), &format!("file://{DATA_DIR}/registry.db")),
            online,
            replicas: fs.get("replicas").as_i64().unwrap_or(1),
            image: s(fs.get("image"), DEFAULT_IMAGE),
            schedule: v
                .get("materialization")
                .get("schedule")
                .as_str()
                .map(str::to_string),
            name,
        }
    }

    pub fn server_name(&self) -> String {
        format!("{}-server", self.name)
    }
    pub fn redis_name(&self) -> String {
        format!("{}-redis", self.name)
    }
    pub fn config_map_name(&self) -> String {
        format!("{}-feast", self.name)
    }
    pub fn secret_name(&self) -> String {
        format!("{}-online-store", self.name)
    }
    pub fn data_claim(&self) -> String {
        format!("{}-data", self.name)
    }
    pub fn materialize_name(&self) -> String {
        format!("{}-materialize", self.name)
    }
    pub fn server_url(&self) -> String {
        format!("http://{}.{}.svc.cluster.local", self.name, self.namespace)
    }
    /// File persistence needs the store's volume (a ReadWriteOnce claim).
    pub fn uses_files(&self) -> bool {
        self.registry.starts_with("file://") || self.offline_store.starts_with("file://")
    }
}
