//! Apply, observe and delete an endpoint's objects on Kubernetes, and roll a failed rollout
//! back. Every verb starts a change and returns; [`observe`] reports the rollout's progress.

use super::manifests::{self, Track, URI_ANNOTATION, VERSION_ANNOTATION};
use super::spec::{id_name, EndpointSpec};
use crate::cloud::kube::{Kind, KubeApi};
use crate::context::Context;
use crate::cty::Value;
use crate::diag::AttrPath;
use crate::error::{ApplyError, ResourceError};
use crate::resource::{Deletion, Observed, Readiness, Recovery};
use crate::resources::cost;
use crate::resources::workload::{self as rollout, Progress};
use serde_json::Value as Json;

/// Attributes the provider computes; everything else is an argument.
pub const COMPUTED: [&str; 8] = [
    "id",
    "hourly_cost_usd",
    "monthly_cost_usd",
    "url",
    "served_revision",
    "ready_replicas",
    "status",
    "lineage",
];

/// The configured arguments as JSON, stored on the stable Deployment for import.
fn spec_annotation(planned: &Value) -> Result<String, ResourceError> {
    rollout::encode_args(&super::schema::schema(), planned, &COMPUTED)
}

const ALL_KINDS: [Kind; 5] = [
    Kind::HorizontalPodAutoscaler,
    Kind::PodDisruptionBudget,
    Kind::NetworkPolicy,
    Kind::Service,
    Kind::ServiceAccount,
];

async fn apply_objects(
    kube: &dyn KubeApi,
    s: &EndpointSpec,
    annotation: &str,
    rollback: Option<&str>,
) -> Result<(), ResourceError> {
    let ns = &s.namespace;
    kube.apply(Kind::ServiceAccount, ns, &manifests::service_account(s))
        .await?;
    kube.apply(Kind::NetworkPolicy, ns, &manifests::network_policy(s))
        .await?;
    kube.apply(Kind::Service, ns, &manifests::service(s))
        .await?;
    kube.apply(
        Kind::PodDisruptionBudget,
        ns,
        &manifests::pod_disruption_budget(s),
    )
    .await?;
    let mut stable = manifests::deployment(s, Track::Stable, Some(annotation));
    if let Some(r) = rollback {
        stable["metadata"]["annotations"][ROLLBACK_ANNOTATION] = Json::String(r.to_string());
    }
    kube.apply(Kind::Deployment, ns, &stable).await?;
    let canary_name = manifests::deployment_name(s, Track::Canary);
    if s.canary.is_some() {
        kube.apply(
            Kind::Deployment,
            ns,
            &manifests::deployment(s, Track::Canary, None),
        )
        .await?;
    } else {
        kube.delete(Kind::Deployment, ns, &canary_name).await?;
    }
    kube.apply(Kind::HorizontalPodAutoscaler, ns, &manifests::hpa(s))
        .await?;
    Ok(())
}

/// Annotation on the stable Deployment naming the revision a failed rollout of the current one
/// goes back to: the arguments (as in the spec annotation) of the last revision that was
/// serving, or [`NO_ROLLBACK`]. Kept on the object, so the controller (which keeps no history)
/// and a Terraform run after a crash roll back alike. Absent on a fresh create: nothing to go
/// back to, so a failed create removes what it made.
pub const ROLLBACK_ANNOTATION: &str = "paved.dev/rollback-spec";
/// An update made while no revision was serving: a failure leaves it in place (there is no
/// good revision to restore, and removing an existing endpoint is not a rollback).
const NO_ROLLBACK: &str = "none";

/// What exists after a failed step, for the error's state; a failed read is logged (the error
/// being reported is the step's, not this one's) and yields `None`.
async fn observe_after_failure(ctx: &Context, v: &Value) -> Option<Value> {
    match observe(ctx, v).await {
        Ok(s) => s.map(|o| o.state),
        Err(e) => {
            tracing::warn!(error = %e.report(), "cannot read the endpoint after a failed step");
            None
        }
    }
}

