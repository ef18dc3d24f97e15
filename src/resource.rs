//! The resource contract shared by both front ends (Terraform and Crossplane).
//!
//! A resource implements the small mandatory [`Resource`] trait and opts into capabilities
//! ([`ValidateConfig`], [`ModifyPlan`], [`ImportState`], [`UpgradeState`]) by returning
//! `Some(self)` from the matching accessor, the way terraform-plugin-framework resources
//! implement `ResourceWithImportState` and friends. The verbs follow crossplane-runtime's
//! managed-resource contract: idempotent, and two-phase (a verb starts a change, observing
//! reports its progress).

use crate::context::Context;
use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostics};
use crate::error::{ApplyError, ResourceError};
use crate::schema::Schema;
use async_trait::async_trait;
use std::time::Duration;

/// How far an external object has got towards what was last asked of it, judged by observing
/// it. The front ends act on this instead of guessing from attribute names: Terraform keeps
/// observing until `Ready` (or fails the apply on `Failed`); the Crossplane controller maps it
/// to the `Ready` condition and requeues.
#[derive(Debug, Clone, PartialEq)]
pub enum Readiness {
    /// Serving what was asked.
    Ready,
    /// Still converging by itself (instances starting, a rollout in progress); the message says
    /// what it waits for, for a progress line or a condition message.
    Progressing(String),
    /// Will not get there without intervention (a progress deadline passed, a bootstrap Job
    /// gave up): the front end calls [`Resource::recover`] and reports the failure. `summary`
    /// is a short sentence ("Rollout failed"), `detail` what Kubernetes or the cloud said and
    /// where to look.
    Failed { summary: String, detail: String },
}

/// What [`Resource::read`] found: the state (as in a Terraform state) and its readiness.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub state: Value,
    pub readiness: Readiness,
}

/// Where a started delete stands.
#[derive(Debug, Clone, PartialEq)]
pub enum Deletion {
    /// Nothing of the object is left.
    Gone,
    /// Deletion was requested and is still running; the message says what is left.
    InProgress(String),
}

/// What [`Resource::recover`] started after a failure was observed.
#[derive(Debug, Clone, PartialEq)]
pub enum Recovery {
    /// Nothing automatic: the failed revision stays for inspection and the failure is reported.
    None,
    /// Restoring the last revision that was ready: the front ends observe `to` (a state of the
    /// restored revision) until it is ready again. `note` tells the user what was restored.
    RolledBack { to: Value, note: String },
    /// Removing what a failed create made (nothing to go back to): the front ends delete until
    /// [`Deletion::Gone`]. `note` says so.
    Removed { note: String },
}

/// The verbs whose time limit [`Resource::timeout`] gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Create,
    Update,
    Delete,
}

impl Operation {
    /// The key of the operation in a resource's `timeouts` block.
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::Create => "create",
            Operation::Update => "update",
            Operation::Delete => "delete",
        }
    }
}

