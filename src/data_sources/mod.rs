//! Every data source the provider serves. Adding one = one file plus one line in `all`.

pub mod gpu_instance_types;
pub mod team_costs;

use crate::data_source::DataSource;
use std::sync::Arc;

pub fn all() -> Vec<Arc<dyn DataSource>> {
    vec![
        Arc::new(gpu_instance_types::GpuInstanceTypes),
        Arc::new(team_costs::TeamCosts),
    ]
}