/// Checks that the referenced vector database and feature store exist and reads what the
/// Deployment needs from them, before anything is changed.
async fn resolve(kube: &dyn KubeApi, s: &mut EndpointSpec) -> Result<(), ResourceError> {
    let ns = s.namespace.clone();
    if let Some(id) = &s.vector_db_id {
        let name = format!("{}-credentials", id_name(id));
        if kube.get(Kind::Secret, &ns, &name).await?.is_none() {
            return Err(ResourceError::invalid(AttrPath::attr("vector_db_id"), "Vector database not found", format!("paved_vector_db {id} does not exist (Secret {name} is missing in namespace {ns}). Create it first; referencing paved_vector_db.<name>.id makes Terraform order the two.")));
        }
    }
    if let Some(id) = &s.feature_store_id {
        let name = format!("{}-feast", id_name(id));
        let cm = kube.get(Kind::ConfigMap, &ns, &name).await?.ok_or_else(|| {
            ResourceError::invalid(AttrPath::attr("feature_store_id"), "Feature store not found", format!("paved_feature_store {id} does not exist (ConfigMap {name} is missing in namespace {ns}). Create it first; referencing paved_feature_store.<name>.id makes Terraform order the two."))
        })?;
        let d = &cm["data"];
        s.feature_store_secret = d["secret_name"]
            .as_str()
            .zip(d["secret_key"].as_str())
            .map(|(a, b)| (a.to_string(), b.to_string()));
    }
    Ok(())
}

/// The revision a failed rollout of `new` would go back to: the one serving now when its
/// rollout is complete, else the one the current revision would have gone back to (a chain of
/// failing updates still returns to the last good one).
async fn rollback_target(
    kube: &dyn KubeApi,
    s: &EndpointSpec,
    new: &str,
) -> Result<String, ResourceError> {
    let Some(stable) = kube.get(Kind::Deployment, &s.namespace, &s.name).await? else {
        return Ok(NO_ROLLBACK.into());
    };
    let current = ann(&stable, rollout::SPEC_ANNOTATION);
    let before = ann(&stable, ROLLBACK_ANNOTATION).unwrap_or(NO_ROLLBACK);
    Ok(match current {
        // Re-applying the same revision keeps its own way back.
        Some(c) if c == new => before.to_string(),
        Some(c) if rollout::deployment_progress(&stable) == Progress::Complete => c.to_string(),
        _ => before.to_string(),
    })
}

/// Starts a create (prior = None) or an update: applies every object and returns at once;
/// [`observe`] reports the rollout.
pub async fn apply(
    ctx: &Context,
    prior: Option<&Value>,
    planned: &Value,
) -> Result<Value, ApplyError> {
    let kube = ctx.kube()?.clone();
    let d = super::pool_compatibility(ctx, planned);
    if let Some(e) = d
        .iter()
        .find(|d| d.severity == crate::diag::Severity::Error)
    {
        return Err(ResourceError::Invalid {
            path: e.path.clone(),
            summary: e.summary.clone(),
            detail: e.detail.clone(),
        }
        .into());
    }
    let mut s = EndpointSpec::from_value(planned);
    resolve(kube.as_ref(), &mut s).await?;
    let annotation = spec_annotation(planned)?;
    let rollback = match prior {
        None => None,
        Some(_) => Some(rollback_target(kube.as_ref(), &s, &annotation).await?),
    };
    if let Err(e) = apply_objects(kube.as_ref(), &s, &annotation, rollback.as_deref()).await {
        let state = match prior {
            // An update keeps what exists in state.
            Some(p) => observe_after_failure(ctx, p).await,
            // A create removes the objects it managed to make; if that cannot even be started,
            // the state of what exists is returned so nothing is orphaned.
            None => match start_delete(kube.as_ref(), &s).await {
                Ok(_) => None,
                Err(c) => {
                    tracing::error!(error = %c.report(), "removing the objects of the failed create failed; returning what exists");
                    observe_after_failure(ctx, planned)
                        .await
                        .or_else(|| Some(placeholder(planned)))
                }
            },
        };
        return Err(ApplyError { error: e, state });
    }
    tracing::info!(endpoint = %s.name, namespace = %s.namespace, "objects applied; rollout started");
    match observe(ctx, planned).await {
        Ok(Some(o)) => Ok(o.state),
        Ok(None) => Err(ResourceError::NotFound(
            "the endpoint's Deployment right after applying it".into(),
        )
        .into()),
        Err(e) => Err(ApplyError::with_state(e, placeholder(planned))),
    }
}

