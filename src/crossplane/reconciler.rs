//! The generic managed-resource reconciler: one implementation for every resource in
//! [`crate::resources::all`], following crossplane-runtime's managed reconciler. The resource
//! handlers only observe/create/update/delete; this module owns finalizers, the external-name
//! and create-pending annotations, conditions, events, connection secrets and requeues.
//!
//! # Never create twice
//!
//! A create is the one step that cannot simply be retried: if the process dies after the cloud
//! made the object but before its ID was recorded, a naive controller creates a second one and
//! leaks the first. So, before calling `create`:
//!
//! 1. the ID is chosen up front where the resource allows it (a plan-time ID such as a
//!    Kubernetes `namespace/name`, or [`Resource::choose_id`]), and
//! 2. `crossplane.io/external-create-pending` and that ID (as `crossplane.io/external-name`) are
//!    written with an optimistic-concurrency patch, so a stale cached object cannot get here.
//!
//! After `create` returns, `crossplane.io/external-create-succeeded` is written. On the next
//! reconcile (after a crash too) the object is observed by its recorded name first and adopted
//! if it exists; a resource creates under the recorded ID with deterministic client tokens, so
//! even a create repeated after a crash converges on the same object. A pending marker without
//! a recorded name cannot be resolved safely and is reported instead of creating again.

use super::backoff::Backoff;
use super::conditions::{self, Condition};
use super::convert::{self, Part};
use super::desired::{desired, Desired};
use super::names::{KindNames, GROUP, VERSION};
use super::policy::{self, DeletionPolicy, Facts, Policies};
use super::provider_config::{ConfigError, ProviderConfigs};
use crate::context::Context;
use crate::cty::Value;
use crate::diag::Severity;
use crate::error::ResourceError;
use crate::resource::{Deletion, Observed, Readiness, Recovery, Resource};
use crate::schema::Schema;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::events::{Event, EventType, Recorder};
use kube::{Resource as _, ResourceExt};
use serde_json::{json, Value as J};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::Instrument;

pub const FINALIZER: &str = "finalizer.managedresource.crossplane.io";
pub const EXTERNAL_NAME: &str = "crossplane.io/external-name";
pub const CREATE_PENDING: &str = "crossplane.io/external-create-pending";
pub const CREATE_SUCCEEDED: &str = "crossplane.io/external-create-succeeded";
pub const CREATE_FAILED: &str = "crossplane.io/external-create-failed";
pub const PAUSED: &str = "crossplane.io/paused";
/// The state the last create/update returned (see [`convert::encode_state`]).
pub const STATE: &str = "paved.dev/last-applied-state";
/// The generation of the managed resource whose change failed and was recovered from (rolled
/// back or removed), and why: that generation is not applied again (it would fail the same
/// way, in a loop); a new spec is.
pub const FAILED_GENERATION: &str = "paved.dev/failed-generation";
pub const FAILURE: &str = "paved.dev/failure";
/// Field manager of every write the controller makes.
pub const MANAGER: &str = "paved-crossplane";
/// On whose behalf the managed resource exists (set by the claim's composition or portal),
/// recorded in its audit records.
pub const REQUESTED_BY: &str = "paved.dev/requested-by";
/// The audit request of a delete in progress (`REQUEST_ID START_UNIX_MS`): a delete spans
/// reconciles, and its intent and result must share one request.
pub const AUDIT_DELETE: &str = "paved.dev/audit-delete-request";
/// The lineage run of a rollout in progress (`RUN_ID ACTION`): a create or update only starts
/// a rollout, so its run ends (COMPLETE, or FAIL on rollback) on the reconcile that observes
/// the outcome.
pub const LINEAGE_RUN: &str = "paved.dev/lineage-run";
/// Type of the connection secrets (the one Crossplane uses).
const CONNECTION_SECRET_TYPE: &str = "connection.crossplane.io/v1alpha1";

/// Static facts about one managed kind.
pub struct ManagedKind {
    pub resource: Arc<dyn Resource>,
    pub schema: Schema,
    pub names: KindNames,
    pub ar: ApiResource,
}

impl ManagedKind {
    pub fn new(resource: Arc<dyn Resource>) -> ManagedKind {
        let names = KindNames::for_type(resource.type_name());
        let ar = ApiResource {
            group: GROUP.into(),
            version: VERSION.into(),
            api_version: format!("{GROUP}/{VERSION}"),
            kind: names.kind.clone(),
            plural: names.plural.clone(),
        };
        ManagedKind {
            schema: resource.schema(),
            resource,
            names,
            ar,
        }
    }
}

/// Counters the controller logs periodically (and the benchmark reads).
#[derive(Default)]
pub struct Stats {
    pub reconciles: AtomicU64,
    pub errors: AtomicU64,
    pub creates: AtomicU64,
    pub updates: AtomicU64,
    pub deletes: AtomicU64,
}

/// Delays injected around `create`, for crash-safety tests only (the acceptance suite kills
/// the controller inside these windows). Set by `PAVED_CROSSPLANE_FAULT=before-create:5s` or
/// `after-create:5s`; never set in production.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Faults {
    pub before_create: Option<Duration>,
    pub after_create: Option<Duration>,
}

impl Faults {
    pub fn parse(spec: Option<&str>) -> Faults {
        let mut f = Faults::default();
        for part in spec.unwrap_or_default().split(',') {
            if let Some((k, v)) = part.split_once(':') {
                let d = crate::resources::common::parse_duration(v.trim());
                match k.trim() {
                    "before-create" => f.before_create = d,
                    "after-create" => f.after_create = d,
                    _ => {}
                }
            }
        }
        f
    }
}

/// A global limit on reconciles per second (`--max-reconcile-rate`), shared by every kind: the
/// cloud APIs, not each controller, are what must not be flooded.
pub struct RateLimiter {
    interval: Duration,
    burst: u32,
    next: tokio::sync::Mutex<tokio::time::Instant>,
}

impl RateLimiter {
    pub fn new(per_second: u32) -> RateLimiter {
        let per_second = per_second.max(1);
        RateLimiter {
            interval: Duration::from_secs(1) / per_second,
            burst: per_second.saturating_mul(10),
            // Start with the whole burst available.
            next: tokio::sync::Mutex::new({
                let now = tokio::time::Instant::now();
                now.checked_sub(Duration::from_secs(10)).unwrap_or(now)
            }),
        }
    }

    /// Waits for a slot (generic cell rate algorithm: a burst of `burst`, then `interval` apart).
    pub async fn acquire(&self) {
        let at = {
            let mut next = self.next.lock().await;
            slot(
                &mut next,
                tokio::time::Instant::now(),
                self.interval,
                self.burst,
            )
        };
        tokio::time::sleep_until(at).await;
    }
}

/// The time of the next slot given the theoretical arrival time `next` (advanced in place).
fn slot(
    next: &mut tokio::time::Instant,
    now: tokio::time::Instant,
    interval: Duration,
    burst: u32,
) -> tokio::time::Instant {
    let earliest = now.checked_sub(interval * burst).unwrap_or(now);
    let at = (*next).max(earliest);
    *next = at + interval;
    at
}

/// What every controller shares.
pub struct Shared {
    pub client: kube::Client,
    pub configs: ProviderConfigs,
    pub recorder: Recorder,
    pub backoff: Backoff,
    pub poll: Duration,
    pub stats: Stats,
    pub limiter: RateLimiter,
    pub faults: Faults,
    /// The audit trail (`--audit-file`); None: changes are not recorded.
    pub audit: Option<Arc<crate::audit::Trail>>,
    /// Where OpenLineage events go (`--lineage-url`, `--lineage-file`).
    pub lineage: Option<Arc<crate::lineage::Emitter>>,
    /// Hash of the last connection secret written per managed resource (by UID): a secret is
    /// only written when its content changes, not on every poll.
    published: Mutex<HashMap<String, u64>>,
}

impl Shared {
    pub fn new(
        client: kube::Client,
        recorder: Recorder,
        poll: Duration,
        rate: u32,
        faults: Faults,
    ) -> Shared {
        Shared {
            configs: ProviderConfigs::new(client.clone(), Duration::from_secs(5)),
            client,
            recorder,
            backoff: Backoff::default(),
            poll,
            stats: Stats::default(),
            limiter: RateLimiter::new(rate),
            faults,
            published: Mutex::new(HashMap::new()),
            audit: None,
            lineage: None,
        }
    }
}

