//! The database's arguments as typed Rust, with defaults for blocks the user left out.

use super::engine::Engine;
use crate::cty::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct Collection {
    pub name: String,
    pub dimension: i64,
    pub distance: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct VectorDbSpec {
    pub name: String,
    pub namespace: String,
    pub team: String,
    pub project: Option<String>,
    pub engine: Engine,
    pub version: String,
    pub image: String,
    pub replicas: i64,
    pub allowed_teams: Vec<String>,
    /// Per-team PostgreSQL roles and Secrets (see [`super::team`]).
    pub team_credentials: bool,
    /// Team credentials older than this many days are issued again.
    pub rotation_days: Option<i64>,
    pub storage_size: String,
    pub storage_class: Option<String>,
    pub cpu: String,
    pub memory: String,
    pub collections: Vec<Collection>,
    pub backup: Option<(String, String)>,
    /// Static AWS credentials for the backup upload (access key ID, secret access key).
    pub backup_credentials: Option<(String, String)>,
}

fn s(v: &Value, d: &str) -> String {
    v.as_str().unwrap_or(d).to_string()
}

impl VectorDbSpec {
    pub fn from_value(v: &Value) -> VectorDbSpec {
        let engine = v
            .get("engine")
            .as_str()
            .and_then(Engine::parse)
            .unwrap_or(Engine::Qdrant);
        let version = s(v.get("engine_version"), engine.default_version());
        let image = v
            .get("image")
            .as_str()
            .map_or_else(|| engine.image(&version), str::to_string);
        let (st, r, b) = (v.get("storage"), v.get("resources"), v.get("backup"));
        VectorDbSpec {
            name: s(v.get("name"), ""),
            namespace: s(v.get("namespace"), "default"),
            team: s(v.get("team"), ""),
            project: v.get("project").as_str().map(str::to_string),
            engine,
            version,
            image,
            replicas: v.get("replicas").as_i64().unwrap_or(1),
            allowed_teams: v.get("allowed_teams").as_string_vec().unwrap_or_default(),
            team_credentials: v.get("team_credentials").as_bool().unwrap_or(false),
            rotation_days: v.get("rotation_days").as_i64(),
            storage_size: s(st.get("size"), "10Gi"),
            storage_class: st.get("storage_class").as_str().map(str::to_string),
            cpu: s(r.get("cpu"), "500m"),
            memory: s(r.get("memory"), "1Gi"),
            collections: v
                .get("collection")
                .elements()
                .iter()
                .map(|c| Collection {
                    name: s(c.get("name"), ""),
                    dimension: c.get("dimension").as_i64().unwrap_or(0),
                    distance: s(c.get("distance"), "cosine"),
                })
                .collect(),
            backup: match (b.get("schedule").as_str(), b.get("destination").as_str()) {
                (Some(sc), Some(d)) => Some((sc.to_string(), d.to_string())),
                _ => None,
            },
            // Write-only in Terraform >= 1.11: apply sees it in place of the stored argument.
            backup_credentials: match (
                b.get("access_key_id").as_str(),
                b.get("secret_access_key")
                    .as_str()
                    .or(b.get("secret_access_key_wo").as_str()),
            ) {
                (Some(id), Some(key)) => Some((id.to_string(), key.to_string())),
                _ => None,
            },
        }
    }

    pub fn host(&self) -> String {
        format!("{}.{}.svc.cluster.local", self.name, self.namespace)
    }
    pub fn headless(&self) -> String {
        format!("{}-headless", self.name)
    }
    pub fn secret_name(&self) -> String {
        credentials_secret(&self.name)
    }
    pub fn config_map_name(&self) -> String {
        format!("{}-bootstrap", self.name)
    }
    pub fn backup_credentials_name(&self) -> String {
        format!("{}-backup-credentials", self.name)
    }
    /// The Secret in the database's namespace that hands the team roles' SCRAM verifiers (never
    /// a password) to the roles Job.
    pub fn team_roles_secret_name(&self) -> String {
        format!("{}-team-roles", self.name)
    }
    pub fn backup_name(&self) -> String {
        format!("{}-backup", self.name)
    }
    /// The bootstrap Job is named after what it creates, so a changed collection list runs a
    /// new Job while an unchanged one is not run again.
    pub fn bootstrap_job_name(&self) -> String {
        use sha2::{Digest, Sha256};
        let script = super::engine::bootstrap_script(self.engine, &self.collections)
            + &super::engine::pgvector_sql(&self.collections);
        let h = hex::encode(Sha256::digest(script.as_bytes()));
        format!("{}-bootstrap-{}", self.name, &h[..8])
    }
}

/// The Secret clients (and the credentials ephemeral resource) read a database's connection
/// details from.
pub fn credentials_secret(name: &str) -> String {
    format!("{name}-credentials")
}