/// After a failed rollout: with `auto_rollback`, restores the revision named by
/// [`ROLLBACK_ANNOTATION`], or removes the endpoint when this was its first revision. Starts
/// the change and returns, like the verbs.
pub async fn recover(ctx: &Context, observed: &Value) -> Result<Recovery, ApplyError> {
    let s = EndpointSpec::from_value(observed);
    if !s.auto_rollback {
        return Ok(Recovery::None);
    }
    let kube = ctx.kube()?.clone();
    let stable = kube
        .get(Kind::Deployment, &s.namespace, &s.name)
        .await
        .map_err(ResourceError::from)?;
    let target = stable
        .as_ref()
        .and_then(|d| ann(d, ROLLBACK_ANNOTATION))
        .map(str::to_string);
    match target {
        None => {
            tracing::warn!(endpoint = %s.name, "first revision failed: removing the endpoint's objects");
            start_delete(kube.as_ref(), &s).await?;
            Ok(Recovery::Removed {
                note: "Rolled back: the endpoint's objects were removed; nothing was created."
                    .into(),
            })
        }
        Some(t) if t == NO_ROLLBACK => Ok(Recovery::None),
        Some(t) => {
            let what = format!(
                "the rollback revision of Deployment {}/{}",
                s.namespace, s.name
            );
            let mut back = rollout::decode_args_text(&super::schema::schema(), &t, &what)?;
            back.set_attr("id", observed.get("id").clone());
            let mut p = EndpointSpec::from_value(&back);
            tracing::warn!(endpoint = %s.name, version = %p.model_version, "rolling back");
            resolve(kube.as_ref(), &mut p).await?;
            apply_objects(kube.as_ref(), &p, &t, None).await?;
            let to = match observe(ctx, &back).await {
                Ok(Some(o)) => o.state,
                _ => placeholder(&back),
            };
            Ok(Recovery::RolledBack {
                to,
                note: format!(
                    "Rolled back: the previous revision (model version {}) is serving again. Fix the new revision (image, health.readiness_path, resources) and apply again.",
                    p.model_version
                ),
            })
        }
    }
}

/// A wholly-known state for objects whose read-back failed, so Terraform records (and can
/// destroy) them.
fn placeholder(planned: &Value) -> Value {
    let s = EndpointSpec::from_value(planned);
    let mut v = planned.clone();
    v.set_attr("id", Value::string(format!("{}/{}", s.namespace, s.name)));
    v.set_attr("url", Value::string(s.url()));
    v.set_attr("lineage", Value::string_map(s.lineage()));
    v.set_attr("served_revision", Value::string("unknown"));
    v.set_attr("ready_replicas", Value::int(0));
    v.set_attr("hourly_cost_usd", Value::float(0.0));
    if v.get("monthly_cost_usd").is_unknown() {
        v.set_attr("monthly_cost_usd", Value::Null);
    }
    v.set_attr("status", Value::string("Degraded"));
    v
}

fn ann<'a>(obj: &'a Json, key: &str) -> Option<&'a str> {
    obj["metadata"]["annotations"][key].as_str()
}

fn served(dep: &Json) -> String {
    let version = ann(dep, VERSION_ANNOTATION).unwrap_or("unknown");
    let rev = ann(dep, "deployment.kubernetes.io/revision").unwrap_or("?");
    let mut s = format!("{version} (revision {rev})");
    match rollout::deployment_progress(dep) {
        Progress::Complete => {}
        Progress::Waiting(_) => s.push_str(" rolling out"),
        Progress::Failed { .. } => s.push_str(" degraded"),
    }
    s
}

