//! Apply, observe and delete an endpoint's objects on Kubernetes, with rollout waiting and
//! automatic rollback.

use super::manifests::{self, Track, URI_ANNOTATION, VERSION_ANNOTATION};
use super::spec::{id_name, EndpointSpec};
use crate::cloud::kube::{Kind, KubeApi};
use crate::context::Context;
use crate::cty::Value;
use crate::diag::AttrPath;
use crate::error::{ApplyError, ResourceError};
use crate::resources::workload::{self as rollout, Progress, WaitError};
use serde_json::Value as Json;
use std::time::{Duration, Instant};

/// Attributes the provider computes; everything else is an argument.
pub const COMPUTED: [&str; 6] = [
    "id",
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
    kube.apply(
        Kind::Deployment,
        ns,
        &manifests::deployment(s, Track::Stable, Some(annotation)),
    )
    .await?;
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

async fn wait_rollout(
    kube: &dyn KubeApi,
    ctx: &Context,
    s: &EndpointSpec,
    deadline: Instant,
) -> Result<(), WaitError> {
    let (stable, canary) = s.split();
    for (t, n) in [(Track::Stable, stable), (Track::Canary, canary)] {
        if n > 0 || t == Track::Stable {
            rollout::wait_for(
                kube,
                Kind::Deployment,
                &s.namespace,
                &manifests::deployment_name(s, t),
                deadline,
                &ctx.cancel,
                rollout::deployment_progress,
            )
            .await?;
        }
    }
    Ok(())
}

fn describe(e: &WaitError) -> String {
    match e {
        WaitError::Failed {
            object,
            condition,
            message,
        } => format!("{object} failed its rollout: condition {condition}: {message}"),
        WaitError::Other(e) => e.to_string(),
    }
}

/// A rollout that failed with a valid configuration: a runtime failure.
fn rollout_error(summary: &str, detail: String) -> ResourceError {
    ResourceError::failed(summary, detail)
}

/// What exists after a failed step, for the error's state; a failed read is logged (the error
/// being reported is the step's, not this one's) and yields `None`.
async fn observe_after_failure(ctx: &Context, v: &Value) -> Option<Value> {
    match observe(ctx, v).await {
        Ok(s) => s,
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

/// Create (prior = None) or update an endpoint.
pub async fn apply(
    ctx: &Context,
    prior: Option<&Value>,
    planned: &Value,
    op: &str,
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
    let started = Instant::now();
    let op_timeout = crate::resources::common::timeout(planned, op, Duration::from_secs(15 * 60));
    let deadline = crate::resources::common::deadline(op_timeout.min(s.rollout_timeout));
    let annotation = spec_annotation(planned)?;
    if let Err(e) = apply_objects(kube.as_ref(), &s, &annotation).await {
        let state = match prior {
            // An update keeps what exists in state.
            Some(p) => observe_after_failure(ctx, p).await,
            // A create removes the objects it managed to make; if that fails too, the state
            // of what exists is returned so nothing is orphaned.
            None => {
                match delete_objects(
                    kube.as_ref(),
                    &s,
                    crate::resources::common::deadline(Duration::from_secs(120)),
                    &ctx.cancel,
                )
                .await
                {
                    Ok(()) => None,
                    Err(c) => {
                        tracing::error!(error = %c.report(), "removing the objects of the failed create failed; returning what exists");
                        observe_after_failure(ctx, planned)
                            .await
                            .or_else(|| Some(placeholder(planned)))
                    }
                }
            }
        };
        return Err(ApplyError { error: e, state });
    }
    tracing::info!(endpoint = %s.name, namespace = %s.namespace, "objects applied");
    if !s.wait {
        return finish(ctx, planned).await;
    }
    let Err(failure) = wait_rollout(kube.as_ref(), ctx, &s, deadline).await else {
        tracing::info!(endpoint = %s.name, elapsed_ms = started.elapsed().as_millis() as u64, "rollout available");
        return finish(ctx, planned).await;
    };
    let what = describe(&failure);
    tracing::warn!(endpoint = %s.name, failure = %what, "rollout failed");
    if !s.auto_rollback {
        let state = observe_after_failure(ctx, planned).await;
        return Err(ApplyError {
            error: rollout_error("Rollout failed", format!("{what}\nauto_rollback is off: the failed revision is left in place for inspection.")),
            state,
        });
    }
    match prior {
        Some(prior) => {
            let mut p = EndpointSpec::from_value(prior);
            let restore = async {
                resolve(kube.as_ref(), &mut p).await?;
                apply_objects(kube.as_ref(), &p, &spec_annotation(prior)?).await?;
                let back = crate::resources::common::deadline(p.rollout_timeout);
                wait_rollout(kube.as_ref(), ctx, &p, back)
                    .await
                    .map_err(|e| rollout_error("Rollback failed", describe(&e)))
            }
            .await;
            let state = observe_after_failure(ctx, prior)
                .await
                .or_else(|| Some(prior.clone()));
            let (summary, detail) = match restore {
                Ok(()) => ("Rollout failed and was rolled back", format!(
                    "{what}\nRolled back: the previous revision (model version {}) is serving again. Fix the new revision (image, health.readiness_path, resources) and apply again.",
                    p.model_version
                )),
                Err(e) => ("Rollout failed and so did the rollback", format!("{what}\nRolling back to model version {} also failed: {e}", p.model_version)),
            };
            Err(ApplyError {
                error: rollout_error(summary, detail),
                state,
            })
        }
        None => {
            // Nothing to roll back to: remove what this create made, so nothing half-made stays.
            let cleanup = delete_objects(
                kube.as_ref(),
                &s,
                crate::resources::common::deadline(Duration::from_secs(120)),
                &ctx.cancel,
            )
            .await;
            let (summary, detail, state) = match cleanup {
                Ok(()) => ("Rollout failed and was rolled back", format!("{what}\nRolled back: the endpoint's objects were removed; nothing was created."), None),
                Err(e) => (
                    "Rollout failed and so did the cleanup",
                    format!("{what}\nRemoving the endpoint's objects also failed: {e}"),
                    observe_after_failure(ctx, planned).await.or_else(|| Some(placeholder(planned))),
                ),
            };
            Err(ApplyError {
                error: rollout_error(summary, detail),
                state,
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
    v.set_attr("status", Value::string("Degraded"));
    v
}

async fn finish(ctx: &Context, planned: &Value) -> Result<Value, ApplyError> {
    match observe(ctx, planned).await {
        Ok(Some(v)) => Ok(v),
        Ok(None) => Err(ResourceError::NotFound(
            "the endpoint's Deployment right after applying it".into(),
        )
        .into()),
        Err(e) => Err(e.into()),
    }
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

/// Reads the endpoint's objects back into a state value (`None` when the stable Deployment is
/// gone). Arguments the cluster holds (model version/uri, image, canary presence, replica
/// bounds) are taken from the cluster so out-of-band edits show up as drift.
pub async fn observe(ctx: &Context, state: &Value) -> Result<Option<Value>, ResourceError> {
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
        .await?;
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
    let mut progresses = vec![rollout::deployment_progress(&stable)];
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
        progresses.push(rollout::deployment_progress(c));
    }
    let status = if progresses
        .iter()
        .any(|p| matches!(p, Progress::Failed { .. }))
    {
        "Degraded"
    } else if progresses.iter().all(|p| *p == Progress::Complete) {
        "Ready"
    } else {
        "Progressing"
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
    Ok(Some(out))
}

async fn delete_objects(
    kube: &dyn KubeApi,
    s: &EndpointSpec,
    deadline: Instant,
    cancel: &crate::context::Cancel,
) -> Result<(), ResourceError> {
    let ns = &s.namespace;
    let deployments = [manifests::deployment_name(s, Track::Canary), s.name.clone()];
    for d in &deployments {
        kube.delete(Kind::Deployment, ns, d).await?;
    }
    for k in ALL_KINDS {
        kube.delete(k, ns, &s.name).await?;
    }
    for d in &deployments {
        rollout::wait_gone(kube, Kind::Deployment, ns, d, deadline, cancel).await?;
    }
    for k in ALL_KINDS {
        rollout::wait_gone(kube, k, ns, &s.name, deadline, cancel).await?;
    }
    Ok(())
}

pub async fn delete(ctx: &Context, prior: &Value) -> Result<(), ResourceError> {
    let s = EndpointSpec::from_value(prior);
    let deadline = crate::resources::common::deadline(crate::resources::common::timeout(
        prior,
        "delete",
        Duration::from_secs(600),
    ));
    delete_objects(ctx.kube()?.as_ref(), &s, deadline, &ctx.cancel).await
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