/// The context of one kind's controller.
pub struct KindContext {
    pub shared: Arc<Shared>,
    pub kind: ManagedKind,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {action}: {source}")]
    Kube {
        action: &'static str,
        #[source]
        source: kube::Error,
    },
    #[error("the object changed while it was being reconciled; retrying")]
    Conflict,
    #[error("cannot get ProviderConfig: {0}")]
    Config(#[from] ConfigError),
    /// `spec.forProvider` is invalid; nothing was sent to the cloud.
    #[error("invalid spec.forProvider: {0}")]
    Spec(String),
    #[error("cannot observe external resource: {}", .0.report())]
    Observe(#[source] ResourceError),
    #[error("cannot create external resource: {}", .0.report())]
    Create(#[source] ResourceError),
    #[error("cannot update external resource: {}", .0.report())]
    Update(#[source] ResourceError),
    #[error("cannot delete external resource: {}", .0.report())]
    Delete(#[source] ResourceError),
    #[error("cannot update external resource in place: {0} would require replacing it. Revert the change, or delete this managed resource and create a new one")]
    Replace(String),
    #[error("cannot determine creation result: a create was started ({CREATE_PENDING}) but never confirmed and no external name was recorded. Check for a leaked external resource, then remove the {CREATE_PENDING} annotation if it is safe to proceed")]
    CreateUnknown,
    /// A bug: the resource handler panicked. Reported on the object; other objects go on.
    #[error("internal error (please report it): the controller panicked while reconciling this object: {0}")]
    Panicked(String),
    #[error("generation {generation} of the spec failed and was rolled back, so it is not applied again: {why}. Change spec.forProvider to retry")]
    FailedGeneration { generation: i64, why: String },
    /// The intent record could not be written; nothing was sent to the cloud.
    #[error("{0}. Nothing was changed: paved records every change before it starts; make the controller's --audit-file writable")]
    Audit(#[source] crate::audit::AuditError),
    #[error("external resource does not exist, and the management policies do not allow creating it (set {EXTERNAL_NAME} to an existing object, or add Create)")]
    Missing,
}

/// A change in flight: its audit intent (when the trail is on) and its lineage run (when the
/// resource is a lineage job and lineage is on).
#[derive(Default)]
struct Tracked<'c> {
    audit: Option<crate::audit::Pending<'c>>,
    run: Option<crate::lineage::Run>,
}

fn kerr(action: &'static str) -> impl FnOnce(kube::Error) -> Error {
    move |source| match &source {
        kube::Error::Api(s) if s.code == 409 => Error::Conflict,
        _ => Error::Kube { action, source },
    }
}

/// Entry point for kube-runtime: one reconcile of one managed resource.
pub async fn reconcile(obj: Arc<DynamicObject>, cx: Arc<KindContext>) -> Result<Action, Error> {
    let name = obj.name_any();
    let span = tracing::info_span!(
        "reconcile",
        kind = %cx.kind.names.kind,
        name = %name,
        generation = obj.metadata.generation.unwrap_or_default(),
    );
    async move {
        cx.shared.limiter.acquire().await;
        cx.shared.stats.reconciles.fetch_add(1, Ordering::Relaxed);
        let mut r = Reconcile::new(&cx, (*obj).clone());
        // A panic in a resource handler must cost this one object a Synced=False, not the
        // controller task (kube-runtime polls reconciles inside it) and every other object.
        let result = caught(r.run()).await;
        let result = match caught(r.finish(result)).await {
            Err(Error::Panicked(m)) => {
                tracing::error!(panic = %m, "writing the status panicked");
                Err(Error::Panicked(m))
            }
            other => other,
        };
        match &result {
            Ok(_) => cx.shared.backoff.succeeded(&key(&cx, &obj)),
            Err(e) => {
                cx.shared.stats.errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "reconcile failed");
            }
        }
        result
    }
    .instrument(span)
    .await
}

/// Runs `f`, turning a panic inside it into [`Error::Panicked`] (logged with its message).
pub async fn caught<T>(f: impl std::future::Future<Output = Result<T, Error>>) -> Result<T, Error> {
    use futures::FutureExt;
    match std::panic::AssertUnwindSafe(f).catch_unwind().await {
        Ok(r) => r,
        Err(p) => {
            let m = crate::error::panic_message(p.as_ref());
            tracing::error!(panic = %m, "reconcile panicked; reporting it on the object");
            Err(Error::Panicked(m))
        }
    }
}

fn key(cx: &KindContext, obj: &DynamicObject) -> String {
    format!("{}/{}", cx.kind.names.kind, obj.name_any())
}

/// After a failed reconcile: retry with per-object exponential backoff.
pub fn error_policy(obj: Arc<DynamicObject>, _e: &Error, cx: Arc<KindContext>) -> Action {
    Action::requeue(cx.shared.backoff.failed(&key(&cx, &obj)))
}

/// The `Ready` condition for what observing reported. While a change is under way the reason
/// says which (`Creating` until the object was first ready, then `Updating`), taken from the
/// condition already on the object.
fn ready_condition(readiness: &Readiness, previous: Option<&str>) -> Condition {
    match readiness {
        Readiness::Ready => conditions::available(),
        Readiness::Progressing(m) => {
            let reason = match previous {
                Some("Creating") => "Creating",
                Some("RollingBack") => "RollingBack",
                _ => "Updating",
            };
            conditions::in_progress(reason, m)
        }
        Readiness::Failed { summary, detail } => {
            conditions::unavailable(&format!("{summary}: {detail}"))
        }
    }
}

/// How soon to observe again: soon while something is under way, at the poll interval once
/// ready.
fn next_observation(readiness: &Readiness, poll: Duration) -> Duration {
    match readiness {
        Readiness::Ready => poll,
        _ => poll.min(Duration::from_secs(5)),
    }
}

/// One reconcile in progress. Holds the latest copy of the object (updated by every patch, so a
/// later optimistic-concurrency patch uses the right resourceVersion) and the status to write.
struct Reconcile<'a> {
    cx: &'a KindContext,
    obj: DynamicObject,
    api: Api<DynamicObject>,
    ready: Option<Condition>,
    synced: Option<Condition>,
    at_provider: Option<J>,
    /// Set once the finalizer is removed: the object may be gone, so no status is written.
    released: bool,
}

impl<'a> Reconcile<'a> {
    fn new(cx: &'a KindContext, obj: DynamicObject) -> Reconcile<'a> {
        Reconcile {
            api: Api::all_with(cx.shared.client.clone(), &cx.kind.ar),
            cx,
            obj,
            ready: None,
            synced: None,
            at_provider: None,
            released: false,
        }
    }

    fn name(&self) -> String {
        self.obj.name_any()
    }

    fn annotation(&self, k: &str) -> Option<&str> {
        self.obj
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(k))
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn spec(&self) -> &J {
        &self.obj.data["spec"]
    }

    fn poll(&self) -> Duration {
        self.cx.shared.poll
    }

    async fn event(&self, type_: EventType, reason: &str, note: String) {
        self.event_as(type_, reason, reason.to_string(), note).await
    }

    /// An Event with its own `action`: the recorder folds Events that share type, reason and
    /// action into one series (keeping the first note), so each audit record names its
    /// request in the action to stay an Event of its own.
    async fn event_as(&self, type_: EventType, reason: &str, action: String, note: String) {
        let ev = Event {
            type_,
            reason: reason.to_string(),
            note: Some(note),
            action,
            secondary: None,
        };
        let reference = self.obj.object_ref(&self.cx.kind.ar);
        if let Err(e) = self.cx.shared.recorder.publish(&ev, &reference).await {
            tracing::warn!(error = %e, reason, "cannot publish event");
        }
    }

    /// Merge-patches metadata. With `guard`, the patch carries the resourceVersion this reconcile
    /// read, so it fails (Conflict) if anyone changed the object since: used where acting on a
    /// stale copy could create a duplicate.
    async fn patch_meta(&mut self, meta: J, guard: bool) -> Result<(), Error> {
        let mut patch = json!({ "metadata": meta });
        if guard {
            patch["metadata"]["resourceVersion"] = json!(self.obj.metadata.resource_version);
        }
        let o = self
            .api
            .patch(&self.name(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kerr("patch managed resource metadata"))?;
        self.obj = o;
        Ok(())
    }

    /// Records facts that must survive a crash (the external name after a create): retried a
    /// few times, since losing them is what the pending marker exists to detect.
    async fn record_annotations(&mut self, annotations: J) -> Result<(), Error> {
        let mut last = None;
        for attempt in 0..5u32 {
            match self
                .patch_meta(json!({ "annotations": annotations }), false)
                .await
            {
                Ok(()) => return Ok(()),
                Err(e) => {
                    tracing::warn!(error = %e, attempt, "cannot record annotations; retrying");
                    last = Some(e);
                    tokio::time::sleep(Duration::from_millis(200 << attempt)).await;
                }
            }
        }
        Err(last.unwrap_or(Error::Conflict))
    }

    async fn ensure_finalizer(&mut self) -> Result<(), Error> {
        let mut f = self.obj.finalizers().to_vec();
        if f.iter().any(|x| x == FINALIZER) {
            return Ok(());
        }
        f.push(FINALIZER.to_string());
        self.patch_meta(json!({ "finalizers": f }), true).await
    }

    async fn remove_finalizer(&mut self) -> Result<(), Error> {
        let f: Vec<String> = self
            .obj
            .finalizers()
            .iter()
            .filter(|x| *x != FINALIZER)
            .cloned()
            .collect();
        if f.len() != self.obj.finalizers().len() {
            self.patch_meta(json!({ "finalizers": f }), true).await?;
        }
        self.released = true;
        Ok(())
    }

    /// The value of a sensitive argument's Secret key.
    async fn read_secret_arg(&self, arg: &convert::SecretArg) -> Result<String, Error> {
        let api: Api<Secret> = Api::namespaced(self.cx.shared.client.clone(), &arg.namespace);
        let secret = api
            .get_opt(&arg.name)
            .await
            .map_err(kerr("read a Secret named by spec.forProvider"))?
            .ok_or_else(|| {
                Error::Spec(format!(
                    "spec.forProvider{}: Secret {}/{} not found",
                    arg.reference.replace('/', "."),
                    arg.namespace,
                    arg.name
                ))
            })?;
        let bytes = secret
            .data
            .as_ref()
            .and_then(|d| d.get(&arg.key))
            .map(|b| b.0.clone())
            .ok_or_else(|| {
                Error::Spec(format!(
                    "spec.forProvider{}: Secret {}/{} has no key {:?}",
                    arg.reference.replace('/', "."),
                    arg.namespace,
                    arg.name,
                    arg.key
                ))
            })?;
        String::from_utf8(bytes).map_err(|_| {
            Error::Spec(format!(
                "spec.forProvider{}: the Secret value is not UTF-8 text",
                arg.reference.replace('/', ".")
            ))
        })
    }

    /// A create that was started and not confirmed (crossplane-runtime's "incomplete create").
    fn create_incomplete(&self) -> bool {
        match self.annotation(CREATE_PENDING) {
            None => false,
            Some(pending) => {
                let done = [CREATE_SUCCEEDED, CREATE_FAILED]
                    .iter()
                    .filter_map(|k| self.annotation(k))
                    .any(|t| t >= pending);
                !done
            }
        }
    }

    async fn run(&mut self) -> Result<Action, Error> {
        let kind = &self.cx.kind;
        let r = kind.resource.as_ref();
        let policies = Policies::from_json(self.spec().get("managementPolicies"));
        let deletion = DeletionPolicy::from_json(self.spec().get("deletionPolicy"));
        let paused = self.annotation(PAUSED) == Some("true");
        let deleting = self.obj.metadata.deletion_timestamp.is_some();
        if paused || policies.is_empty() {
            self.synced = Some(conditions::reconcile_paused());
            return Ok(Action::requeue(self.poll()));
        }
        let pc = self.spec()["providerConfigRef"]["name"]
            .as_str()
            .unwrap_or("default")
            .to_string();
        let ctx = match self.cx.shared.configs.get(&pc).await {
            Ok(c) => c,
            // Without a ProviderConfig nothing can be deleted; an object that never got our
            // finalizer never had anything created, so it may go.
            Err(e) if deleting && !self.obj.finalizers().iter().any(|f| f == FINALIZER) => {
                tracing::info!(error = %e, "deleting without ProviderConfig; nothing was created");
                return Ok(Action::await_change());
            }
            Err(e) => return Err(e.into()),
        };
        let ctx = match &self.cx.shared.audit {
            Some(t) => ctx.with_audit(t.clone()),
            None => ctx,
        };
        let ctx = match &self.cx.shared.lineage {
            Some(l) => ctx.with_lineage(l.clone()),
            None => ctx,
        };
        if !deleting {
            self.ensure_finalizer().await?;
        }

        // Arguments. Only a controller that may change the object needs valid ones; an
        // observe-only resource (or one being deleted) can be observed through its importer.
        let spec_for_provider = self.spec().get("forProvider").cloned().unwrap_or(J::Null);
        let mut for_provider = spec_for_provider.clone();
        let mut secret_values = vec![];
        for arg in convert::secret_args(&kind.schema.block, &for_provider) {
            let value = self.read_secret_arg(&arg).await?;
            secret_values.push((arg, value));
        }
        convert::fill_secret_args(&mut for_provider, &secret_values);
        let config = convert::config_from_spec(&kind.schema.block, &for_provider);
        let strict = policies.may_change() && !deleting;
        let config = match config {
            Ok(c) => Some(c),
            Err(e) if strict => return Err(Error::Spec(e.to_string())),
            Err(e) => {
                tracing::info!(error = %e, "arguments incomplete; observing through the importer");
                None
            }
        };
        let mut create_plan: Option<Desired> = None;
        // A delete observes through the planned value too (its defaults name the external
        // object, e.g. a GCP pool's project); a plan with errors is only not used. Observe-only
        // resources keep going through the importer: their spec is not the truth.
        let mut observe_plan: Option<Desired> = None;
        match (&config, strict) {
            (Some(c), true) => {
                if let Some(v) = r.validator() {
                    check(v.validate(c))?;
                }
                let d = desired(r, &kind.schema, &ctx, None, c);
                check(d.diags.clone())?;
                create_plan = Some(d);
            }
            (Some(c), false) if deleting && policies.may_change() => {
                let d = desired(r, &kind.schema, &ctx, None, c);
                if !d.diags.has_errors() {
                    observe_plan = Some(d);
                }
            }
            _ => {}
        }

        // Observe.
        let external_name = self.annotation(EXTERNAL_NAME).map(String::from);
        let observed = match &external_name {
            None => None,
            Some(ext) => {
                self.observe(
                    &ctx,
                    create_plan.as_ref().or(observe_plan.as_ref()),
                    config.as_ref(),
                    ext,
                )
                .await?
            }
        };
        let readiness = observed.as_ref().map(|o| o.readiness.clone());
        let observed = observed.map(|o| o.state);
        let generation = self.obj.metadata.generation.unwrap_or_default();
        let failed_here = self
            .annotation(FAILED_GENERATION)
            .and_then(|g| g.parse::<i64>().ok())
            == Some(generation);
        // A change of this generation failed: recover (roll back) once, then stop applying it.
        if let (Some(Readiness::Failed { summary, detail }), Some(state), false) =
            (&readiness, &observed, failed_here || deleting)
        {
            if let Some(done) = self
                .recover(&ctx, state, summary, detail, generation)
                .await?
            {
                return done;
            }
        }
        let mut update_plan = None;
        if let (Some(s), Some(c), true) = (&observed, &config, strict) {
            ctx.remember(r.type_name(), s);
            let d = desired(r, &kind.schema, &ctx, Some(s), c);
            check(d.diags.clone())?;
            update_plan = Some(d);
        } else if let Some(s) = &observed {
            ctx.remember(r.type_name(), s);
        }
        let up_to_date = match (&observed, &update_plan) {
            (Some(s), Some(d)) => d.planned == *s,
            _ => true,
        };
        let facts = Facts {
            paused,
            deleting,
            exists: observed.is_some(),
            up_to_date,
            create_unknown: external_name.is_none() && self.create_incomplete(),
        };
        let decision = policy::decide(&policies, deletion, facts);
        tracing::debug!(?decision, ?facts, "decided");
        use policy::Decision as D;
        if failed_here && matches!(decision, D::Create | D::Update) {
            if let Some(s) = &observed {
                self.at_provider =
                    Some(convert::to_json(&kind.schema.block, s, Part::Observations));
            }
            self.ready = Some(match &readiness {
                Some(r) => ready_condition(r, self.ready_reason().as_deref()),
                None => conditions::unavailable("the external resource does not exist"),
            });
            return Err(Error::FailedGeneration {
                generation,
                why: self.annotation(FAILURE).unwrap_or_default().to_string(),
            });
        }
        if let Some(s) = &observed {
            self.at_provider = Some(convert::to_json(&kind.schema.block, s, Part::Observations));
        }
        match decision {
            D::Paused => {
                self.synced = Some(conditions::reconcile_paused());
                Ok(Action::requeue(self.poll()))
            }
            D::Finalize | D::Orphan => {
                if decision == D::Orphan {
                    tracing::info!("orphaning the external resource");
                } else {
                    self.close_delete(&ctx).await;
                }
                self.remove_finalizer().await?;
                Ok(Action::await_change())
            }
            D::Delete => {
                let state = observed.expect("Delete is only decided for existing objects");
                self.delete(&ctx, &state).await
            }
            D::Create => {
                let planned = create_plan
                    .ok_or_else(|| Error::Spec("spec.forProvider is required to create".into()))?
                    .planned;
                self.create(&ctx, planned, external_name).await
            }
            D::Update => {
                let state = observed.expect("Update is only decided for existing objects");
                let d = update_plan.expect("Update is only decided with a plan");
                self.update(&ctx, &state, d).await
            }
            D::Observe => {
                let state = observed.expect("Observe is only decided for existing objects");
                if self.create_incomplete() {
                    // A create interrupted before it was confirmed made this: adopt it.
                    tracing::info!("adopting the external resource of an unconfirmed create");
                    let id = Value::object([("id", state.get("id").clone())]);
                    let adopted = self.audit_begin(&ctx, "import", &Value::Null, &id).await?;
                    self.record_annotations(json!({ CREATE_SUCCEEDED: conditions::now_rfc3339() }))
                        .await?;
                    self.audit_end(&ctx, adopted, Ok(&state)).await;
                }
                if up_to_date && !deleting && policies.can(policy::ManagementAction::LateInitialize)
                {
                    self.late_initialize(&spec_for_provider, &state).await?;
                }
                self.publish_connection(&state).await?;
                let readiness = readiness.unwrap_or(Readiness::Ready);
                if readiness == Readiness::Ready {
                    self.end_open_run(&ctx, &state, Ok(())).await;
                }
                self.ready = Some(ready_condition(&readiness, self.ready_reason().as_deref()));
                Ok(Action::requeue(next_observation(&readiness, self.poll())))
            }
            D::Missing => {
                self.ready = Some(conditions::unavailable(
                    "the external resource does not exist",
                ));
                Err(Error::Missing)
            }
            D::CreateUnknown => Err(Error::CreateUnknown),
        }
    }

    /// Reads the external object named `ext`. With valid arguments the state handed to `read`
    /// is the planned one with that ID (arguments the cloud cannot report keep their configured
    /// value, as with a Terraform state); otherwise the resource's importer rebuilds it.
    async fn observe(
        &self,
        ctx: &Context,
        plan: Option<&Desired>,
        config: Option<&Value>,
        ext: &str,
    ) -> Result<Option<Observed>, Error> {
        let r = self.cx.kind.resource.as_ref();
        let block = &self.cx.kind.schema.block;
        let kept = self
            .annotation(STATE)
            .and_then(|t| convert::decode_state(block, t, config))
            .filter(|s| s.get("id").as_str() == Some(ext));
        let state = match (kept, plan, r.importer()) {
            (Some(s), _, _) => s,
            (None, Some(d), _) => {
                let mut s = convert::unknowns_to_null(&d.planned);
                s.set_attr("id", Value::string(ext));
                s
            }
            (None, None, Some(i)) => match i.import(ctx, ext).await {
                Ok(s) => s,
                // Only a definite "no such object" is absence. An object that exists but cannot
                // be read (no paved metadata, unparsable, a failed read) is an error: treating
                // it as gone would let a delete drop the finalizer and leave it running.
                Err(ResourceError::NotFound(what)) => {
                    tracing::info!(%what, "external resource not found");
                    return Ok(None);
                }
                Err(e) => {
                    tracing::warn!(error = %e.report(), kind = e.kind(), "external resource cannot be observed");
                    return Err(Error::Observe(e));
                }
            },
            (None, None, None) => {
                return Err(Error::Spec(
                    "spec.forProvider is incomplete and this kind cannot be observed by external name alone".into(),
                ))
            }
        };
        r.read(ctx, &state).await.map_err(Error::Observe)
    }

    /// The reason of the `Ready` condition the object shows now.
    fn ready_reason(&self) -> Option<String> {
        self.obj.data["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")?["reason"]
            .as_str()
            .map(String::from)
    }

    /// A change failed (observed `Failed`): starts the resource's recovery. When it rolled back
    /// or removed something, records the failed generation (so it is not applied again) and
    /// ends the reconcile with that outcome (`Some`); with no recovery, the reconcile goes on
    /// (`None`) and reports the failure in `Ready`.
    async fn recover(
        &mut self,
        ctx: &Context,
        state: &Value,
        summary: &str,
        detail: &str,
        generation: i64,
    ) -> Result<Option<Result<Action, Error>>, Error> {
        let r = self.cx.kind.resource.as_ref();
        self.end_open_run(ctx, state, Err(detail)).await;
        let mut pending = self.audit_begin(ctx, "rollback", state, state).await?;
        pending.run = pending.run.map(|r| r.with_cause(detail));
        let recovered = crate::cloud::kube::ON_BEHALF
            .scope(self.on_behalf(ctx, &pending), r.recover(ctx, state, detail))
            .await;
        self.audit_end(
            ctx,
            pending,
            recovered
                .as_ref()
                .map(|_| state)
                .map_err(|e| (e.error.report(), e.state.as_ref())),
        )
        .await;
        let recovery = match recovered {
            Ok(x) => x,
            Err(e) => {
                self.event(
                    EventType::Warning,
                    "CannotRecoverExternalResource",
                    e.error.report(),
                )
                .await;
                return Ok(Some(Err(Error::Update(e.error))));
            }
        };
        let (reason, note) = match &recovery {
            Recovery::None => return Ok(None),
            Recovery::RolledBack { note, .. } => ("RollingBack", note.clone()),
            Recovery::Removed { note } => ("Deleting", note.clone()),
        };
        let why = format!("{summary}: {detail}");
        tracing::warn!(%why, generation, "change failed; recovering");
        self.record_annotations(json!({
            FAILED_GENERATION: generation.to_string(),
            FAILURE: why,
        }))
        .await?;
        self.event(
            EventType::Warning,
            "RolledBackExternalResource",
            format!("{summary}: {detail}\n{note}"),
        )
        .await;
        self.ready = Some(conditions::in_progress(reason, &note));
        Ok(Some(Err(Error::FailedGeneration {
            generation,
            why: format!("{summary}: {detail}"),
        })))
    }

    async fn create(
        &mut self,
        ctx: &Context,
        mut planned: Value,
        external_name: Option<String>,
    ) -> Result<Action, Error> {
        let r = self.cx.kind.resource.as_ref();
        // The ID, chosen before anything exists: planned by the resource, else the name a
        // previous attempt recorded, else one the resource picks now.
        let id = match planned.get("id") {
            Value::String(s) => Some(s.clone()),
            _ => external_name.or_else(|| r.choose_id(&planned)),
        };
        if let Some(id) = &id {
            if self.cx.kind.schema.block.attribute("id").is_some() {
                planned.set_attr("id", Value::string(id));
            }
        }
        // Budgets first: a refused create leaves no trace but the condition and the event.
        if let Err(e) = crate::budget::admit(r, ctx, None, &planned).await {
            return Err(self.refused(e, "create").await);
        }
        let mut marks = json!({ CREATE_PENDING: conditions::now_rfc3339() });
        if let Some(id) = &id {
            marks[EXTERNAL_NAME] = json!(id);
        }
        self.patch_meta(json!({ "annotations": marks }), true)
            .await?;
        tracing::info!(
            external_name = id.as_deref().unwrap_or(""),
            "creating external resource"
        );
        self.write_status_now(conditions::creating()).await;
        let pending = self
            .audit_begin(ctx, "create", &Value::Null, &planned)
            .await?;
        if let Some(d) = self.cx.shared.faults.before_create {
            tracing::warn!(delay = ?d, "fault injection: pausing before create");
            tokio::time::sleep(d).await;
        }
        let created = crate::cloud::kube::ON_BEHALF
            .scope(self.on_behalf(ctx, &pending), r.create(ctx, &planned))
            .await;
        let open = self
            .audit_end(
                ctx,
                pending,
                created
                    .as_ref()
                    .map_err(|e| (e.error.report(), e.state.as_ref())),
            )
            .await;
        self.keep_run(ctx, &planned, open).await;
        match created {
            Ok(state) => {
                if let Some(d) = self.cx.shared.faults.after_create {
                    tracing::warn!(delay = ?d, "fault injection: pausing after create");
                    tokio::time::sleep(d).await;
                }
                self.cx.shared.stats.creates.fetch_add(1, Ordering::Relaxed);
                let mut marks = json!({ CREATE_SUCCEEDED: conditions::now_rfc3339() });
                if let Some(sid) = state.get("id").as_str() {
                    marks[EXTERNAL_NAME] = json!(sid);
                }
                if let Some(kept) = convert::encode_state(&self.cx.kind.schema.block, &state) {
                    marks[STATE] = json!(kept);
                }
                self.record_annotations(marks).await?;
                ctx.remember(r.type_name(), &state);
                self.event(
                    EventType::Normal,
                    "CreatedExternalResource",
                    format!(
                        "Successfully requested creation of external resource {}",
                        state.get("id").as_str().unwrap_or("")
                    ),
                )
                .await;
                self.at_provider = Some(convert::to_json(
                    &self.cx.kind.schema.block,
                    &state,
                    Part::Observations,
                ));
                self.publish_connection(&state).await?;
                // Ready comes from the next observation, as in crossplane-runtime.
                self.ready = Some(conditions::creating());
                Ok(Action::requeue(Duration::from_secs(2).min(self.poll())))
            }
            Err(e) => {
                let mut marks = json!({ CREATE_FAILED: conditions::now_rfc3339() });
                // Something was made: record it so it is observed (and deleted) rather than leaked.
                if let Some(sid) = e.state.as_ref().and_then(|s| s.get("id").as_str()) {
                    marks[EXTERNAL_NAME] = json!(sid);
                }
                self.record_annotations(marks).await?;
                self.event(
                    EventType::Warning,
                    "CannotCreateExternalResource",
                    e.error.report(),
                )
                .await;
                self.ready = Some(conditions::unavailable("create failed"));
                Err(Error::Create(e.error))
            }
        }
    }

    /// A create or update stopped before the cloud: a budget refusal is `Synced=False` with
    /// reason `BudgetExceeded` and a Warning event; any other failure (the committed cost could
    /// not be read) is an ordinary create/update error.
    async fn refused(&mut self, e: ResourceError, verb: &str) -> Error {
        if let ResourceError::BudgetExceeded(x) = &e {
            let message = format!("{x}. Nothing was {verb}d.");
            tracing::warn!(%message, "refused by the team's budget");
            self.event(EventType::Warning, "BudgetExceeded", message.clone())
                .await;
            self.synced = Some(conditions::budget_exceeded(&message));
            if verb == "create" {
                self.ready = Some(conditions::unavailable("not created: team budget exceeded"));
            }
        }
        if verb == "create" {
            Error::Create(e)
        } else {
            Error::Update(e)
        }
    }

    async fn update(&mut self, ctx: &Context, prior: &Value, d: Desired) -> Result<Action, Error> {
        let kind = &self.cx.kind;
        let r = kind.resource.as_ref();
        let changed = convert::diff_paths(&kind.schema.block, prior, &d.planned).join(", ");
        if !d.requires_replace.is_empty() {
            let paths: Vec<String> = d.requires_replace.iter().map(convert::field_path).collect();
            let e = Error::Replace(paths.join(", "));
            self.event(
                EventType::Warning,
                "CannotUpdateExternalResource",
                e.to_string(),
            )
            .await;
            return Err(e);
        }
        if let Err(e) = crate::budget::admit(r, ctx, Some(prior), &d.planned).await {
            return Err(self.refused(e, "update").await);
        }
        // The spec this generation asks for was already applied: the cloud drifted from it.
        let action = if self.generation_synced() {
            "drift_correct"
        } else {
            "update"
        };
        let pending = self.audit_begin(ctx, action, prior, &d.planned).await?;
        tracing::info!(%changed, "updating drifted external resource");
        let updated = crate::cloud::kube::ON_BEHALF
            .scope(
                self.on_behalf(ctx, &pending),
                r.update(ctx, prior, &d.planned),
            )
            .await;
        let open = self
            .audit_end(
                ctx,
                pending,
                updated
                    .as_ref()
                    .map_err(|e| (e.error.report(), e.state.as_ref())),
            )
            .await;
        self.keep_run(ctx, &d.planned, open).await;
        match updated {
            Ok(state) => {
                self.cx.shared.stats.updates.fetch_add(1, Ordering::Relaxed);
                if let Some(kept) = convert::encode_state(&kind.schema.block, &state) {
                    self.record_annotations(json!({ STATE: kept })).await?;
                }
                ctx.remember(r.type_name(), &state);
                self.event(
                    EventType::Normal,
                    "UpdatedExternalResource",
                    format!(
                        "Successfully requested update of external resource (changed: {changed})"
                    ),
                )
                .await;
                self.at_provider = Some(convert::to_json(
                    &kind.schema.block,
                    &state,
                    Part::Observations,
                ));
                self.publish_connection(&state).await?;
                // Ready comes from observing the change, on the next reconcile.
                self.ready = Some(conditions::in_progress("Updating", "update started"));
                Ok(Action::requeue(Duration::from_secs(2).min(self.poll())))
            }
            Err(e) => {
                self.event(
                    EventType::Warning,
                    "CannotUpdateExternalResource",
                    e.error.report(),
                )
                .await;
                Err(Error::Update(e.error))
            }
        }
    }

    async fn delete(&mut self, ctx: &Context, state: &Value) -> Result<Action, Error> {
        let r = self.cx.kind.resource.as_ref();
        self.write_status_now(conditions::deleting()).await;
        let pending = self.audit_delete(ctx, state).await?;
        tracing::info!("deleting external resource");
        let deleted = r.delete(ctx, state).await;
        match &deleted {
            Ok(Deletion::InProgress(_)) => {}
            Ok(Deletion::Gone) => {
                self.audit_end(ctx, pending, Ok(state)).await;
            }
            Err(e) => {
                self.audit_end(ctx, pending, Err((e.report(), None))).await;
                // The next attempt is a request of its own.
                self.record_annotations(json!({ AUDIT_DELETE: null }))
                    .await?;
            }
        }
        match deleted {
            Ok(Deletion::InProgress(left)) => {
                // Observed again shortly; the finalizer stays until nothing is left.
                self.ready = Some(conditions::in_progress("Deleting", &left));
                Ok(Action::requeue(Duration::from_secs(2).min(self.poll())))
            }
            Ok(Deletion::Gone) => {
                self.cx.shared.stats.deletes.fetch_add(1, Ordering::Relaxed);
                self.event(
                    EventType::Normal,
                    "DeletedExternalResource",
                    format!(
                        "Successfully deleted external resource {}",
                        state.get("id").as_str().unwrap_or("")
                    ),
                )
                .await;
                // Nothing is left (the contract of `Gone`), so the finalizer can go.
                self.remove_finalizer().await?;
                self.forget_connection();
                Ok(Action::await_change())
            }
            Err(e) => {
                self.event(
                    EventType::Warning,
                    "CannotDeleteExternalResource",
                    e.report(),
                )
                .await;
                self.ready = Some(conditions::deleting());
                Err(Error::Delete(e))
            }
        }
    }

    /// The claim's requester annotations (copied to the MR by the Compositions) and the audit
    /// request, for every object the change applies.
    fn on_behalf(&self, ctx: &Context, t: &Tracked<'_>) -> crate::cloud::kube::OnBehalf {
        use crate::cloud::kube as k;
        let requested_by = self.annotation(k::REQUESTED_BY).map(String::from);
        crate::cloud::kube::OnBehalf {
            impersonate: requested_by.clone().filter(|_| ctx.impersonate_requester),
            requested_by,
            request_id: self.annotation(k::REQUEST_ID).map(String::from),
            change_url: self.annotation(k::CHANGE_URL).map(String::from),
            audit_request_id: t.audit.as_ref().map(|p| p.request_id().to_string()),
        }
    }

    /// Whether the last successful sync was of this generation (Synced=True observed at it).
    fn generation_synced(&self) -> bool {
        let g = self.obj.metadata.generation;
        self.obj.data["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| {
                c["type"] == "Synced"
                    && c["status"] == "True"
                    && c["observedGeneration"].as_i64() == g
                    && g.is_some()
            })
    }

    fn audit_subject(
        &self,
        ctx: &Context,
        action: &'static str,
        prior: &Value,
        planned: &Value,
    ) -> crate::audit::Subject {
        crate::audit::Subject {
            front_end: "crossplane",
            actor: ctx.identities(),
            requester: self.annotation(REQUESTED_BY).map(String::from),
            resource_type: self.cx.kind.resource.type_name().into(),
            action,
            prior: prior.clone(),
            planned: planned.clone(),
        }
    }

    /// Writes the intent of a change; a trail that cannot take it stops the change here, with
    /// a Warning event, before the cloud is touched.
    async fn audit_begin<'c>(
        &mut self,
        ctx: &'c Context,
        action: &'static str,
        prior: &Value,
        planned: &Value,
    ) -> Result<Tracked<'c>, Error> {
        let mut t = Tracked::default();
        if let Some(trail) = ctx.audit.as_deref() {
            let subject = self.audit_subject(ctx, action, prior, planned);
            match trail.begin(&self.cx.kind.schema.block, subject) {
                Ok(p) => {
                    // The Event mirrors the record for `kubectl describe`; the file is the
                    // record of truth (Events expire and are deduplicated).
                    let i = p.intent();
                    let action = format!("{} {}", i.action, i.request_id);
                    self.event_as(EventType::Normal, "AuditIntent", action, i.summary())
                        .await;
                    t.audit = Some(p);
                }
                Err(e) => {
                    self.event(EventType::Warning, "CannotWriteAuditRecord", e.to_string())
                        .await;
                    return Err(Error::Audit(e));
                }
            }
        }
        t.run = self.lineage_start(
            ctx,
            action,
            t.audit.as_ref(),
            if planned.is_null() { prior } else { planned },
        );
        Ok(t)
    }

    /// Records the run of a rollout this reconcile started; it ends on a later one.
    async fn keep_run(&mut self, ctx: &Context, state: &Value, run: Option<crate::lineage::Run>) {
        let Some(run) = run else { return };
        // A rollout replaced before it finished: its run is aborted.
        if let (Some(l), Some(job), Some((id, action))) = (
            &ctx.lineage,
            self.cx.kind.resource.lineage(ctx, state),
            self.annotation(LINEAGE_RUN).and_then(|m| m.split_once(' ')),
        ) {
            l.resume(job, id, action).abort();
        }
        if let Err(e) = self
            .record_annotations(json!({ LINEAGE_RUN: run.mark() }))
            .await
        {
            // Without the mark no later reconcile can end it: end it now.
            tracing::warn!(error = %e, "cannot record the lineage run; ending it now");
            run.finish(Ok(None));
        }
    }

    /// Ends the run of the rollout in progress, if any: COMPLETE once it is ready, FAIL with
    /// the failure before it is rolled back.
    async fn end_open_run(&mut self, ctx: &Context, state: &Value, outcome: Result<(), &str>) {
        let Some((id, action)) = self
            .annotation(LINEAGE_RUN)
            .and_then(|m| m.split_once(' '))
            .map(|(i, a)| (i.to_string(), a.to_string()))
        else {
            return;
        };
        if let (Some(l), Some(job)) = (&ctx.lineage, self.cx.kind.resource.lineage(ctx, state)) {
            let run = l.resume(job, &id, &action);
            run.finish(outcome.map(|_| None));
        }
        if let Err(e) = self.record_annotations(json!({ LINEAGE_RUN: null })).await {
            tracing::warn!(error = %e, "cannot clear the lineage run mark");
        }
    }

    /// The START of the lineage run of a create, update or rollback of a lineage job.
    fn lineage_start(
        &self,
        ctx: &Context,
        action: &str,
        audit: Option<&crate::audit::Pending<'_>>,
        target: &Value,
    ) -> Option<crate::lineage::Run> {
        let emitter = ctx.lineage.as_ref()?;
        if !matches!(action, "create" | "update" | "drift_correct" | "rollback") {
            return None;
        }
        let job = self.cx.kind.resource.lineage(ctx, target)?;
        let id = audit.map_or_else(crate::audit::request_id, |p| p.request_id().to_string());
        Some(emitter.start(job, &id, action, self.annotation(REQUESTED_BY)))
    }

    /// Writes the result of a change (and its Event) and ends its lineage run, except that a
    /// create or update that started a rollout hands its run back, to be ended when the rollout
    /// is observed to finish ([`LINEAGE_RUN`]). The change has happened either way, so a trail
    /// that fails now is logged, not a failed reconcile.
    async fn audit_end(
        &self,
        ctx: &Context,
        t: Tracked<'_>,
        outcome: Result<&Value, (String, Option<&Value>)>,
    ) -> Option<crate::lineage::Run> {
        let mut open = None;
        if let Some(run) = t.run {
            match &outcome {
                Ok(_)
                    if t.audit.as_ref().is_none_or(|p| {
                        matches!(
                            p.intent().action.as_str(),
                            "create" | "update" | "drift_correct"
                        )
                    }) =>
                {
                    open = Some(run)
                }
                Ok(v) => run.finish(Ok(self.cx.kind.resource.lineage(ctx, v))),
                Err((e, _)) => run.finish(Err(e.as_str())),
            }
        }
        self.audit_result(ctx, t.audit, outcome).await;
        open
    }

    async fn audit_result(
        &self,
        ctx: &Context,
        audit: Option<crate::audit::Pending<'_>>,
        outcome: Result<&Value, (String, Option<&Value>)>,
    ) {
        let Some(p) = audit else { return };
        let (o, error, state) = match outcome {
            Ok(v) => (crate::audit::Outcome::Succeeded, None, Some(v)),
            Err((e, st)) => (crate::audit::Outcome::Failed, Some(e), st),
        };
        let (record, written) = p.finish(o, error, state, ctx.identities());
        if let Err(e) = written {
            tracing::warn!(error = %e, "audit result not written");
        }
        let kind = if o == crate::audit::Outcome::Succeeded {
            EventType::Normal
        } else {
            EventType::Warning
        };
        let action = format!("{} {}", record.action, record.request_id);
        self.event_as(kind, "AuditResult", action, record.summary())
            .await;
    }

    /// The intent of this delete: written on its first reconcile (its request recorded on the
    /// object), resumed on the later ones, so one delete is one intent and one result.
    async fn audit_delete<'c>(
        &mut self,
        ctx: &'c Context,
        state: &Value,
    ) -> Result<Tracked<'c>, Error> {
        let Some(trail) = ctx.audit.as_deref() else {
            return Ok(Tracked::default());
        };
        if let Some((rid, ms)) = self
            .annotation(AUDIT_DELETE)
            .and_then(|v| v.split_once(' '))
            .and_then(|(r, m)| Some((r.to_string(), m.parse::<u64>().ok()?)))
        {
            let subject = self.audit_subject(ctx, "delete", state, &Value::Null);
            return Ok(Tracked {
                audit: Some(trail.resume(&self.cx.kind.schema.block, subject, &rid, ms)),
                run: None,
            });
        }
        let pending = self.audit_begin(ctx, "delete", state, &Value::Null).await?;
        let Some(p) = &pending.audit else {
            return Ok(pending);
        };
        let mark = format!("{} {}", p.request_id(), crate::audit::unix_ms());
        if let Err(e) = self.record_annotations(json!({ AUDIT_DELETE: mark })).await {
            // Not started: close the intent so it does not stay open.
            self.audit_end(
                ctx,
                pending,
                Err((format!("the delete was not started: {e}"), None)),
            )
            .await;
            return Err(e);
        }
        Ok(pending)
    }