/// The resource contract. The mutating verbs are two-phase, as in crossplane-runtime: they
/// *start* a change and return once the cloud has accepted it (bounded by API latency, never
/// by a rollout or instances starting); [`Resource::read`] reports progress and failure. The
/// Terraform front end waits by observing (see [`crate::converge`]); the Crossplane controller
/// requeues, so no worker is held while something rolls out.
///
/// Every verb is idempotent: called again with the same input (after a crash, a requeue or a
/// retry) it converges on the same external objects instead of making new ones.
/// Cancellation: verbs make a bounded number of API calls and may ignore `ctx.cancel`; anything
/// that waits (only cleanup after a failed step) must honour it.
#[async_trait]
pub trait Resource: Send + Sync + 'static {
    /// Terraform type name (`paved_gpu_compute_pool`). Stable forever: it is stored in state.
    fn type_name(&self) -> &'static str;

    /// The schema. Must be deterministic: Terraform fetches it from several provider processes
    /// per command and panics when they disagree.
    fn schema(&self) -> Schema;

    /// Observe. Returns the current state of the external object identified by `state` (which
    /// may be a fresh import stub holding only `id`) and how far it is towards ready, or `None`
    /// when it definitely does not exist ("not found" means the API said so; an object that
    /// exists but cannot be read, or a failed call, is an `Err` — never `None`, or a delete
    /// would forget a running object). Arguments the cloud cannot report keep their value from
    /// `state`; drifted values are reported as they are in the cloud so the next plan shows
    /// them. Makes no change and does not wait: a few API calls.
    async fn read(&self, ctx: &Context, state: &Value) -> Result<Option<Observed>, ResourceError>;

    /// Starts creating the object described by `planned` (config values plus known computed
    /// values; computed values still unknown are to be filled in). Returns the wholly-known
    /// state of what was requested, which must keep every known planned value unchanged;
    /// readiness comes from `read`. Non-blocking. On failure after anything was created, the
    /// error carries the state of what exists so Terraform records and can destroy it; a
    /// failure before anything exists leaves nothing behind.
    async fn create(&self, ctx: &Context, planned: &Value) -> Result<Value, ApplyError>;

    /// Starts moving the object from `prior` to `planned` in place (only called when no
    /// attribute that forces replacement changed). Same result and failure rules as `create`;
    /// a retry after a partial failure converges rather than repeating work. A resource that
    /// can roll back records here what to roll back to (on the object itself, so the Crossplane
    /// front end, which keeps no history, can recover too).
    async fn update(
        &self,
        ctx: &Context,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, ApplyError>;

    /// Starts deleting the object; returns [`Deletion::Gone`] once nothing is left, else
    /// [`Deletion::InProgress`] (the front ends call it again until gone, so a repeated call
    /// must not fail on what is already being deleted). Deleting something already gone is
    /// `Gone`. Non-blocking.
    async fn delete(&self, ctx: &Context, prior: &Value) -> Result<Deletion, ResourceError>;

    /// Called by the front ends once after `read` reported [`Readiness::Failed`] for a change
    /// they made: starts the automatic recovery the configuration asks for (roll back to the
    /// revision that was ready before, or remove what a failed create made). `observed` is the
    /// state `read` returned. Non-blocking, like the verbs; the default recovers nothing.
    async fn recover(
        &self,
        _ctx: &Context,
        _observed: &Value,
        _failure: &str,
    ) -> Result<Recovery, ApplyError> {
        Ok(Recovery::None)
    }

    /// Blocks until something `read` reports about `state` may have changed, or `within`
    /// passed, or `ctx.cancel` fired (then returns at once). Only the Terraform front end's
    /// waits call it; resources with a watch API use it so a wait ends as soon as the cloud
    /// reports, the default polls every two seconds.
    async fn await_change(&self, ctx: &Context, _state: &Value, within: Duration) {
        let _ = ctx.cancel.sleep(within.min(Duration::from_secs(2))).await;
    }

    /// How long the Terraform front end waits for `op` on `v` to be ready (or gone) before it
    /// gives up: the `timeouts` block when the resource has one, else 20 minutes.
    fn timeout(&self, v: &Value, op: Operation) -> Duration {
        crate::resources::common::timeout(v, op.as_str(), Duration::from_secs(20 * 60))
    }

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

    /// What a state of this resource commits its team to, for team budgets and GPU quotas
    /// ([`crate::budget`]): the most it can cost per month at its bounds, the GPUs it can
    /// provision, and what it runs now. Both front ends check it before `create` and before an
    /// `update` that raises it, so the figures must come from the state alone (no cloud call).
    /// `None` (the default): budgets do not apply to the resource.
    fn demand(&self, _v: &Value) -> Option<crate::budget::Demand> {
        None
    }

    /// What a state of this resource is in lineage terms: an OpenLineage job with its input
    /// datasets and environment ([`crate::lineage`]). When it returns Some, both front ends
    /// emit a run (START, then COMPLETE or FAIL) around each create, update and rollback.
    /// From the state alone, plus states `ctx` has seen (no cloud call). `None` (the default):
    /// the resource is not a lineage job.
    fn lineage(&self, _ctx: &Context, _v: &Value) -> Option<crate::lineage::Job> {
        None
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
