//! Apply, observe, delete and import a vector database's objects, waiting with watches.

use super::manifests::{self, DB_LABEL, ROLE_LABEL};
use super::spec::VectorDbSpec;
use crate::cloud::kube::{Kind, KubeApi};
use crate::context::Context;
use crate::cty::Value;
use crate::error::{ApplyError, ResourceError};
use crate::resources::common::timeout;
use crate::resources::workload::{self, Progress};
use std::time::{Duration, Instant};

/// Attributes the provider computes; everything else is an argument.
pub const COMPUTED: [&str; 6] = [
    "id",
    "endpoint",
    "port",
    "api_key",
    "connection_secret",
    "status",
];

/// The objects besides the StatefulSet that must exist for the database to be whole.
fn companions(s: &VectorDbSpec) -> Vec<(Kind, String)> {
    let mut v = vec![
        (Kind::Secret, s.secret_name()),
        (Kind::ConfigMap, s.config_map_name()),
        (Kind::Service, s.name.clone()),
        (Kind::Service, s.headless()),
        (Kind::NetworkPolicy, s.name.clone()),
    ];
    if s.replicas > 1 {
        v.push((Kind::PodDisruptionBudget, s.name.clone()));
    }
    if s.backup.is_some() {
        v.push((Kind::CronJob, s.backup_name()));
        if s.backup_credentials.is_some() {
            v.push((Kind::Secret, s.backup_credentials_name()));
        }
    }
    v
}

async fn apply_objects(
    kube: &dyn KubeApi,
    s: &VectorDbSpec,
    key: &str,
    annotation: &str,
) -> Result<(), ResourceError> {
    let ns = &s.namespace;
    kube.apply(Kind::Secret, ns, &manifests::secret(s, key))
        .await?;
    kube.apply(Kind::ConfigMap, ns, &manifests::config_map(s))
        .await?;
    kube.apply(Kind::Service, ns, &manifests::headless_service(s))
        .await?;
    kube.apply(Kind::Service, ns, &manifests::client_service(s))
        .await?;
    kube.apply(Kind::NetworkPolicy, ns, &manifests::network_policy(s))
        .await?;
    if s.replicas > 1 {
        kube.apply(
            Kind::PodDisruptionBudget,
            ns,
            &manifests::pod_disruption_budget(s),
        )
        .await?;
    } else {
        kube.delete(Kind::PodDisruptionBudget, ns, &s.name).await?;
    }
    kube.apply(
        Kind::StatefulSet,
        ns,
        &manifests::statefulset(s, annotation),
    )
    .await?;
    let credentials = s
        .backup
        .as_ref()
        .and_then(|_| manifests::backup_credentials_secret(s));
    match credentials {
        Some(secret) => {
            kube.apply(Kind::Secret, ns, &secret).await?;
        }
        None => {
            kube.delete(Kind::Secret, ns, &s.backup_credentials_name())
                .await?
        }
    }
    match &s.backup {
        Some((schedule, dest)) => {
            kube.apply(
                Kind::CronJob,
                ns,
                &manifests::backup_cron_job(s, schedule, dest),
            )
            .await?;
        }
        None => kube.delete(Kind::CronJob, ns, &s.backup_name()).await?,
    }
    Ok(())
}

fn wait_failed(summary: &str, e: workload::WaitError, hint: &str) -> ResourceError {
    workload::failure(summary, e, hint)
}

/// Waits for the engine, then runs the bootstrap Job for the current collection list (unless
/// it already completed) and removes Jobs of earlier lists.
async fn converge(
    ctx: &Context,
    kube: &dyn KubeApi,
    s: &VectorDbSpec,
    deadline: Instant,
) -> Result<(), ResourceError> {
    let ns = &s.namespace;
    workload::wait_for(
        kube,
        Kind::StatefulSet,
        ns,
        &s.name,
        deadline,
        &ctx.cancel,
        workload::statefulset_progress,
    )
    .await
    .map_err(|e| {
        wait_failed(
            "Vector database did not become ready",
            e,
            &format!(
                "\nInspect it with: kubectl -n {ns} describe statefulset {}",
                s.name
            ),
        )
    })?;
    let job = s.bootstrap_job_name();
    if !s.collections.is_empty() {
        let existing = kube
            .get(Kind::Job, ns, &job)
            .await?
            .map(|j| workload::job_progress(&j));
        if let Some(Progress::Failed { .. }) = existing {
            // A Job that failed (e.g. the engine was down) is run again from scratch.
            kube.delete(Kind::Job, ns, &job).await?;
            workload::wait_gone(kube, Kind::Job, ns, &job, deadline, &ctx.cancel).await?;
        }
        if existing != Some(Progress::Complete) {
            kube.apply(Kind::Job, ns, &manifests::bootstrap_job(s))
                .await?;
            workload::wait_for(
                kube,
                Kind::Job,
                ns,
                &job,
                deadline,
                &ctx.cancel,
                workload::job_progress,
            )
            .await
            .map_err(|e| {
                wait_failed(
                    "Creating the collections failed",
                    e,
                    &format!("\nSee the script's output with: kubectl -n {ns} logs job/{job}"),
                )
            })?;
        }
    }
    let selector = format!("{DB_LABEL}={},{ROLE_LABEL}=bootstrap", s.name);
    for old in kube.list(Kind::Job, ns, &selector).await? {
        if let Some(n) = old["metadata"]["name"].as_str().filter(|n| *n != job) {
            kube.delete(Kind::Job, ns, n).await?;
        }
    }
    Ok(())
}

