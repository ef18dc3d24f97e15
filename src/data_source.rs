//! The data-source contract: read-only lookups both front ends can serve. Like resources, a data
//! source is a small trait plus a registration line in `data_sources::all`.

use crate::context::Context;
use crate::cty::Value;
use crate::diag::Diagnostics;
use crate::error::ResourceError;
use crate::schema::Schema;
use async_trait::async_trait;

#[async_trait]
pub trait DataSource: Send + Sync + 'static {
    /// Terraform type name (`paved_gpu_instance_types`).
    fn type_name(&self) -> &'static str;

    /// The schema; deterministic, like a resource's.
    fn schema(&self) -> Schema;

    /// Static checks on configuration alone; must skip unknown values and never call a cloud.
    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Reads the data for a wholly-known `config`. Returns a wholly-known value that keeps every
    /// configured argument as written.
    async fn read(&self, ctx: &Context, config: &Value) -> Result<Value, ResourceError>;
}
