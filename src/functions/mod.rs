//! Every provider-defined function. Adding one = a type implementing [`Function`] plus one line
//! in `all`.

mod gpu;

use crate::function::Function;
use std::sync::Arc;

pub fn all() -> Vec<Arc<dyn Function>> {
    vec![
        Arc::new(gpu::GpuHourlyCost),
        Arc::new(gpu::InstanceTypes),
        Arc::new(gpu::CudaCompatible),
        Arc::new(gpu::MinDriver),
    ]
}