    /// A delete whose last object went away between reconciles is observed as gone: its
    /// result is written here (succeeded), so the delete is still one intent and one result.
    async fn close_delete(&self, ctx: &Context) {
        let (Some(trail), Some((rid, ms))) = (
            ctx.audit.as_deref(),
            self.annotation(AUDIT_DELETE)
                .and_then(|v| v.split_once(' '))
                .and_then(|(r, m)| Some((r.to_string(), m.parse::<u64>().ok()?))),
        ) else {
            return;
        };
        let block = &self.cx.kind.schema.block;
        let last = self
            .annotation(STATE)
            .and_then(|t| convert::decode_state(block, t, None))
            .unwrap_or_else(|| {
                Value::object([(
                    "id",
                    Value::string(self.annotation(EXTERNAL_NAME).unwrap_or_default()),
                )])
            });
        let subject = self.audit_subject(ctx, "delete", &last, &Value::Null);
        let p = trail.resume(block, subject, &rid, ms);
        self.audit_result(ctx, Some(p), Ok(&last)).await;
    }

    async fn late_initialize(&mut self, for_provider: &J, state: &Value) -> Result<(), Error> {
        let Some(fp) = convert::late_initialize(&self.cx.kind.schema.block, for_provider, state)
        else {
            return Ok(());
        };
        tracing::info!("late-initializing spec.forProvider from the observed state");
        let patch = json!({ "spec": { "forProvider": fp } });
        let o = self
            .api
            .patch(&self.name(), &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kerr("late-initialize spec.forProvider"))?;
        self.obj = o;
        Ok(())
    }