/// The arguments for the import annotation; the backup's secret key stays in its Secret.
fn annotation(planned: &Value) -> Result<String, ResourceError> {
    let mut v = planned.clone();
    if let Some(b) = v.get_mut("backup").filter(|b| !b.is_null()) {
        b.set_attr("secret_access_key", Value::Null);
        b.set_attr("secret_access_key_wo", Value::Null);
    }
    workload::encode_args(&super::schema::schema(), &v, &COMPUTED)
}

/// Create (prior = None) or update.
pub async fn apply(
    ctx: &Context,
    prior: Option<&Value>,
    planned: &Value,
    op: &str,
) -> Result<Value, ApplyError> {
    let kube = ctx.kube()?.clone();
    let s = VectorDbSpec::from_value(planned);
    let key = planned
        .get("api_key")
        .as_str()
        .or_else(|| prior.and_then(|p| p.get("api_key").as_str()))
        // An empty key (imported while the Secret was missing) would disable authentication.
        .filter(|k| !k.is_empty())
        .map_or_else(workload::random_secret, str::to_string);
    let mut planned = planned.clone();
    planned.set_attr("api_key", Value::string(&key));
    let deadline =
        crate::resources::common::deadline(timeout(&planned, op, Duration::from_secs(15 * 60)));
    let annotation = annotation(&planned)?;
    let result = match apply_objects(kube.as_ref(), &s, &key, &annotation).await {
        Ok(()) => converge(ctx, kube.as_ref(), &s, deadline).await,
        Err(e) => Err(e),
    };
    let observed = observe(ctx, &planned).await;
    match (result, observed) {
        (Ok(()), Ok(Some(v))) => Ok(v),
        (Ok(()), Ok(None)) => Err(ResourceError::NotFound(format!(
            "StatefulSet {}/{} right after applying it",
            s.namespace, s.name
        ))
        .into()),
        (Ok(()), Err(e)) => Err(ApplyError {
            error: e,
            state: Some(placeholder(&planned)),
        }),
        // Whatever exists is returned so Terraform records it (and taints a failed create).
        (Err(e), obs) => {
            let state = match obs {
                Ok(Some(v)) => Some(v),
                // A create that failed before its StatefulSet existed removes what it made, so
                // nothing is left outside Terraform's state.
                Ok(None) if prior.is_none() => match delete(ctx, &planned).await {
                    Ok(()) => None,
                    Err(c) => {
                        tracing::error!(error = %c.report(), "removing the objects of the failed create failed; returning what may exist");
                        Some(placeholder(&planned))
                    }
                },
                Ok(None) => prior.cloned(),
                Err(r) => {
                    tracing::warn!(error = %r.report(), "cannot read what the failed apply left; returning a placeholder");
                    Some(placeholder(&planned))
                }
            };
            Err(ApplyError { error: e, state })
        }
    }
}

fn set_identity(v: &mut Value, s: &VectorDbSpec) {
    v.set_attr("id", Value::string(format!("{}/{}", s.namespace, s.name)));
    v.set_attr("endpoint", Value::string(s.host()));
    v.set_attr("port", Value::int(s.engine.port()));
    v.set_attr("connection_secret", Value::string(s.secret_name()));
}

/// A wholly-known state for objects whose read-back failed.
fn placeholder(planned: &Value) -> Value {
    let s = VectorDbSpec::from_value(planned);
    let mut v = planned.clone();
    set_identity(&mut v, &s);
    for (k, d) in [
        ("engine_version", s.version.clone()),
        ("image", s.image.clone()),
    ] {
        if !v.get(k).is_wholly_known() {
            v.set_attr(k, Value::string(d));
        }
    }
    if v.get("status").is_unknown() {
        v.set_attr(
            "status",
            Value::string("Degraded: could not be read back after apply"),
        );
    }
    v
}

