//! Apply, observe, delete and import a vector database's objects. The verbs start a change
//! and return; [`observe`] reports when the engine and its collections are ready.

use super::credentials;
use super::manifests::{self, DB_LABEL, ROLE_LABEL};
use super::spec::VectorDbSpec;
use super::team;
use crate::cloud::kube::{Kind, KubeApi};
use crate::context::Context;
use crate::cty::Value;
use crate::error::{ApplyError, ResourceError};
use crate::resource::{Deletion, Observed};
use crate::resources::cost;
use crate::resources::workload::{self, Progress};
use std::time::Duration;

/// Attributes the provider computes; everything else is an argument.
pub const COMPUTED: [&str; 9] = [
    "id",
    "team_secrets",
    "hourly_cost_usd",
    "monthly_cost_usd",
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

/// Starts the collections' bootstrap Job for the current collection list (unless it already
/// completed; the Job's script waits for the engine, so it starts with the StatefulSet) and
/// removes Jobs of earlier lists. A Job that failed (e.g. the engine never came up) is run
/// again from scratch: the one wait here is for its deletion, which Kubernetes finishes in
/// seconds.
async fn start_bootstrap(
    ctx: &Context,
    kube: &dyn KubeApi,
    s: &VectorDbSpec,
) -> Result<(), ResourceError> {
    let ns = &s.namespace;
    let job = s.bootstrap_job_name();
    if !s.collections.is_empty() {
        let existing = kube
            .get(Kind::Job, ns, &job)
            .await?
            .map(|j| workload::job_progress(&j));
        if let Some(Progress::Failed { .. }) = existing {
            kube.delete(Kind::Job, ns, &job).await?;
            let gone = crate::resources::common::deadline(Duration::from_secs(60));
            workload::wait_gone(kube, Kind::Job, ns, &job, gone, &ctx.cancel).await?;
        }
        if existing != Some(Progress::Complete) {
            kube.apply(Kind::Job, ns, &manifests::bootstrap_job(s))
                .await?;
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

/// Starts a create (prior = None) or an update: applies every object, the bootstrap Job
/// included, and returns; [`observe`] reports when the engine is ready and the collections
/// exist.
pub async fn apply(
    ctx: &Context,
    prior: Option<&Value>,
    planned: &Value,
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
    let annotation = annotation(&planned)?;
    let result = match apply_objects(kube.as_ref(), &s, &key, &annotation).await {
        Ok(()) => match start_bootstrap(ctx, kube.as_ref(), &s).await {
            Ok(()) => credentials::apply(ctx, kube.as_ref(), &s, now()).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let observed = observe(ctx, &planned).await.map(|o| o.map(|o| o.state));
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
                    Ok(_) => None,
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

/// The clock rotation is measured against.
fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::now_utc()
}

/// `team_secrets` as planned: every team that gets a credential, or null without any.
pub fn team_secrets_value(s: &VectorDbSpec) -> Value {
    let refs = team::secret_refs(s);
    if refs.is_empty() {
        Value::Null
    } else {
        Value::string_map(refs)
    }
}

fn set_identity(v: &mut Value, s: &VectorDbSpec) {
    v.set_attr("id", Value::string(format!("{}/{}", s.namespace, s.name)));
    v.set_attr("endpoint", Value::string(s.host()));
    v.set_attr("port", Value::int(s.engine.port()));
    v.set_attr("connection_secret", Value::string(s.secret_name()));
}

/// A wholly-known state for objects whose read-back failed.
/// Cost from the StatefulSet this spec renders: every replica's requests and volume. The
/// replica count is fixed, so the monthly range is one figure and the hourly one is known at
/// plan time. Bootstrap and backup Jobs run minutes a day and are left out.
pub fn set_costs(ctx: &Context, v: &mut Value) {
    let s = VectorDbSpec::from_value(v);
    let p = cost::UnitPrices::new(&ctx.defaults.price_overrides);
    let hourly = cost::object_hourly(&manifests::statefulset(&s, ""), &p);
    // The monthly figure is the stored hourly one × 730, so the two always agree.
    let hourly = cost::round(hourly);
    v.set_attr("hourly_cost_usd", Value::float(hourly));
    v.set_attr(
        "monthly_cost_usd",
        cost::monthly_value(cost::Range::fixed(hourly)),
    );
}

fn placeholder(planned: &Value) -> Value {
    let s = VectorDbSpec::from_value(planned);
    let mut v = planned.clone();
    set_identity(&mut v, &s);
    if !v.get("team_secrets").is_wholly_known() {
        v.set_attr("team_secrets", team_secrets_value(&s));
    }
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
pub async fn observe(ctx: &Context, state: &Value) -> Result<Option<Observed>, ResourceError> {
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
    let mut progress = vec![(
        format!("StatefulSet {ns}/{}", s.name),
        workload::statefulset_progress(&sts),
    )];
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
                let p = workload::job_progress(&j);
                if let Progress::Failed { condition, .. } = &p {
                    problems.push(format!("bootstrap Job {job} failed ({condition})"));
                }
                progress.push((format!("the collections' bootstrap Job {ns}/{job}"), p));
            }
        }
    }
    let teams = credentials::observe(kube.as_ref(), &s, now()).await?;
    out.set_attr("team_secrets", teams.team_secrets);
    problems.extend(teams.problems);
    // The Job whose failure the readiness reports, with the words for it.
    let mut failing = ("Creating the collections failed", s.bootstrap_job_name());
    if let Some((job, p)) = teams.job {
        let failed = |q: &Progress| matches!(q, Progress::Failed { .. });
        // The first failure is the one reported: the collections' Job comes first.
        if failed(&p) && !progress.iter().any(|(_, q)| failed(q)) {
            failing = ("Setting the team roles failed", job.clone());
        }
        progress.push((format!("the team roles Job {ns}/{job}"), p));
    }
    let status = workload::status_text(&problems, &[progress[0].1.clone()]);
    set_identity(&mut out, &s);
    if !out.get("api_key").is_wholly_known() {
        out.set_attr("api_key", Value::string(""));
    }
    out.set_attr("status", Value::string(status));
    set_costs(ctx, &mut out);
    // StatefulSets have no progress deadline, so only the bootstrap Job can fail (and a failed
    // workload wins over the problems list, which names the same Job).
    let readiness = match workload::readiness(&problems, &progress, failing.0) {
        crate::resource::Readiness::Failed { summary, detail } => {
            crate::resource::Readiness::Failed {
                summary,
                detail: format!(
                    "{detail}\nSee the script's output with: kubectl -n {ns} logs job/{}",
                    failing.1
                ),
            }
        }
        r => r,
    };
    Ok(Some(Observed {
        state: out,
        readiness,
    }))
}

/// Every object of the database: the named ones, and (by label) its Jobs and volume claims —
/// the StatefulSet's retention policy deletes its claims, and any left behind (e.g. from
/// replicas scaled away) go too, so destroy leaves nothing.
pub fn objects(s: &VectorDbSpec) -> (workload::ObjectRefs, workload::ObjectRefs) {
    let mut objects = vec![
        (Kind::CronJob, s.backup_name()),
        (Kind::Secret, s.backup_credentials_name()),
        (Kind::StatefulSet, s.name.clone()),
        (Kind::PodDisruptionBudget, s.name.clone()),
        (Kind::Secret, s.team_roles_secret_name()),
    ];
    objects.extend(companions(s).into_iter().filter(|(k, n)| {
        !matches!(k, Kind::CronJob | Kind::PodDisruptionBudget) && *n != s.backup_credentials_name()
    }));
    let selector = format!("{DB_LABEL}={}", s.name);
    let labelled = vec![
        (Kind::Job, selector.clone()),
        (Kind::PersistentVolumeClaim, selector),
    ];
    (objects, labelled)
}

/// Starts deleting every object of the database; `Gone` once none is left.
pub async fn delete(ctx: &Context, prior: &Value) -> Result<Deletion, ResourceError> {
    let s = VectorDbSpec::from_value(prior);
    let kube = ctx.kube()?;
    // Team Secrets live in the teams' namespaces; a database that had none never lists them.
    if !team::credentials(&s).is_empty()
        || kube
            .get(Kind::Secret, &s.namespace, &s.team_roles_secret_name())
            .await?
            .is_some()
    {
        credentials::delete_all(kube.as_ref(), &s).await?;
    }
    let (named, labelled) = objects(&s);
    workload::start_delete(kube.as_ref(), &s.namespace, &named, &labelled).await
}

/// The objects a wait on `state` watches: the engine and the bootstrap Job.
pub fn watched_objects(state: &Value) -> (String, Vec<(Kind, String)>) {
    let s = VectorDbSpec::from_value(state);
    let v = vec![
        (Kind::StatefulSet, s.name.clone()),
        (Kind::Job, s.bootstrap_job_name()),
    ];
    (s.namespace, v)
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
