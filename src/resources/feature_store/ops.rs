//! Apply, observe, delete and import a feature store's objects. The verbs start a change and
//! return; [`observe`] reports when the feature server is available.

use super::config::{self, OnlineTarget};
use super::manifests::{self, STORE_LABEL};
use super::spec::{FeatureStoreSpec, OnlineStore};
use crate::cloud::kube::{Kind, KubeApi};
use crate::context::Context;
use crate::cty::Value;
use crate::diag::AttrPath;
use crate::error::{ApplyError, ResourceError};
use crate::resource::{Deletion, Observed};
use crate::resources::{cost, workload};
use serde_json::Value as Json;

/// Attributes the provider computes; everything else is an argument.
pub const COMPUTED: [&str; 7] = [
    "id",
    "hourly_cost_usd",
    "monthly_cost_usd",
    "online_store_endpoint",
    "feature_server_url",
    "client_config_map",
    "status",
];

fn vector_db_path() -> AttrPath {
    AttrPath::attr("online_store").then("vector_db_id")
}

/// Where the online store is. A vector database is looked up through its connection Secret,
/// which says its engine and address, so a missing or unsupported database fails before
/// anything is changed.
pub async fn resolve_target(
    kube: &dyn KubeApi,
    s: &FeatureStoreSpec,
) -> Result<OnlineTarget, ResourceError> {
    Ok(match &s.online {
        OnlineStore::Redis { .. } => OnlineTarget {
            host: format!("{}.{}.svc.cluster.local", s.redis_name(), s.namespace),
            port: 6379,
            engine: "redis".into(),
        },
        OnlineStore::External { connection_string } => {
            let ep = config::external_endpoint(connection_string);
            let (host, port) = ep
                .rsplit_once(':')
                .map_or((ep.as_str(), 6379), |(h, p)| (h, p.parse().unwrap_or(6379)));
            OnlineTarget {
                host: host.to_string(),
                port,
                engine: "redis".into(),
            }
        }
        OnlineStore::VectorDb { namespace, name } => {
            let secret_name = format!("{name}-credentials");
            let secret = kube.get(Kind::Secret, namespace, &secret_name).await?.ok_or_else(|| {
                ResourceError::invalid(vector_db_path(), "Vector database not found", format!("paved_vector_db {namespace}/{name} does not exist (its Secret {secret_name} is missing). Create it first; referencing paved_vector_db.<name>.id makes Terraform order the two."))
            })?;
            let engine = workload::secret_value(&secret, "engine").unwrap_or_default();
            let Some((_, min)) = config::feast_store_for(&engine) else {
                return Err(ResourceError::invalid(vector_db_path(), "Engine not supported by Feast", format!("paved_vector_db {namespace}/{name} runs {engine:?}, which Feast cannot use as an online store; use a pgvector or qdrant database, or kind = \"redis\".")));
            };
            if let Some(have) = config::image_version(&s.image).filter(|v| *v < min) {
                return Err(ResourceError::invalid(
                    AttrPath::attr("feature_server").then("image"),
                    "Feast too old for the online store",
                    format!(
                        "Feast {}.{} cannot use {engine}; it needs Feast {}.{} or newer.",
                        have.0, have.1, min.0, min.1
                    ),
                ));
            }
            OnlineTarget {
                host: workload::secret_value(&secret, "endpoint").unwrap_or_default(),
                port: workload::secret_value(&secret, "port")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(0),
                engine,
            }
        }
    })
}

/// Objects that must exist for the store to be whole, besides the server Deployment.
fn companions(s: &FeatureStoreSpec) -> Vec<(Kind, String)> {
    let mut v = vec![
        (Kind::ConfigMap, s.config_map_name()),
        (Kind::Service, s.name.clone()),
        (Kind::NetworkPolicy, s.name.clone()),
    ];
    if !matches!(s.online, OnlineStore::VectorDb { .. }) {
        v.push((Kind::Secret, s.secret_name()));
    }
    if matches!(s.online, OnlineStore::Redis { .. }) {
        v.extend([
            (Kind::StatefulSet, s.redis_name()),
            (Kind::Service, s.redis_name()),
            (Kind::NetworkPolicy, s.redis_name()),
        ]);
    }
    if s.uses_files() {
        v.push((Kind::PersistentVolumeClaim, s.data_claim()));
    }
    if s.schedule.is_some() {
        v.push((Kind::CronJob, s.materialize_name()));
    }
    v
}

