//! `paved_feature_store`: a Feast feature store on Kubernetes (client configuration, online
//! store, feature server, scheduled materialization).

pub mod config;
mod manifests;
mod ops;
pub mod schema;
pub mod spec;
mod validate;

use crate::cloud::kube::{Kind, KubeAccess, MANAGE, MANAGE_LISTED};
use crate::context::Context;
use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostics};
use crate::error::{ApplyError, ResourceError};
use crate::resource::{
    Deletion, ImportState, ModifyPlan, Observed, Operation, PlanInputs, Resource, ValidateConfig,
};
use crate::schema::Schema;
use async_trait::async_trait;
use spec::{FeatureStoreSpec, OnlineStore};
use std::time::Duration;

pub struct FeatureStore;

pub const TYPE_NAME: &str = "paved_feature_store";

/// What [`ops`] does in the store's namespace: applies, reads back, deletes and waits on its own
/// objects (the registry claim is applied; leftover claims are found by label), and reads the
/// Secret of a referenced vector database.
const KUBE_ACCESS: &[KubeAccess] = &[
    KubeAccess {
        kind: Kind::Secret,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::ConfigMap,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::Service,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::NetworkPolicy,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::StatefulSet,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::Deployment,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::CronJob,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::PersistentVolumeClaim,
        verbs: MANAGE_LISTED,
    },
];

#[async_trait]
impl Resource for FeatureStore {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }
    fn schema(&self) -> Schema {
        schema::schema()
    }
    /// Costs up to `monthly_cost_usd.max` (feature server, Redis, volumes); holds no GPUs.
    fn demand(&self, v: &Value) -> Option<crate::budget::Demand> {
        crate::budget::Demand::from_state(v, 0, 0)
    }
    async fn read(&self, ctx: &Context, state: &Value) -> Result<Option<Observed>, ResourceError> {
        let mut v = ops::observe(ctx, state).await?;
        if let Some(v) = v.as_mut() {
            crate::resources::common::default_deletion_protection(&mut v.state);
        }
        Ok(v)
    }
    async fn create(&self, ctx: &Context, planned: &Value) -> Result<Value, ApplyError> {
        ops::apply(ctx, None, planned).await
    }
    async fn update(
        &self,
        ctx: &Context,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, ApplyError> {
        ops::apply(ctx, Some(prior), planned).await
    }
    async fn delete(&self, ctx: &Context, prior: &Value) -> Result<Deletion, ResourceError> {
        if let Some(e) = crate::resources::common::deletion_refused(prior, TYPE_NAME) {
            return Err(e);
        }
        ops::delete(ctx, prior).await
    }
    async fn await_change(&self, ctx: &Context, state: &Value, within: Duration) {
        crate::resources::workload::await_change(ctx, ops::watched_objects(state), within).await
    }
    fn timeout(&self, v: &Value, op: Operation) -> Duration {
        crate::resources::workload::timeout(v, op)
    }
    fn validator(&self) -> Option<&dyn ValidateConfig> {
        Some(self)
    }
    fn plan_modifier(&self) -> Option<&dyn ModifyPlan> {
        Some(self)
    }
    fn importer(&self) -> Option<&dyn ImportState> {
        Some(self)
    }
    fn managed_kinds(&self) -> &'static [KubeAccess] {
        KUBE_ACCESS
    }
}

impl ValidateConfig for FeatureStore {
    fn validate(&self, config: &Value) -> Diagnostics {
        validate::validate(config)
    }
}

#[async_trait]
impl ImportState for FeatureStore {
    async fn import(&self, ctx: &Context, id: &str) -> Result<Value, ResourceError> {
        ops::import(ctx, id).await
    }
}