    fn forget_connection(&self) {
        if let Some(uid) = &self.obj.metadata.uid {
            self.cx
                .shared
                .published
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(uid);
        }
    }

    /// Writes `writeConnectionSecretToRef`, owned by the managed resource (garbage-collected
    /// with it), when its content changed.
    async fn publish_connection(&self, state: &Value) -> Result<(), Error> {
        let to = &self.spec()["writeConnectionSecretToRef"];
        let (Some(name), Some(ns)) = (to["name"].as_str(), to["namespace"].as_str()) else {
            return Ok(());
        };
        let details = convert::connection_details(&self.cx.kind.schema.block, state);
        let uid = self.obj.metadata.uid.clone().unwrap_or_default();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        (ns, name, &details).hash(&mut h);
        let digest = h.finish();
        if self
            .cx
            .shared
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&uid)
            == Some(&digest)
        {
            return Ok(());
        }
        use base64::Engine;
        let data: serde_json::Map<String, J> = details
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    J::String(base64::engine::general_purpose::STANDARD.encode(v)),
                )
            })
            .collect();
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": ns,
                "ownerReferences": [{
                    "apiVersion": self.cx.kind.ar.api_version,
                    "kind": self.cx.kind.ar.kind,
                    "name": self.name(),
                    "uid": uid,
                    "controller": true,
                    "blockOwnerDeletion": true,
                }],
            },
            "type": CONNECTION_SECRET_TYPE,
            "data": data,
        });
        let api: Api<Secret> = Api::namespaced(self.cx.shared.client.clone(), ns);
        api.patch(
            name,
            &PatchParams::apply(MANAGER).force(),
            &Patch::Apply(&secret),
        )
        .await
        .map_err(kerr("write the connection secret"))?;
        tracing::info!(secret = %format!("{ns}/{name}"), keys = details.len(), "published connection details");
        self.cx
            .shared
            .published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(uid, digest);
        Ok(())
    }

    fn status_with(&self, ready: Option<&Condition>, synced: Option<&Condition>) -> J {
        let existing = &self.obj.data["status"];
        let mut conds: Vec<Condition> = existing["conditions"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| serde_json::from_value(c.clone()).ok())
                    .collect()
            })
            .unwrap_or_default();
        let now = conditions::now_rfc3339();
        let generation = self.obj.metadata.generation;
        for c in [ready, synced].into_iter().flatten() {
            conds = conditions::set(&conds, c.clone(), &now, generation);
        }
        let mut status = serde_json::Map::new();
        let at = self
            .at_provider
            .clone()
            .or_else(|| existing.get("atProvider").cloned());
        if let Some(at) = at {
            status.insert("atProvider".into(), at);
        }
        status.insert(
            "conditions".into(),
            serde_json::to_value(conds).unwrap_or(J::Null),
        );
        if let Some(g) = generation {
            status.insert("observedGeneration".into(), json!(g));
        }
        J::Object(status)
    }

    /// Server-side applies the status when it differs from what the object already shows (an
    /// unchanged poll costs no write).
    async fn apply_status(&mut self, status: J) -> Result<(), Error> {
        if self.obj.data.get("status") == Some(&status) {
            return Ok(());
        }
        let body = json!({
            "apiVersion": self.cx.kind.ar.api_version,
            "kind": self.cx.kind.ar.kind,
            "metadata": { "name": self.name() },
            "status": status,
        });
        let o = self
            .api
            .patch_status(
                &self.name(),
                &PatchParams::apply(MANAGER).force(),
                &Patch::Apply(&body),
            )
            .await
            .map_err(kerr("write status"))?;
        self.obj = o;
        Ok(())
    }

    /// Shows progress (Creating, Deleting) before a long operation; failures only log, as the
    /// final status write follows anyway.
    async fn write_status_now(&mut self, ready: Condition) {
        let status = self.status_with(Some(&ready), None);
        if let Err(e) = self.apply_status(status).await {
            tracing::warn!(error = %e, "cannot write progress status");
        }
    }

    /// Writes the outcome: Ready as decided, Synced from the result.
    async fn finish(&mut self, result: Result<Action, Error>) -> Result<Action, Error> {
        if self.released {
            return result;
        }
        let synced = match (&result, &self.synced) {
            (_, Some(s)) => s.clone(),
            (Ok(_), None) => conditions::reconcile_success(),
            (Err(e), None) => conditions::reconcile_error(&e.to_string()),
        };
        let status = self.status_with(self.ready.clone().as_ref(), Some(&synced));
        match self.apply_status(status).await {
            Ok(()) => result,
            Err(Error::Kube {
                source: kube::Error::Api(s),
                ..
            }) if s.code == 404 => result,
            Err(e) => result.and(Err(e)),
        }
    }
}

