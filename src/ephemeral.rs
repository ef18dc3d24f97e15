//! The ephemeral-resource contract (Terraform >= 1.10, OpenTofu >= 1.11): values a configuration
//! uses during one run — typically credentials handed to another provider's write-only
//! argument — that are never stored in a plan or state. Like data sources, one is a small trait
//! plus a registration line in `ephemeral_resources::all`.

use crate::context::Context;
use crate::cty::Value;
use crate::diag::Diagnostics;
use crate::error::ResourceError;
use crate::schema::Schema;
use async_trait::async_trait;

#[async_trait]
pub trait EphemeralResource: Send + Sync + 'static {
    /// Terraform type name (`paved_vector_db_credentials`), used in `ephemeral "…" "…"` blocks.
    fn type_name(&self) -> &'static str;

    /// The schema; deterministic, like a resource's.
    fn schema(&self) -> Schema;

    /// Static checks on configuration alone; must skip unknown values and never call a cloud.
    fn validate(&self, _config: &Value) -> Diagnostics {
        Diagnostics::new()
    }

    /// Opens the resource for a wholly-known `config` (the provider is configured): reads what it
    /// yields, changing nothing. Returns a wholly-known value that keeps the configured arguments
    /// as written. Called again in every run (plan and apply alike), so it must be cheap and
    /// read-only; paved holds nothing open, so there is no renew or close step.
    async fn open(&self, ctx: &Context, config: &Value) -> Result<Value, ResourceError>;
}