/// Applies every object at once: the feature server retries its online store until the
/// managed Redis is up, so nothing waits here.
async fn apply_objects(
    kube: &dyn KubeApi,
    s: &FeatureStoreSpec,
    target: &OnlineTarget,
    annotation: &str,
) -> Result<(), ResourceError> {
    let ns = &s.namespace;
    let password = match kube.get(Kind::Secret, ns, &s.secret_name()).await? {
        Some(sec) => {
            workload::secret_value(&sec, "password").unwrap_or_else(workload::random_secret)
        }
        None => workload::random_secret(),
    };
    match manifests::secret(s, &password) {
        Some(sec) => kube.apply(Kind::Secret, ns, &sec).await?,
        None => {
            kube.delete(Kind::Secret, ns, &s.secret_name()).await?;
            Json::Null
        }
    };
    kube.apply(Kind::ConfigMap, ns, &manifests::config_map(s, target))
        .await?;
    if s.uses_files() {
        kube.apply(Kind::PersistentVolumeClaim, ns, &manifests::data_claim(s))
            .await?;
    } else {
        kube.delete(Kind::PersistentVolumeClaim, ns, &s.data_claim())
            .await?;
    }
    if let OnlineStore::Redis { storage_size } = &s.online {
        kube.apply(Kind::Service, ns, &manifests::redis_service(s))
            .await?;
        kube.apply(
            Kind::NetworkPolicy,
            ns,
            &manifests::network_policy(s, &s.redis_name(), "redis", 6379, manifests::Admit::Owner),
        )
        .await?;
        kube.apply(
            Kind::StatefulSet,
            ns,
            &manifests::redis_statefulset(s, storage_size),
        )
        .await?;
    } else {
        for k in [Kind::StatefulSet, Kind::Service, Kind::NetworkPolicy] {
            kube.delete(k, ns, &s.redis_name()).await?;
        }
    }
    kube.apply(Kind::Service, ns, &manifests::server_service(s))
        .await?;
    kube.apply(
        Kind::NetworkPolicy,
        ns,
        &manifests::network_policy(
            s,
            &s.name,
            "server",
            manifests::SERVER_PORT,
            manifests::Admit::OwnerAndAllowed,
        ),
    )
    .await?;
    let config_hash = manifests::config_hash(s, target, &password);
    kube.apply(
        Kind::Deployment,
        ns,
        &manifests::server_deployment(s, annotation, &config_hash),
    )
    .await?;
    match &s.schedule {
        Some(sc) => {
            kube.apply(Kind::CronJob, ns, &manifests::materialize_cron_job(s, sc))
                .await?;
        }
        None => {
            kube.delete(Kind::CronJob, ns, &s.materialize_name())
                .await?
        }
    }
    Ok(())
}

/// The arguments for the import annotation; the external connection string is a secret and
/// stays in the Secret.
fn annotation(planned: &Value) -> Result<String, ResourceError> {
    let mut v = planned.clone();
    if let Some(o) = v.get_mut("online_store").filter(|o| !o.is_null()) {
        o.set_attr("connection_string", Value::Null);
        o.set_attr("connection_string_wo", Value::Null);
    }
    workload::encode_args(&super::schema::schema(), &v, &COMPUTED)
}

