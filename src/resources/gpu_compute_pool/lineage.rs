//! The pool as an OpenLineage job with no inputs: what it records is the environment it pins
//! (machine image, CUDA, driver, accelerator), the facet a serving endpoint's runs carry too,
//! so a lineage backend can compare a model's training pool with its serving endpoint.

use super::spec::PoolSpec;
use crate::cty::Value;
use crate::lineage::Job;
use serde_json::json;

pub fn job(v: &Value) -> Option<Job> {
    let s = PoolSpec::from_value(v);
    if s.name.is_empty() {
        return None;
    }
    let mut env = serde_json::Map::new();
    env.insert("resourceType".into(), json!("paved_gpu_compute_pool"));
    if !s.image_id.is_empty() {
        env.insert("images".into(), json!([s.image_id]));
    }
    if let Some(c) = &s.cuda_version {
        env.insert("cudaVersion".into(), json!(c));
    }
    if let Some(d) = &s.driver_version {
        env.insert("driverVersion".into(), json!(d));
    }
    if let Some((a, n)) = &s.accelerator {
        env.insert("accelerator".into(), json!(a));
        env.insert("acceleratorCount".into(), json!(n));
    }
    env.insert("instanceTypes".into(), json!(s.instance_types));
    if let Some(id) = v.get("id").as_str() {
        env.insert("poolId".into(), json!(id));
    }
    for k in ["cloud", "project"] {
        if let Some(x) = v.get(k).as_str() {
            env.insert(k.into(), json!(x));
        }
    }
    Some(Job {
        name: format!("paved_gpu_compute_pool.{}", s.name),
        inputs: vec![],
        owner: v.get("team").as_str().map(String::from),
        environment: env,
    })
}