/// Cost from the Deployment this spec renders (per replica: CPU and memory requests, GPUs):
/// `monthly_cost_usd` over the autoscaling bounds, `hourly_cost_usd` for the ready replicas
/// (unknown while they are).
pub fn set_costs(ctx: &Context, v: &mut Value) {
    let s = EndpointSpec::from_value(v);
    let p = cost::UnitPrices::new(&ctx.defaults.price_overrides).with_gpu(s.gpu_hourly_usd);
    let unit = cost::per_replica(&manifests::deployment(&s, Track::Stable, None), &p);
    v.set_attr(
        "monthly_cost_usd",
        cost::monthly_value(cost::Range {
            min: unit * s.min_replicas as f64,
            max: unit * s.max_replicas as f64,
        }),
    );
    let hourly = match v.get("ready_replicas").as_i64() {
        Some(r) => Value::float(cost::round(unit * r as f64)),
        None => Value::Unknown,
    };
    v.set_attr("hourly_cost_usd", hourly);
}

/// Reads the endpoint's objects back into a state value (`None` when the stable Deployment is
/// gone). Arguments the cluster holds (model version/uri, image, canary presence, replica
/// bounds) are taken from the cluster so out-of-band edits show up as drift.
pub async fn observe(ctx: &Context, state: &Value) -> Result<Option<Observed>, ResourceError> {
    let kube = ctx.kube()?;
    let s = EndpointSpec::from_value(state);
    let ns = &s.namespace;
    let Some(stable) = kube.get(Kind::Deployment, ns, &s.name).await? else {
        return Ok(None);
    };
    let canary = kube
        .get(
            Kind::Deployment,
            ns,
            &manifests::deployment_name(&s, Track::Canary),
        )
        .await?
        // A canary being deleted (a promote or removal in progress) no longer counts: its
        // replicas are not part of the autoscaling bounds any more.
        .filter(|c| c["metadata"]["deletionTimestamp"].is_null());
    let hpa = kube.get(Kind::HorizontalPodAutoscaler, ns, &s.name).await?;
    let mut out = state.clone();

    if let Some(m) = out.get_mut("model") {
        if let Some(v) = ann(&stable, VERSION_ANNOTATION) {
            m.set_attr("version", Value::string(v));
        }
        if let Some(u) = ann(&stable, URI_ANNOTATION) {
            m.set_attr("uri", Value::string(u));
        }
    }
    if let (Some(r), Some(img)) = (
        out.get_mut("runtime"),
        stable["spec"]["template"]["spec"]["containers"][0]["image"].as_str(),
    ) {
        r.set_attr("image", Value::string(img));
    }
    match (&canary, out.get("canary").is_null()) {
        (None, false) => out.set_attr("canary", Value::Null),
        (Some(c), false) => {
            if let (Some(cv), Some(v)) = (out.get_mut("canary"), ann(c, VERSION_ANNOTATION)) {
                cv.set_attr("version", Value::string(v));
            }
        }
        _ => {}
    }
    if let (Some(h), false) = (&hpa, out.get("autoscaling").is_null()) {
        let canary_n = canary
            .as_ref()
            .map_or(0, |c| c["spec"]["replicas"].as_i64().unwrap_or(0));
        let stable_target = h["spec"]["scaleTargetRef"]["name"].as_str() == Some(s.name.as_str());
        let extra = if stable_target { canary_n } else { 0 };
        if let Some(a) = out.get_mut("autoscaling") {
            if let Some(min) = h["spec"]["minReplicas"].as_i64() {
                a.set_attr("min_replicas", Value::int(min + extra));
            }
            if let Some(max) = h["spec"]["maxReplicas"].as_i64() {
                a.set_attr("max_replicas", Value::int(max + extra));
            }
        }
    }

    let mut revision = served(&stable);
    let mut ready = stable["status"]["readyReplicas"].as_i64().unwrap_or(0);
    let mut tracks = vec![(
        format!("Deployment {ns}/{}", s.name),
        rollout::deployment_progress(&stable),
    )];
    if let Some(c) = &canary {
        let total = stable["spec"]["replicas"].as_i64().unwrap_or(0)
            + c["spec"]["replicas"].as_i64().unwrap_or(0);
        revision = format!(
            "{revision}; canary {} on {}/{} replicas",
            served(c),
            c["spec"]["replicas"].as_i64().unwrap_or(0),
            total
        );
        ready += c["status"]["readyReplicas"].as_i64().unwrap_or(0);
        let name = format!(
            "Deployment {ns}/{}",
            manifests::deployment_name(&s, Track::Canary)
        );
        // A canary the arguments no longer ask for is on its way out (a promote, or a
        // rollback of a failed canary): it only delays readiness until it is gone.
        let progress = match s.canary {
            Some(_) => rollout::deployment_progress(c),
            None => Progress::Waiting("removing the canary".into()),
        };
        tracks.push((name, progress));
    }
    let observed = rollout::readiness(&[], &tracks, "Rollout failed");
    let status = match observed {
        Readiness::Ready => "Ready",
        Readiness::Progressing(_) => "Progressing",
        Readiness::Failed { .. } => "Degraded",
    };
    out.set_attr("id", Value::string(format!("{ns}/{}", s.name)));
    out.set_attr("url", Value::string(s.url()));
    // Lineage describes what runs, so it follows the values read back from the cluster.
    out.set_attr(
        "lineage",
        Value::string_map(EndpointSpec::from_value(&out).lineage()),
    );
    out.set_attr("served_revision", Value::string(revision));
    out.set_attr("ready_replicas", Value::int(ready));
    out.set_attr("status", Value::string(status));
    set_costs(ctx, &mut out);
    let readiness = match observed {
        // `wait = false`: ready once Kubernetes accepted the objects; a failure still shows.
        Readiness::Progressing(_) if !s.wait => Readiness::Ready,
        Readiness::Failed { summary, detail } if !s.auto_rollback => Readiness::Failed {
            summary,
            detail: format!("{detail}\nauto_rollback is off: the failed revision is left in place for inspection."),
        },
        r => r,
    };
    Ok(Some(Observed {
        state: out,
        readiness,
    }))
}

