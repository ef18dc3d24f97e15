//! The endpoint as an OpenLineage job: its inputs are the model artifact (digest as the
//! dataset version), the feature store project and the vector DB collections it reads; its
//! environment facet holds what must match the training pool (CUDA, images).

use super::spec::{id_name, EndpointSpec};
use crate::context::Context;
use crate::cty::Value;
use crate::lineage::{Dataset, Job};
use serde_json::json;

pub fn job(ctx: &Context, v: &Value) -> Option<Job> {
    let s = EndpointSpec::from_value(v);
    if s.name.is_empty() || s.model_uri.is_empty() {
        return None;
    }
    let mut inputs = vec![Dataset::at_uri(
        &s.model_uri,
        Some(
            s.model_digest
                .clone()
                .unwrap_or_else(|| s.model_version.clone()),
        ),
    )];
    if let Some(f) = &s.feature_store_id {
        inputs.push(Dataset {
            namespace: "paved_feature_store".into(),
            name: f.clone(),
            version: None,
        });
    }
    if let Some(db) = &s.vector_db_id {
        // The collections when this process has seen the database, else the database itself.
        let collections: Vec<String> = ctx
            .recall("paved_vector_db", db)
            .map(|d| {
                d.get("collection")
                    .elements()
                    .iter()
                    .filter_map(|c| c.get("name").as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        if collections.is_empty() {
            inputs.push(Dataset {
                namespace: "paved_vector_db".into(),
                name: db.clone(),
                version: None,
            });
        }
        for c in collections {
            inputs.push(Dataset {
                namespace: "paved_vector_db".into(),
                name: format!("{db}/{c}"),
                version: None,
            });
        }
    }
    let mut images = vec![s.image.clone()];
    if let Some(c) = &s.canary {
        if !images.contains(&c.image) {
            images.push(c.image.clone());
        }
    }
    let mut env = serde_json::Map::new();
    env.insert("resourceType".into(), json!("paved_model_endpoint"));
    env.insert("modelVersion".into(), json!(s.model_version));
    if let Some(c) = &s.canary {
        env.insert("canaryVersion".into(), json!(c.version));
    }
    env.insert("images".into(), json!(images));
    if let Some(c) = &s.cuda_version {
        env.insert("cudaVersion".into(), json!(c));
    }
    if let Some(p) = &s.pool_id {
        env.insert("poolId".into(), json!(p));
        if let Some(d) = ctx
            .recall("paved_gpu_compute_pool", p)
            .and_then(|pool| pool.get("driver_version").as_str().map(String::from))
        {
            env.insert("driverVersion".into(), json!(d));
        }
    }
    if let Some(p) = &s.project {
        env.insert("project".into(), json!(p));
    }
    Some(Job {
        name: format!("paved_model_endpoint.{}/{}", s.namespace, id_name(&s.name)),
        inputs,
        owner: Some(s.team.clone()).filter(|t| !t.is_empty()),
        environment: env,
    })
}
