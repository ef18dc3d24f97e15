//! Every resource the provider serves. Adding a resource = one folder plus one line in `all`.

pub mod common;
pub mod cost;
pub mod feature_store;
pub mod gpu_compute_pool;
pub mod model_endpoint;
pub mod vector_db;
pub mod workload;

use crate::resource::Resource;
use std::sync::Arc;

pub fn all() -> Vec<Arc<dyn Resource>> {
    vec![
        Arc::new(gpu_compute_pool::GpuComputePool),
        Arc::new(model_endpoint::ModelEndpoint),
        Arc::new(vector_db::VectorDb),
        Arc::new(feature_store::FeatureStore),
    ]
}
