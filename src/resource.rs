//! The resource contract shared by both front ends (Terraform and Crossplane).
//!
//! A resource implements the small mandatory [`Resource`] trait and opts into capabilities
//! ([`ValidateConfig`], [`ModifyPlan`], [`ImportState`], [`UpgradeState`]) by returning
//! `Some(self)` from the matching accessor, the way terraform-plugin-framework resources
//! implement `ResourceWithImportState` and friends. Verbs are idempotent in the crossplane-runtime
//! sense: calling one twice with the same input leaves the world as calling it once.

use crate::context::Context;
use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostics};
use crate::error::{ApplyError, ResourceError};
use crate::schema::Schema;
use async_trait::async_trait;

#[async_trait]
pub trait Resource: Send + Sync + 'static {
    /// Terraform type name (`paved_gpu_compute_pool`). Stable forever: it is stored in state.
    fn type_name(&self) -> &'static str;

    /// The schema. Must be deterministic: Terraform fetches it from several provider processes
    /// per command and panics when they disagree.
    fn schema(&self) -> Schema;

    /// Observe. Returns the current state of the external object identified by `state` (which
    /// may be a fresh import stub holding only `id`), or `None` when it no longer exists.
    /// Arguments the cloud cannot report keep their value from `state`; drifted values are
    /// reported as they are in the cloud so the next plan shows them. Must not change anything.
    async fn read(&self, ctx: &Context, state: &Value) -> Result<Option<Value>, ResourceError>;

    /// Create the object described by `planned` (config values plus known computed values;
    /// computed values still unknown are to be filled in). Returns the wholly-known new state,
    /// which must keep every known planned value unchanged. On failure after anything was
    /// created, the error carries the state of what exists so Terraform records and can destroy
    /// it.
    async fn create(&self, ctx: &Context, planned: &Value) -> Result<Value, ApplyError>;

    /// Move the object from `prior` to `planned` in place (only called when no attribute that
    /// forces replacement changed). Same result and failure rules as `create`; a retry after a
    /// partial failure must converge rather than repeat work.
    async fn update(
        &self,
        ctx: &Context,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, ApplyError>;

    /// Delete the object and wait until it is gone. Deleting something already gone is success.
    async fn delete(&self, ctx: &Context, prior: &Value) -> Result<(), ResourceError>;

    /// An ID for a create that has not happened yet, for front ends that must record the ID
    /// *before* calling `create` so a crash between the cloud call and saving its result cannot
    /// leak the object (the Crossplane front end writes it as the external name first).
    ///
    /// Contract: called only when the planned `id` is unknown; `create` given `planned` with
    /// `id` set to the returned value must create the object under exactly that ID, and a
    /// repeated create with the same ID must converge on the same object (deterministic names
    /// and client tokens) instead of making a second one. Return `None` (the default) when the
    /// cloud assigns IDs; resources whose ID is derivable from the plan (Kubernetes
    /// `namespace/name`) plan it known and need not implement this.
    fn choose_id(&self, _planned: &Value) -> Option<String> {
        None
    }

    /// The Kubernetes kinds this resource's operations read and write, with exactly the
    /// [`crate::cloud::kube::KubeApi`] verbs they use (apply = patch, waits = get + watch).
    /// The Crossplane controller's ClusterRole is generated from these
    /// (`crossplane generate-rbac`), so it grants what the code does and nothing wider; a
    /// resource that calls a new kind or verb must list it here, or its calls are forbidden
    /// in a cluster (the RBAC acceptance test catches that). Resources that touch no
    /// Kubernetes objects keep the empty default.
    fn managed_kinds(&self) -> &'static [crate::cloud::kube::KubeAccess] {
        &[]
    }

    fn validator(&self) -> Option<&dyn ValidateConfig> {
        None
    }
    fn plan_modifier(&self) -> Option<&dyn ModifyPlan> {
        None
    }
    fn importer(&self) -> Option<&dyn ImportState> {
        None
    }
    fn state_upgrader(&self) -> Option<&dyn UpgradeState> {
        None
    }
}

/// Static checks on configuration alone. Runs before the provider is configured and may see
/// unknown values (from other resources): it must skip checks whose inputs are unknown and
/// never contact a cloud.
pub trait ValidateConfig: Send + Sync {
    fn validate(&self, config: &Value) -> Diagnostics;
}

/// What a plan modifier sees besides the plan it edits.
pub struct PlanInputs<'a> {
    /// `None` when creating.
    pub prior: Option<&'a Value>,
    pub config: &'a Value,
}

/// Adjust the generic plan (defaults from the provider, values derivable at plan time, unknowns
/// for what apply will change). Runs after the provider is configured but must not contact a
/// cloud: plans work offline. Attributes that are known in the returned plan must come out of
/// apply unchanged.
pub trait ModifyPlan: Send + Sync {
    fn modify_plan(
        &self,
        ctx: &Context,
        inputs: &PlanInputs<'_>,
        planned: &mut Value,
        requires_replace: &mut Vec<AttrPath>,
        diags: &mut Diagnostics,
    );

    /// Looks at a planned destroy of `prior` (CLIs that honour the `plan_destroy` capability:
    /// Terraform >= 1.3, OpenTofu): a warning tells the user what the destroy loses, an error
    /// refuses it before apply. Offline, like `modify_plan`. Older CLIs never call this, so a
    /// refusal that matters must also be enforced by `Resource::delete`.
    fn plan_destroy(&self, _ctx: &Context, _prior: &Value, _diags: &mut Diagnostics) {}
}

/// Import by a user-facing ID. Returns a stub state that `read` completes; the stub must at least
/// identify the object.
#[async_trait]
pub trait ImportState: Send + Sync {
    async fn import(&self, ctx: &Context, id: &str) -> Result<Value, ResourceError>;
}

/// Upgrade state written by an older schema version (`version`) to the current schema. Given the
/// raw JSON attributes as stored; returns a value of the current schema's type.
pub trait UpgradeState: Send + Sync {
    fn upgrade(&self, version: i64, raw: &serde_json::Value) -> Result<Value, ResourceError>;
}