/// Turns error diagnostics into an invalid-spec error naming each field in camelCase.
fn check(d: crate::diag::Diagnostics) -> Result<(), Error> {
    let errors: Vec<String> = d
        .iter()
        .filter(|x| x.severity == Severity::Error)
        .map(|x| match &x.path {
            Some(p) => format!("{}: {}: {}", convert::field_path(p), x.summary, x.detail),
            None => format!("{}: {}", x.summary, x.detail),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(Error::Spec(errors.join("; ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_an_error_of_this_reconcile() {
        let ok: Result<u8, Error> = caught(async { Ok(7) }).await;
        assert_eq!(ok.unwrap(), 7);
        let boom = caught(async {
            let d: u64 = std::hint::black_box(u64::MAX);
            if d > 1 {
                panic!("overflow when adding duration to instant");
            }
            Ok(0u8)
        })
        .await;
        let e = boom.unwrap_err();
        assert!(matches!(e, Error::Panicked(_)), "{e}");
        assert!(
            e.to_string().contains("overflow when adding duration"),
            "{e}"
        );
        let formatted: Result<(), Error> = caught(async {
            let n = std::hint::black_box(3);
            panic!("formatted {n}")
        })
        .await;
        assert!(formatted.unwrap_err().to_string().contains("formatted 3"));
    }

    #[test]
    fn fault_spec_parses() {
        assert_eq!(Faults::parse(None), Faults::default());
        let f = Faults::parse(Some("after-create:5s"));
        assert_eq!(f.after_create, Some(Duration::from_secs(5)));
        assert_eq!(f.before_create, None);
    }

    #[test]
    fn ready_condition_follows_the_observed_readiness() {
        let progressing = Readiness::Progressing("1 of 2 replicas available".into());
        let c = ready_condition(&progressing, Some("Creating"));
        assert_eq!(
            (c.status.as_str(), c.reason.as_str(), c.message.as_str()),
            ("False", "Creating", "1 of 2 replicas available")
        );
        assert_eq!(
            ready_condition(&progressing, Some("Available")).reason,
            "Updating"
        );
        let failed = Readiness::Failed {
            summary: "Rollout failed".into(),
            detail: "ProgressDeadlineExceeded".into(),
        };
        let c = ready_condition(&failed, None);
        assert_eq!(
            (c.reason.as_str(), c.message.as_str()),
            ("Unavailable", "Rollout failed: ProgressDeadlineExceeded")
        );
        assert_eq!(ready_condition(&Readiness::Ready, None).reason, "Available");
        let poll = Duration::from_secs(60);
        assert_eq!(next_observation(&Readiness::Ready, poll), poll);
        assert_eq!(next_observation(&progressing, poll), Duration::from_secs(5));
    }

    #[test]
    fn invalid_diagnostics_name_camel_case_fields() {
        let mut d = crate::diag::Diagnostics::new();
        d.attr_error(
            crate::diag::AttrPath::attr("nodes").then("min"),
            "Bad size",
            "min must be at most max.",
        );
        d.push(crate::diag::Diagnostic::warning("w", "ignored"));
        let e = check(d).unwrap_err().to_string();
        assert_eq!(e, "invalid spec.forProvider: spec.forProvider.nodes.min: Bad size: min must be at most max.");
    }

    #[test]
    fn rate_limiter_spaces_requests_after_the_burst() {
        let now = tokio::time::Instant::now();
        let interval = Duration::from_millis(100);
        let mut next = now.checked_sub(Duration::from_secs(10)).unwrap_or(now);
        let slots: Vec<Duration> = (0..105)
            .map(|_| slot(&mut next, now, interval, 100).saturating_duration_since(now))
            .collect();
        assert!(
            slots[..100].iter().all(|d| d.is_zero()),
            "a burst of 100 goes at once"
        );
        assert_eq!(
            slots[104],
            Duration::from_millis(400),
            "then one per interval"
        );
    }

    /// The reconciler against the scripted fake API, with a scripted resource whose "cloud" is
    /// one slot the tests inspect and change (drift, readiness).
    mod scripted {
        use super::super::*;
        use crate::crossplane::fake_api::FakeApi;
        use crate::cty::Type;
        use crate::error::ApplyError;
        use crate::resource::Operation;
        use crate::schema::{Attribute, Block};
        use async_trait::async_trait;
        use kube::runtime::events::Reporter;

        #[derive(Default)]
        struct Cloud {
            object: Option<Value>,
            readiness: Option<Readiness>,
            /// What a rollback restores.
            good: Option<Value>,
            deleting: bool,
        }

        #[derive(Default)]
        struct Widget {
            cloud: Mutex<Cloud>,
            calls: Mutex<Vec<String>>,
        }

        impl Widget {
            fn call(&self, c: impl Into<String>) {
                self.calls.lock().unwrap().push(c.into());
            }
            fn calls(&self) -> Vec<String> {
                std::mem::take(&mut *self.calls.lock().unwrap())
            }
            fn set_ready(&self, r: Readiness) {
                self.cloud.lock().unwrap().readiness = Some(r);
            }
        }

        fn schema() -> Schema {
            Schema::new(
                0,
                Block::new("a scripted widget")
                    .attr(Attribute::computed("id", Type::String, "ID"))
                    .attr(Attribute::required("name", Type::String, "name"))
                    .attr(Attribute::optional("size", Type::Number, "size"))
                    .attr(Attribute::computed("status", Type::String, "status")),
            )
        }

        #[async_trait]
        impl Resource for Widget {
            fn type_name(&self) -> &'static str {
                "paved_widget"
            }
            fn schema(&self) -> Schema {
                schema()
            }
            async fn read(
                &self,
                _ctx: &Context,
                state: &Value,
            ) -> Result<Option<Observed>, ResourceError> {
                self.call("read");
                let c = self.cloud.lock().unwrap();
                Ok(c.object.as_ref().map(|o| {
                    let mut v = state.clone();
                    v.set_attr("size", o.get("size").clone());
                    v.set_attr("status", Value::string("seen"));
                    Observed {
                        state: v,
                        readiness: c.readiness.clone().unwrap_or(Readiness::Ready),
                    }
                }))
            }
            async fn create(&self, _ctx: &Context, planned: &Value) -> Result<Value, ApplyError> {
                self.call(format!(
                    "create {}",
                    planned.get("id").as_str().unwrap_or("?")
                ));
                let mut v = planned.clone();
                v.set_attr("status", Value::string("new"));
                let mut c = self.cloud.lock().unwrap();
                c.object = Some(v.clone());
                c.readiness = Some(Readiness::Progressing("starting".into()));
                Ok(v)
            }
            async fn update(
                &self,
                _ctx: &Context,
                prior: &Value,
                planned: &Value,
            ) -> Result<Value, ApplyError> {
                self.call(format!(
                    "update size {} -> {}",
                    prior.get("size").as_f64().unwrap_or(0.0),
                    planned.get("size").as_f64().unwrap_or(0.0)
                ));
                let mut v = planned.clone();
                v.set_attr("status", Value::string("changed"));
                let mut c = self.cloud.lock().unwrap();
                c.good = c.object.take();
                c.object = Some(v.clone());
                c.readiness = Some(Readiness::Progressing("rolling out".into()));
                Ok(v)
            }
            async fn delete(
                &self,
                _ctx: &Context,
                _prior: &Value,
            ) -> Result<Deletion, ResourceError> {
                self.call("delete");
                let mut c = self.cloud.lock().unwrap();
                if c.deleting {
                    c.object = None;
                    return Ok(Deletion::Gone);
                }
                c.deleting = true;
                Ok(Deletion::InProgress("still deleting the widget".into()))
            }
            async fn recover(
                &self,
                _ctx: &Context,
                _observed: &Value,
                _failure: &str,
            ) -> Result<Recovery, ApplyError> {
                self.call("recover");
                let mut c = self.cloud.lock().unwrap();
                match c.good.take() {
                    Some(g) => {
                        c.object = Some(g.clone());
                        c.readiness = Some(Readiness::Progressing("rolling back".into()));
                        Ok(Recovery::RolledBack {
                            to: g,
                            note: "size 1 serves again".into(),
                        })
                    }
                    None => {
                        c.object = None;
                        Ok(Recovery::Removed {
                            note: "removed".into(),
                        })
                    }
                }
            }
            fn choose_id(&self, planned: &Value) -> Option<String> {
                planned.get("name").as_str().map(|n| format!("w-{n}"))
            }
            fn importer(&self) -> Option<&dyn crate::resource::ImportState> {
                Some(self)
            }
            fn timeout(&self, _v: &Value, _op: Operation) -> Duration {
                Duration::from_secs(1)
            }
        }

        #[async_trait]
        impl crate::resource::ImportState for Widget {
            async fn import(&self, _ctx: &Context, id: &str) -> Result<Value, ResourceError> {
                self.call(format!("import {id}"));
                let mut v = schema().block.null_object();
                v.set_attr("id", Value::string(id));
                Ok(v)
            }
        }

        const PATH: &str = "/apis/paved.dev/v1alpha1/widgets/one";

        struct World {
            fake: FakeApi,
            widget: Arc<Widget>,
            cx: Arc<KindContext>,
        }

        fn world(spec: J) -> World {
            world_with(spec, None)
        }

        fn world_with(spec: J, audit: Option<Arc<crate::audit::Trail>>) -> World {
            let fake = FakeApi::new();
            fake.put(
                "/apis/paved.dev/v1alpha1/providerconfigs/default",
                json!({"apiVersion": "paved.dev/v1alpha1", "kind": "ProviderConfig",
                       "metadata": {"name": "default"}, "spec": {}}),
            );
            fake.put(
                PATH,
                json!({"apiVersion": "paved.dev/v1alpha1", "kind": "Widget",
                       "metadata": {"name": "one"}, "spec": spec}),
            );
            let client = fake.client();
            let recorder = Recorder::new(
                client.clone(),
                Reporter {
                    controller: "paved-test".into(),
                    instance: None,
                },
            );
            let mut shared = Shared::new(
                client,
                recorder,
                Duration::from_secs(60),
                1000,
                Faults::default(),
            );
            shared.audit = audit;
            let shared = Arc::new(shared);
            let widget = Arc::new(Widget::default());
            let cx = Arc::new(KindContext {
                shared,
                kind: ManagedKind::new(widget.clone()),
            });
            World { fake, widget, cx }
        }

        impl World {
            async fn reconcile(&self) -> Result<Action, Error> {
                let obj: DynamicObject =
                    serde_json::from_value(self.fake.get(PATH).expect("the MR exists")).unwrap();
                reconcile(Arc::new(obj), self.cx.clone()).await
            }
            fn mr(&self) -> J {
                self.fake.get(PATH).expect("the MR exists")
            }
            fn condition(&self, t: &str) -> (String, String, String) {
                let mr = self.mr();
                let c = mr["status"]["conditions"]
                    .as_array()
                    .and_then(|a| a.iter().find(|c| c["type"] == t).cloned())
                    .unwrap_or(J::Null);
                let s = |k: &str| c[k].as_str().unwrap_or_default().to_string();
                (s("status"), s("reason"), s("message"))
            }
            fn annotation(&self, k: &str) -> Option<String> {
                self.mr()["metadata"]["annotations"][k]
                    .as_str()
                    .map(String::from)
            }
            /// Changes the widget out of band, as a drift in the cloud.
            fn drift_size(&self, size: i64) {
                self.widget
                    .cloud
                    .lock()
                    .unwrap()
                    .object
                    .as_mut()
                    .unwrap()
                    .set_attr("size", Value::int(size));
            }
            fn set_size(&self, size: i64) {
                self.fake.edit(PATH, |o| {
                    o["spec"]["forProvider"]["size"] = json!(size);
                });
            }
        }

        fn spec(size: i64) -> J {
            json!({"forProvider": {"name": "one", "size": size}})
        }

        #[tokio::test]
        async fn create_records_the_name_first_then_converges_to_ready_without_waiting() {
            let w = world(spec(1));
            w.reconcile().await.unwrap();
            assert_eq!(w.widget.calls(), ["create w-one"]);
            assert_eq!(w.annotation(EXTERNAL_NAME).as_deref(), Some("w-one"));
            assert!(w.annotation(CREATE_PENDING).is_some());
            assert!(w.annotation(CREATE_SUCCEEDED).is_some());
            assert_eq!(
                w.mr()["metadata"]["finalizers"],
                json!([FINALIZER]),
                "finalizer before anything is created"
            );
            assert_eq!(w.condition("Ready").1, "Creating");
            // Still starting: observed, reported with its progress, requeued soon; no verb.
            let a = w.reconcile().await.unwrap();
            assert_eq!(w.widget.calls(), ["read"]);
            assert_eq!(
                w.condition("Ready"),
                ("False".into(), "Creating".into(), "starting".into())
            );
            assert_eq!(a, Action::requeue(Duration::from_secs(5)));
            w.widget.set_ready(Readiness::Ready);
            let a = w.reconcile().await.unwrap();
            assert_eq!(w.condition("Ready").1, "Available");
            assert_eq!(w.condition("Synced").1, "ReconcileSuccess");
            assert_eq!(a, Action::requeue(Duration::from_secs(60)));
            assert!(w
                .fake
                .event_reasons()
                .contains(&"CreatedExternalResource".to_string()));
        }

        #[tokio::test]
        async fn an_unchanged_poll_writes_nothing() {
            let w = world(spec(1));
            w.reconcile().await.unwrap();
            w.widget.set_ready(Readiness::Ready);
            w.reconcile().await.unwrap();
            w.fake.take_requests();
            w.reconcile().await.unwrap();
            let writes: Vec<String> = w
                .fake
                .take_requests()
                .into_iter()
                .filter(|r| !r.starts_with("GET"))
                .collect();
            assert!(writes.is_empty(), "{writes:?}");
        }

        #[tokio::test]
        async fn drift_is_corrected_by_an_update_that_reports_updating() {
            let w = world(spec(1));
            w.reconcile().await.unwrap();
            w.widget.set_ready(Readiness::Ready);
            w.reconcile().await.unwrap();
            w.widget.calls();
            // Out of band, the widget shrank to 0: the desired size 1 is applied again.
            w.drift_size(0);
            w.reconcile().await.unwrap();
            assert_eq!(w.widget.calls(), ["read", "update size 0 -> 1"]);
            assert_eq!(w.condition("Ready").1, "Updating");
            assert!(w
                .fake
                .event_reasons()
                .contains(&"UpdatedExternalResource".to_string()));
        }

        #[tokio::test]
        async fn a_failed_rollout_is_rolled_back_once_and_not_applied_again() {
            let w = world(spec(1));
            w.reconcile().await.unwrap();
            w.widget.set_ready(Readiness::Ready);
            w.reconcile().await.unwrap();
            w.set_size(2);
            w.reconcile().await.unwrap();
            w.widget.calls();
            w.widget.set_ready(Readiness::Failed {
                summary: "Rollout failed".into(),
                detail: "ProgressDeadlineExceeded".into(),
            });
            let e = w.reconcile().await.unwrap_err();
            assert!(
                matches!(e, Error::FailedGeneration { generation: 2, .. }),
                "{e}"
            );
            assert_eq!(w.widget.calls(), ["read", "recover"]);
            assert_eq!(w.annotation(FAILED_GENERATION).as_deref(), Some("2"));
            assert_eq!(w.condition("Ready").1, "RollingBack");
            let (status, _, message) = w.condition("Synced");
            assert_eq!(status, "False");
            assert!(
                message.contains("Rollout failed: ProgressDeadlineExceeded"),
                "{message}"
            );
            // The old revision is ready again; generation 2 is not re-applied.
            w.widget.set_ready(Readiness::Ready);
            let e = w.reconcile().await.unwrap_err();
            assert!(matches!(e, Error::FailedGeneration { .. }), "{e}");
            assert_eq!(w.widget.calls(), ["read"]);
            assert_eq!(w.condition("Ready").1, "Available");
            assert!(w
                .fake
                .event_reasons()
                .contains(&"RolledBackExternalResource".to_string()));
            // A new spec is applied.
            w.set_size(3);
            w.reconcile().await.unwrap();
            assert_eq!(w.widget.calls(), ["read", "update size 1 -> 3"]);
        }

        #[tokio::test]
        async fn a_failed_first_revision_is_removed_and_not_created_again() {
            let w = world(spec(1));
            w.reconcile().await.unwrap();
            w.widget.set_ready(Readiness::Failed {
                summary: "Rollout failed".into(),
                detail: "pods never became ready".into(),
            });
            assert!(w.reconcile().await.is_err());
            assert_eq!(w.widget.calls(), ["create w-one", "read", "recover"]);
            assert_eq!(w.condition("Ready").1, "Deleting");
            assert!(w.reconcile().await.is_err());
            assert_eq!(w.widget.calls(), ["read"], "no second create");
        }

        #[tokio::test]
        async fn delete_keeps_the_finalizer_until_the_resource_says_gone() {
            let w = world(spec(1));
            w.reconcile().await.unwrap();
            w.widget.set_ready(Readiness::Ready);
            w.reconcile().await.unwrap();
            w.widget.calls();
            w.fake.edit(PATH, |o| {
                o["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            });
            let a = w.reconcile().await.unwrap();
            assert_eq!(w.widget.calls(), ["read", "delete"]);
            assert_eq!(
                w.condition("Ready"),
                (
                    "False".into(),
                    "Deleting".into(),
                    "still deleting the widget".into()
                )
            );
            assert_eq!(a, Action::requeue(Duration::from_secs(2)));
            w.reconcile().await.unwrap();
            assert_eq!(w.widget.calls(), ["read", "delete"]);
            assert!(w.fake.get(PATH).is_none(), "finalizer removed, object gone");
        }

        #[tokio::test]
        async fn every_change_is_one_intent_and_one_result_and_a_dead_trail_stops_the_create() {
            let dir =
                std::env::temp_dir().join(format!("paved-rec-{}", crate::audit::request_id()));
            std::fs::create_dir_all(&dir).unwrap();
            let trail = |path: std::path::PathBuf| {
                Arc::new(crate::audit::Trail::new(
                    crate::audit::AuditLog::new(path, crate::audit::DEFAULT_MAX_BYTES),
                    None,
                ))
            };
            // A path through a file: the create stops before the widget is touched.
            std::fs::write(dir.join("file"), "").unwrap();
            let w = world_with(spec(1), Some(trail(dir.join("file").join("a.jsonl"))));
            let e = w.reconcile().await.unwrap_err();
            assert!(matches!(e, Error::Audit(_)), "{e}");
            assert!(w.widget.calls().is_empty());
            assert!(w
                .fake
                .event_reasons()
                .contains(&"CannotWriteAuditRecord".to_string()));

            let log = dir.join("audit.jsonl");
            let w = world_with(spec(1), Some(trail(log.clone())));
            w.fake.edit(PATH, |o| {
                o["metadata"]["annotations"] = json!({REQUESTED_BY: "alice@example.com"});
            });
            w.reconcile().await.unwrap();
            w.widget.set_ready(Readiness::Ready);
            w.reconcile().await.unwrap();
            w.set_size(2);
            w.reconcile().await.unwrap();
            w.reconcile().await.unwrap();
            // Out of band, the widget shrank: putting it back is a drift correction.
            w.drift_size(0);
            w.reconcile().await.unwrap();
            w.widget.set_ready(Readiness::Failed {
                summary: "Rollout failed".into(),
                detail: "ProgressDeadlineExceeded".into(),
            });
            w.reconcile().await.unwrap_err();
            w.widget.set_ready(Readiness::Ready);
            w.fake.edit(PATH, |o| {
                o["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            });
            w.reconcile().await.unwrap();
            w.reconcile().await.unwrap();
            assert!(w.fake.get(PATH).is_none());

            let recs = crate::audit::AuditLog::new(&log, crate::audit::DEFAULT_MAX_BYTES)
                .read_all()
                .unwrap();
            let mut by_request: Vec<(String, Vec<&crate::audit::Record>)> = vec![];
            for r in &recs {
                match by_request.iter_mut().find(|(id, _)| *id == r.request_id) {
                    Some((_, v)) => v.push(r),
                    None => by_request.push((r.request_id.clone(), vec![r])),
                }
            }
            let actions: Vec<&str> = by_request
                .iter()
                .map(|(_, v)| v[0].action.as_str())
                .collect();
            assert_eq!(
                actions,
                ["create", "update", "drift_correct", "rollback", "delete"]
            );
            // Each record is mirrored as an Event on the managed resource.
            let reasons = w.fake.event_reasons();
            let count = |r: &str| reasons.iter().filter(|x| *x == r).count();
            assert_eq!((count("AuditIntent"), count("AuditResult")), (5, 5));
            for (_, v) in &by_request {
                let phases: Vec<_> = v.iter().map(|r| r.phase).collect();
                assert_eq!(
                    phases,
                    [crate::audit::Phase::Intent, crate::audit::Phase::Result]
                );
                assert_eq!(v[1].result, Some(crate::audit::Outcome::Succeeded));
                assert_eq!(v[0].front_end, "crossplane");
                assert_eq!(v[0].requester.as_deref(), Some("alice@example.com"));
                assert_eq!(v[1].resource_id.as_deref(), Some("w-one"));
            }
            let update = by_request[1].1[0];
            assert_eq!(update.changed.len(), 1);
            assert_eq!(update.changed[0].argument, "size");
            assert_eq!(update.changed[0].value, Some(json!(2)));
        }

        #[tokio::test]
        async fn an_interrupted_create_is_adopted_not_repeated() {
            let w = world(spec(1));
            // A previous controller recorded the name and died before confirming the create;
            // the widget exists.
            w.fake.edit(PATH, |o| {
                o["metadata"]["annotations"] = json!({
                    EXTERNAL_NAME: "w-one",
                    CREATE_PENDING: "2026-01-01T00:00:00Z",
                });
                o["metadata"]["finalizers"] = json!([FINALIZER]);
            });
            {
                let mut c = w.widget.cloud.lock().unwrap();
                let mut v = schema().block.null_object();
                v.set_attr("id", Value::string("w-one"));
                v.set_attr("name", Value::string("one"));
                v.set_attr("size", Value::int(1));
                c.object = Some(v);
            }
            w.reconcile().await.unwrap();
            assert_eq!(w.widget.calls(), ["read"]);
            assert!(w.annotation(CREATE_SUCCEEDED).is_some());
            assert_eq!(w.condition("Ready").1, "Available");
        }

        #[tokio::test]
        async fn a_pending_create_without_a_name_is_reported_not_repeated() {
            let w = world(spec(1));
            w.fake.edit(PATH, |o| {
                o["metadata"]["annotations"] = json!({CREATE_PENDING: "2026-01-01T00:00:00Z"});
            });
            let e = w.reconcile().await.unwrap_err();
            assert!(matches!(e, Error::CreateUnknown), "{e}");
            assert!(w.widget.calls().is_empty());
        }

        #[tokio::test]
        async fn paused_and_observe_only_resources_are_never_changed() {
            let w = world(spec(1));
            w.fake.edit(PATH, |o| {
                o["metadata"]["annotations"] = json!({PAUSED: "true"});
            });
            w.reconcile().await.unwrap();
            assert!(w.widget.calls().is_empty());
            assert_eq!(w.condition("Synced").1, "ReconcilePaused");

            let w = world(json!({"forProvider": {"name": "one", "size": 1},
                                 "managementPolicies": ["Observe"]}));
            w.fake.edit(PATH, |o| {
                o["metadata"]["annotations"] = json!({EXTERNAL_NAME: "w-one"});
            });
            // Nothing exists: observe-only may not create it.
            let e = w.reconcile().await.unwrap_err();
            assert!(matches!(e, Error::Missing), "{e}");
            assert_eq!(w.widget.calls(), ["import w-one", "read"]);
            {
                let mut c = w.widget.cloud.lock().unwrap();
                let mut v = schema().block.null_object();
                v.set_attr("size", Value::int(7));
                c.object = Some(v);
            }
            // It exists, drifted from the spec: observed and reported, never updated.
            w.reconcile().await.unwrap();
            assert_eq!(w.widget.calls(), ["import w-one", "read"]);
            assert_eq!(w.mr()["status"]["atProvider"]["status"], "seen");
        }

        #[tokio::test]
        async fn an_invalid_spec_is_synced_false_and_touches_nothing() {
            let w = world(json!({"forProvider": {"name": "one", "size": "big"}}));
            let e = w.reconcile().await.unwrap_err();
            assert!(matches!(e, Error::Spec(_)), "{e}");
            assert!(w.widget.calls().is_empty());
            let (status, reason, message) = w.condition("Synced");
            assert_eq!(
                (status.as_str(), reason.as_str()),
                ("False", "ReconcileError")
            );
            assert!(message.contains("spec.forProvider.size"), "{message}");
        }
    }
}