/// Every object of the endpoint, canary first.
fn objects(s: &EndpointSpec) -> Vec<(Kind, String)> {
    let mut v = vec![
        (
            Kind::Deployment,
            manifests::deployment_name(s, Track::Canary),
        ),
        (Kind::Deployment, s.name.clone()),
    ];
    v.extend(ALL_KINDS.iter().map(|k| (*k, s.name.clone())));
    v
}

async fn start_delete(kube: &dyn KubeApi, s: &EndpointSpec) -> Result<Deletion, ResourceError> {
    rollout::start_delete(kube, &s.namespace, &objects(s), &[]).await
}

/// Starts deleting every object of the endpoint; `Gone` once none is left.
pub async fn delete(ctx: &Context, prior: &Value) -> Result<Deletion, ResourceError> {
    start_delete(ctx.kube()?.as_ref(), &EndpointSpec::from_value(prior)).await
}

/// The objects a wait on `state` watches (all of them, so a delete's wait ends when the last
/// one goes).
pub fn watched_objects(state: &Value) -> (String, Vec<(Kind, String)>) {
    let s = EndpointSpec::from_value(state);
    let o = objects(&s);
    (s.namespace, o)
}

/// Import by `namespace/name`: the arguments come from the spec annotation paved wrote on the
/// stable Deployment; `read` then adds what the cluster reports.
pub async fn import(ctx: &Context, id: &str) -> Result<Value, ResourceError> {
    rollout::import_by_annotation(
        ctx,
        id,
        Kind::Deployment,
        str::to_string,
        &super::schema::schema(),
    )
    .await
}