/// Starts a create (prior = None) or an update: applies every object and returns;
/// [`observe`] reports when the server (and the managed Redis) are ready.
pub async fn apply(
    ctx: &Context,
    prior: Option<&Value>,
    planned: &Value,
) -> Result<Value, ApplyError> {
    let kube = ctx.kube()?.clone();
    let s = FeatureStoreSpec::from_value(planned);
    let target = resolve_target(kube.as_ref(), &s).await?;
    let result = apply_objects(kube.as_ref(), &s, &target, &annotation(planned)?).await;
    let observed = observe(ctx, planned).await.map(|o| o.map(|o| o.state));
    match (result, observed) {
        (Ok(()), Ok(Some(v))) => Ok(v),
        (Ok(()), Ok(None)) => Err(ResourceError::NotFound(format!(
            "Deployment {}/{} right after applying it",
            s.namespace,
            s.server_name()
        ))
        .into()),
        (Ok(()), Err(e)) => Err(ApplyError {
            error: e,
            state: Some(placeholder(planned, &target)),
        }),
        // Whatever exists is returned so Terraform records it (and taints a failed create).
        (Err(e), obs) => Err(ApplyError {
            error: e,
            state: match obs {
                Ok(Some(v)) => Some(v),
                // A create that failed before its Deployment existed removes what it made, so
                // nothing is left outside Terraform's state.
                Ok(None) if prior.is_none() => match delete(ctx, planned).await {
                    Ok(_) => None,
                    Err(c) => {
                        tracing::error!(error = %c.report(), "removing the objects of the failed create failed; returning what may exist");
                        Some(placeholder(planned, &target))
                    }
                },
                Ok(None) => prior.cloned(),
                Err(r) => {
                    tracing::warn!(error = %r.report(), "cannot read what the failed apply left; returning a placeholder");
                    Some(placeholder(planned, &target))
                }
            },
        }),
    }
}

fn set_identity(v: &mut Value, s: &FeatureStoreSpec) {
    v.set_attr("id", Value::string(format!("{}/{}", s.namespace, s.name)));
    v.set_attr("feature_server_url", Value::string(s.server_url()));
    v.set_attr("client_config_map", Value::string(s.config_map_name()));
    v.set_attr("feast_project", Value::string(&s.feast_project));
}

/// Cost from the objects this spec renders: the feature server's replicas, the managed Redis
/// with its volume, and the data volume when the registry or offline store are files. The
/// materialization CronJob runs minutes per schedule and is left out.
pub fn set_costs(ctx: &Context, v: &mut Value) {
    let s = FeatureStoreSpec::from_value(v);
    let p = cost::UnitPrices::new(&ctx.defaults.price_overrides);
    let mut hourly = cost::object_hourly(&manifests::server_deployment(&s, "", ""), &p);
    if let OnlineStore::Redis { storage_size } = &s.online {
        hourly += cost::object_hourly(&manifests::redis_statefulset(&s, storage_size), &p);
    }
    if s.uses_files() {
        hourly += cost::object_hourly(&manifests::data_claim(&s), &p);
    }
    // The monthly figure is the stored hourly one × 730, so the two always agree.
    let hourly = cost::round(hourly);
    v.set_attr("hourly_cost_usd", Value::float(hourly));
    v.set_attr(
        "monthly_cost_usd",
        cost::monthly_value(cost::Range::fixed(hourly)),
    );
}

fn placeholder(planned: &Value, target: &OnlineTarget) -> Value {
    let s = FeatureStoreSpec::from_value(planned);
    let mut v = planned.clone();
    set_identity(&mut v, &s);
    v.set_attr("online_store_endpoint", Value::string(target.endpoint()));
    v.set_attr(
        "status",
        Value::string("Degraded: could not be read back after apply"),
    );
    v
}