/// Reads the database back (`None` when its StatefulSet is gone). Arguments the cluster holds
/// (image, version, replicas, resources) come from the cluster so out-of-band edits show as
/// drift; missing companion objects or a failed bootstrap make the status Degraded, which the
/// next plan repairs.
pub async fn observe(ctx: &Context, state: &Value) -> Result<Option<Value>, ResourceError> {
    let kube = ctx.kube()?;
    let s = VectorDbSpec::from_value(state);
    let ns = &s.namespace;
    let Some(sts) = kube.get(Kind::StatefulSet, ns, &s.name).await? else {
        return Ok(None);
    };
    let mut out = state.clone();
    let c = &sts["spec"]["template"]["spec"]["containers"][0];
    if let Some(img) = c["image"].as_str() {
        out.set_attr("image", Value::string(img));
    }
    if let Some(v) = sts["metadata"]["annotations"]["paved.dev/engine-version"].as_str() {
        out.set_attr("engine_version", Value::string(v));
    }
    if let Some(r) = sts["spec"]["replicas"].as_i64() {
        out.set_attr("replicas", Value::int(r));
    }
    if let Some(res) = out.get_mut("resources").filter(|r| !r.is_null()) {
        for (attr, k) in [("cpu", "cpu"), ("memory", "memory")] {
            if let Some(q) = c["resources"]["requests"][k].as_str() {
                res.set_attr(attr, Value::string(q));
            }
        }
    }
    let mut problems = vec![];
    for (kind, name) in companions(&s) {
        match kube.get(kind, ns, &name).await? {
            None => problems.push(format!("{} {name} is missing", kind.name())),
            Some(obj) if kind == Kind::Secret && name == s.secret_name() => {
                match workload::secret_value(&obj, "api-key") {
                    Some(k) => out.set_attr("api_key", Value::string(k)),
                    None => problems.push(format!("Secret {name} has no api-key")),
                }
            }
            // A stored secret key is read back (drift); a write-only one never reaches state.
            Some(obj) if kind == Kind::Secret => {
                if let (Some(k), Some(b)) = (
                    workload::secret_value(&obj, "AWS_SECRET_ACCESS_KEY"),
                    out.get_mut("backup")
                        .filter(|b| !b.get("secret_access_key").is_null()),
                ) {
                    b.set_attr("secret_access_key", Value::string(k));
                }
            }
            Some(_) => {}
        }
    }
    if !s.collections.is_empty() {
        let job = s.bootstrap_job_name();
        match kube.get(Kind::Job, ns, &job).await? {
            None => problems.push(format!("the collections' bootstrap Job {job} is missing")),
            Some(j) => {
                if let Progress::Failed { condition, .. } = workload::job_progress(&j) {
                    problems.push(format!("bootstrap Job {job} failed ({condition})"));
                }
            }
        }
    }
    let status = workload::status_text(&problems, &[workload::statefulset_progress(&sts)]);
    set_identity(&mut out, &s);
    if !out.get("api_key").is_wholly_known() {
        out.set_attr("api_key", Value::string(""));
    }
    out.set_attr("status", Value::string(status));
    Ok(Some(out))
}

pub async fn delete(ctx: &Context, prior: &Value) -> Result<(), ResourceError> {
    let kube = ctx.kube()?;
    let s = VectorDbSpec::from_value(prior);
    let ns = &s.namespace;
    let deadline =
        crate::resources::common::deadline(timeout(prior, "delete", Duration::from_secs(600)));
    let mut objects = vec![
        (Kind::CronJob, s.backup_name()),
        (Kind::Secret, s.backup_credentials_name()),
        (Kind::StatefulSet, s.name.clone()),
        (Kind::PodDisruptionBudget, s.name.clone()),
    ];
    let selector = format!("{DB_LABEL}={}", s.name);
    objects.extend(companions(&s).into_iter().filter(|(k, n)| {
        !matches!(k, Kind::CronJob | Kind::PodDisruptionBudget) && *n != s.backup_credentials_name()
    }));
    workload::delete_all(kube.as_ref(), ns, &objects, deadline, &ctx.cancel).await?;
    workload::delete_labelled(
        kube.as_ref(),
        Kind::Job,
        ns,
        &selector,
        deadline,
        &ctx.cancel,
    )
    .await?;
    // The StatefulSet's retention policy deletes its claims; any left behind (e.g. from
    // replicas scaled away) go too, so destroy leaves nothing.
    workload::delete_labelled(
        kube.as_ref(),
        Kind::PersistentVolumeClaim,
        ns,
        &selector,
        deadline,
        &ctx.cancel,
    )
    .await
}

/// Import by `namespace/name` from the arguments paved wrote on the StatefulSet.
pub async fn import(ctx: &Context, id: &str) -> Result<Value, ResourceError> {
    workload::import_by_annotation(
        ctx,
        id,
        Kind::StatefulSet,
        str::to_string,
        &super::schema::schema(),
    )
    .await
}