/// The online store's address as far as the plan can know it: a vector database's comes from
/// its state when this provider process has seen it (same configuration).
fn planned_endpoint(ctx: &Context, v: &Value, diags: &mut Diagnostics) -> Value {
    if !v.get("online_store").is_wholly_known()
        || !v.get("name").is_wholly_known()
        || !v.get("namespace").is_wholly_known()
    {
        return Value::Unknown;
    }
    let s = FeatureStoreSpec::from_value(v);
    match &s.online {
        OnlineStore::Redis { .. } => Value::string(format!(
            "{}.{}.svc.cluster.local:6379",
            s.redis_name(),
            s.namespace
        )),
        OnlineStore::External { connection_string } => {
            Value::string(config::external_endpoint(connection_string))
        }
        OnlineStore::VectorDb { namespace, name } => {
            let Some(db) = ctx.recall(
                crate::resources::vector_db::TYPE_NAME,
                &format!("{namespace}/{name}"),
            ) else {
                return Value::Unknown;
            };
            let engine = db.get("engine").as_str().unwrap_or_default();
            match config::feast_store_for(engine) {
                None => diags.attr_error(AttrPath::attr("online_store").then("vector_db_id"), "Engine not supported by Feast", format!("paved_vector_db {namespace}/{name} runs {engine:?}, which Feast cannot use as an online store; use a pgvector or qdrant database, or kind = \"redis\".")),
                Some((_, min)) => {
                    if let Some(have) = config::image_version(&s.image).filter(|h| *h < min) {
                        diags.attr_error(AttrPath::attr("feature_server").then("image"), "Feast too old for the online store", format!("Feast {}.{} cannot use {engine}; it needs Feast {}.{} or newer.", have.0, have.1, min.0, min.1));
                    }
                }
            }
            match (db.get("endpoint").as_str(), db.get("port").as_i64()) {
                (Some(h), Some(p)) => Value::string(format!("{h}:{p}")),
                _ => Value::Unknown,
            }
        }
    }
}

impl ModifyPlan for FeatureStore {
    fn modify_plan(
        &self,
        ctx: &Context,
        inputs: &PlanInputs<'_>,
        planned: &mut Value,
        requires_replace: &mut Vec<AttrPath>,
        diags: &mut Diagnostics,
    ) {
        crate::resources::common::plan_attribution(
            ctx,
            inputs.config,
            planned,
            diags,
            "feature store",
        );
        if inputs.config.get("feast_project").is_null() {
            let p = match planned.get("name").as_str() {
                Some(n) => Value::string(spec::default_feast_project(n)),
                None => Value::Unknown,
            };
            planned.set_attr("feast_project", p);
        }
        let known = |k: &str| planned.get(k).is_wholly_known();
        if known("name") && known("namespace") {
            let s = FeatureStoreSpec::from_value(planned);
            planned.set_attr("id", Value::string(format!("{}/{}", s.namespace, s.name)));
            planned.set_attr("feature_server_url", Value::string(s.server_url()));
            planned.set_attr("client_config_map", Value::string(s.config_map_name()));
        }
        // A write-only connection string is in the configuration only (never in the plan).
        let mut with_secrets = planned.clone();
        schema::schema()
            .block
            .merge_write_only(&mut with_secrets, inputs.config);
        let endpoint = planned_endpoint(ctx, &with_secrets, diags);
        crate::resources::cost::plan(
            planned,
            &[
                "online_store",
                "feature_server",
                "offline_store",
                "registry",
            ],
            |v| ops::set_costs(ctx, v),
        );
        let Some(prior) = inputs.prior else {
            planned.set_attr("online_store_endpoint", endpoint);
            planned.set_attr("status", Value::Unknown);
            return;
        };
        // The managed Redis keeps its data on a StatefulSet volume claim, which Kubernetes will
        // not resize in place.
        let redis_size = |v: &Value| match FeatureStoreSpec::from_value(v).online {
            OnlineStore::Redis { storage_size } => Some(storage_size),
            _ => None,
        };
        if planned.get("online_store").is_wholly_known() {
            if let (Some(a), Some(b)) = (redis_size(prior), redis_size(planned)) {
                if a != b {
                    requires_replace.push(AttrPath::attr("online_store").then("storage_size"));
                }
            }
        }
        let same_store = prior.get("online_store") == planned.get("online_store");
        planned.set_attr(
            "online_store_endpoint",
            if same_store {
                prior.get("online_store_endpoint").clone()
            } else {
                endpoint
            },
        );
        crate::resources::common::plan_status(prior, planned, &ops::COMPUTED);
    }

    fn plan_destroy(&self, _ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        if let Some(e) = crate::resources::common::deletion_refused(prior, TYPE_NAME) {
            diags.push(e.to_diagnostic());
        }
    }
}