/// Reads the store back (`None` when its feature server Deployment is gone). The server image
/// and replicas and an external connection string come from the cluster so out-of-band edits
/// show as drift; missing companion objects make the status Degraded, which the next plan
/// repairs.
pub async fn observe(ctx: &Context, state: &Value) -> Result<Option<Observed>, ResourceError> {
    let kube = ctx.kube()?;
    let s = FeatureStoreSpec::from_value(state);
    let ns = &s.namespace;
    let Some(dep) = kube.get(Kind::Deployment, ns, &s.server_name()).await? else {
        return Ok(None);
    };
    let mut out = state.clone();
    if let Some(fs) = out.get_mut("feature_server").filter(|f| !f.is_null()) {
        if let Some(img) = dep["spec"]["template"]["spec"]["containers"][0]["image"].as_str() {
            fs.set_attr("image", Value::string(img));
        }
        if let Some(r) = dep["spec"]["replicas"].as_i64() {
            fs.set_attr("replicas", Value::int(r));
        }
    }
    let mut problems = vec![];
    let mut progress = vec![workload::deployment_progress(&dep)];
    let mut tracks = vec![(
        format!("Deployment {ns}/{}", s.server_name()),
        progress[0].clone(),
    )];
    for (kind, name) in companions(&s) {
        match kube.get(kind, ns, &name).await? {
            None => problems.push(format!("{} {name} is missing", kind.name())),
            Some(obj) => match kind {
                Kind::ConfigMap => {
                    if let Some(ep) = obj["data"]["online_store_endpoint"].as_str() {
                        out.set_attr("online_store_endpoint", Value::string(ep));
                    }
                }
                // Only a stored connection string is read back (drift); a write-only one
                // must never reach the state.
                Kind::Secret
                    if matches!(s.online, OnlineStore::External { .. })
                        && !state.get("online_store").get("connection_string").is_null() =>
                {
                    if let (Some(c), Some(o)) = (
                        workload::secret_value(&obj, "connection-string"),
                        out.get_mut("online_store"),
                    ) {
                        o.set_attr("connection_string", Value::string(c));
                    }
                }
                Kind::StatefulSet => {
                    let p = workload::statefulset_progress(&obj);
                    tracks.push((
                        format!("the managed Redis StatefulSet {ns}/{name}"),
                        p.clone(),
                    ));
                    progress.push(p);
                }
                _ => {}
            },
        }
    }
    if !out.get("online_store_endpoint").is_wholly_known() {
        out.set_attr("online_store_endpoint", Value::string(""));
    }
    let status = workload::status_text(&problems, &progress);
    set_identity(&mut out, &s);
    out.set_attr("status", Value::string(status));
    set_costs(ctx, &mut out);
    let readiness = match workload::readiness(
        &problems,
        &tracks,
        "The feature server did not become available",
    ) {
        crate::resource::Readiness::Failed { summary, detail } => {
            crate::resource::Readiness::Failed {
                summary,
                detail: format!(
                    "{detail}\nInspect it with: kubectl -n {ns} describe deployment {}",
                    s.server_name()
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

/// Starts deleting every object of the store (its volume claims by label too); `Gone` once
/// none is left.
pub async fn delete(ctx: &Context, prior: &Value) -> Result<Deletion, ResourceError> {
    let s = FeatureStoreSpec::from_value(prior);
    let objects = vec![
        (Kind::CronJob, s.materialize_name()),
        (Kind::Deployment, s.server_name()),
        (Kind::StatefulSet, s.redis_name()),
        (Kind::Service, s.redis_name()),
        (Kind::NetworkPolicy, s.redis_name()),
        (Kind::Service, s.name.clone()),
        (Kind::NetworkPolicy, s.name.clone()),
        (Kind::ConfigMap, s.config_map_name()),
        (Kind::Secret, s.secret_name()),
        (Kind::PersistentVolumeClaim, s.data_claim()),
    ];
    let labelled = [(
        Kind::PersistentVolumeClaim,
        format!("{STORE_LABEL}={}", s.name),
    )];
    workload::start_delete(ctx.kube()?.as_ref(), &s.namespace, &objects, &labelled).await
}

/// The objects a wait on `state` watches: the server and the managed Redis.
pub fn watched_objects(state: &Value) -> (String, Vec<(Kind, String)>) {
    let s = FeatureStoreSpec::from_value(state);
    let v = vec![
        (Kind::Deployment, s.server_name()),
        (Kind::StatefulSet, s.redis_name()),
    ];
    (s.namespace, v)
}

/// Import by `namespace/name` from the arguments paved wrote on the feature server Deployment.
pub async fn import(ctx: &Context, id: &str) -> Result<Value, ResourceError> {
    workload::import_by_annotation(
        ctx,
        id,
        Kind::Deployment,
        |n| format!("{n}-server"),
        &super::schema::schema(),
    )
    .await
}
