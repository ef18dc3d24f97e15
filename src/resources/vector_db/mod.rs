//! `paved_vector_db`: a vector database (Qdrant or PostgreSQL + pgvector) on Kubernetes with
//! storage, a generated credential, network isolation, collections and backups.

mod credentials;
pub mod engine;
mod manifests;
mod ops;
pub mod schema;
pub mod spec;
pub mod team;
mod validate;

use crate::cloud::kube::{Kind, KubeAccess, Verb, MANAGE, MANAGE_LISTED};
use crate::context::Context;
use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostics};
use crate::error::{ApplyError, ResourceError};
use crate::resource::{
    Deletion, ImportState, ModifyPlan, Observed, Operation, PlanInputs, Resource, ValidateConfig,
};
use crate::schema::Schema;
use async_trait::async_trait;
use engine::Engine;
use spec::VectorDbSpec;
use std::time::Duration;

pub struct VectorDb;

pub const TYPE_NAME: &str = "paved_vector_db";

/// What [`ops`] does in the database's namespace: applies, reads back, deletes and waits on its
/// own objects; bootstrap Jobs of earlier collection lists are found by label; claims are
/// never written (the StatefulSet's template makes them), only found by label and deleted.
const KUBE_ACCESS: &[KubeAccess] = &[
    // Listed across namespaces: each team's credential Secret lives in the team's namespace.
    KubeAccess {
        kind: Kind::Secret,
        verbs: MANAGE_LISTED,
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
        kind: Kind::PodDisruptionBudget,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::StatefulSet,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::CronJob,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::Job,
        verbs: MANAGE_LISTED,
    },
    KubeAccess {
        kind: Kind::PersistentVolumeClaim,
        verbs: &[Verb::Get, Verb::List, Verb::Watch, Verb::Delete],
    },
];

#[async_trait]
impl Resource for VectorDb {
    fn type_name(&self) -> &'static str {
        TYPE_NAME
    }
    fn schema(&self) -> Schema {
        schema::schema()
    }
    /// Costs up to `monthly_cost_usd.max` (its replicas and volumes); holds no GPUs.
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

impl ValidateConfig for VectorDb {
    fn validate(&self, config: &Value) -> Diagnostics {
        validate::validate(config)
    }
}

#[async_trait]
impl ImportState for VectorDb {
    async fn import(&self, ctx: &Context, id: &str) -> Result<Value, ResourceError> {
        ops::import(ctx, id).await
    }
}

/// Size and class of the volumes as they will be created, defaults included.
fn effective_storage(v: &Value) -> (Option<String>, Option<String>) {
    let st = v.get("storage");
    let size = match st.get("size") {
        Value::Unknown => None,
        x => Some(x.as_str().unwrap_or("10Gi").to_string()),
    };
    (size, st.get("storage_class").as_str().map(str::to_string))
}

impl ModifyPlan for VectorDb {
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
            "vector database",
        );
        let engine = planned.get("engine").as_str().and_then(Engine::parse);
        let same_engine = inputs
            .prior
            .is_some_and(|p| p.get("engine") == planned.get("engine"));
        if inputs.config.get("engine_version").is_null() {
            let v = match (inputs.prior, engine) {
                (Some(p), _) if same_engine => p.get("engine_version").clone(),
                (_, Some(e)) => Value::string(e.default_version()),
                _ => Value::Unknown,
            };
            planned.set_attr("engine_version", v);
        }
        if inputs.config.get("image").is_null() {
            let img = match (engine, planned.get("engine_version").as_str()) {
                (Some(e), Some(v)) => Value::string(e.image(v)),
                _ => Value::Unknown,
            };
            planned.set_attr("image", img);
        }
        let known = |k: &str| planned.get(k).is_wholly_known();
        if known("name") && known("namespace") && known("engine") {
            let s = VectorDbSpec::from_value(planned);
            planned.set_attr("id", Value::string(format!("{}/{}", s.namespace, s.name)));
            planned.set_attr("endpoint", Value::string(s.host()));
            planned.set_attr("port", Value::int(s.engine.port()));
            planned.set_attr("connection_secret", Value::string(s.secret_name()));
        }
        let credentials_known = [
            "team",
            "allowed_teams",
            "team_credentials",
            "engine",
            "name",
        ]
        .iter()
        .all(|k| planned.get(k).is_wholly_known());
        planned.set_attr(
            "team_secrets",
            if credentials_known {
                ops::team_secrets_value(&VectorDbSpec::from_value(planned))
            } else {
                Value::Unknown
            },
        );
        if credentials_known {
            validate::check_credential_teams(planned, diags);
        }
        crate::resources::cost::plan(
            planned,
            &["replicas", "resources", "storage", "engine"],
            |v| ops::set_costs(ctx, v),
        );
        let Some(prior) = inputs.prior else {
            planned.set_attr("api_key", Value::Unknown);
            planned.set_attr("status", Value::Unknown);
            return;
        };
        planned.set_attr("api_key", prior.get("api_key").clone());
        // Kubernetes refuses changes to a StatefulSet's volume claims, so they replace.
        let (before, after) = (effective_storage(prior), effective_storage(planned));
        if after.0.is_some() && before != after && same_engine {
            requires_replace.push(AttrPath::attr("storage"));
        }
        for (i, col) in planned.get("collection").elements().iter().enumerate() {
            let old = prior
                .get("collection")
                .elements()
                .iter()
                .find(|p| p.get("name") == col.get("name") && !col.get("name").is_unknown());
            if let (Some(old), Some(dist)) = (old, col.get("distance").as_str()) {
                if old.get("distance").as_str().is_some_and(|o| o != dist) {
                    diags.attr_error(
                        AttrPath::attr("collection").index(i).then("distance"),
                        "Collection distance cannot change",
                        format!("Collection {:?} is indexed for {} distance; paved never rewrites an existing collection. Add a new collection with distance = {dist:?} and migrate to it.", col.get("name").as_str().unwrap_or_default(), old.get("distance").as_str().unwrap_or_default()),
                    );
                }
            }
            if let (Some(old), Some(dim)) = (old, col.get("dimension").as_i64()) {
                if old.get("dimension").as_i64().is_some_and(|o| o != dim) {
                    diags.attr_error(
                        AttrPath::attr("collection").index(i).then("dimension"),
                        "Collection dimension cannot change",
                        format!("Collection {:?} already holds {}-dimension vectors; paved never rewrites an existing collection. Add a new collection with the new dimension and migrate to it.", col.get("name").as_str().unwrap_or_default(), old.get("dimension").as_i64().unwrap_or(0)),
                    );
                }
            }
        }
        crate::resources::common::plan_status(prior, planned, &ops::COMPUTED);
        // A team credential to issue, rotate or revoke is a change, and the roles Job runs.
        if prior.get("team_secrets") != planned.get("team_secrets") {
            planned.set_attr("status", Value::Unknown);
        }
    }

    /// Destroying a database deletes its volumes, and with them every collection's vectors.
    fn plan_destroy(&self, _ctx: &Context, prior: &Value, diags: &mut Diagnostics) {
        if let Some(e) = crate::resources::common::deletion_refused(prior, TYPE_NAME) {
            diags.push(e.to_diagnostic());
            return;
        }
        let names: Vec<&str> = prior
            .get("collection")
            .elements()
            .iter()
            .filter_map(|c| c.get("name").as_str())
            .collect();
        if !names.is_empty() {
            diags.push(crate::diag::Diagnostic::warning(
                "Destroying a vector database deletes its data",
                format!(
                    "paved_vector_db {} holds collection(s) {}; destroy deletes its volumes and every vector in them. Back them up first if they are needed, or set deletion_protection = true to keep them.",
                    prior.get("id").as_str().unwrap_or(""),
                    names.join(", ")
                ),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan;

    fn config(size: Option<&str>) -> Value {
        let mut v = schema::schema().block.null_object();
        v.set_attr("name", Value::string("docs"));
        v.set_attr("team", Value::string("search"));
        v.set_attr("engine", Value::string("pgvector"));
        if let Some(sz) = size {
            v.set_attr(
                "storage",
                Value::object([("size", Value::string(sz)), ("storage_class", Value::Null)]),
            );
        }
        v
    }

    fn plan_of(prior: Option<&Value>, cfg: &Value) -> (Value, Vec<AttrPath>, Diagnostics) {
        let sch = schema::schema();
        let p = plan::plan(&sch, prior, cfg, cfg);
        let (mut planned, mut rr, mut d) = (p.planned, p.requires_replace, Diagnostics::new());
        VectorDb.modify_plan(
            &Context::unconfigured(),
            &PlanInputs { prior, config: cfg },
            &mut planned,
            &mut rr,
            &mut d,
        );
        (planned, rr, d)
    }

    fn applied(planned: &Value) -> Value {
        let mut s = planned.clone();
        s.set_attr("api_key", Value::string("k"));
        s.set_attr("status", Value::string("Ready"));
        s
    }

    #[test]
    fn create_plans_identity_and_pinned_image() {
        let (p, rr, d) = plan_of(None, &config(None));
        assert!(d.is_empty() && rr.is_empty());
        assert_eq!(p.get("id").as_str(), Some("default/docs"));
        assert_eq!(
            p.get("image").as_str(),
            Some("pgvector/pgvector:0.8.0-pg16")
        );
        assert_eq!(p.get("port").as_i64(), Some(5432));
        assert!(p.get("api_key").is_unknown());
    }

    #[test]
    fn unchanged_config_plans_nothing_and_storage_changes_replace() {
        let (p, _, _) = plan_of(None, &config(None));
        let prior = applied(&p);
        let (again, rr, _) = plan_of(Some(&prior), &config(None));
        assert_eq!(again, prior);
        assert!(rr.is_empty());
        // Writing the default out is no change; a different size is a replacement.
        let (_, rr, _) = plan_of(Some(&prior), &config(Some("10Gi")));
        assert!(rr.is_empty());
        let (_, rr, _) = plan_of(Some(&prior), &config(Some("20Gi")));
        assert_eq!(
            rr.iter().map(|p| p.to_string()).collect::<Vec<_>>(),
            vec!["storage"]
        );
    }

    #[test]
    fn team_secrets_are_planned_and_a_missing_or_due_one_plans_an_update() {
        let mut cfg = config(None);
        cfg.set_attr("team_credentials", Value::Bool(true));
        cfg.set_attr("allowed_teams", Value::string_list(["ranking"]));
        let (p, _, d) = plan_of(None, &cfg);
        assert!(d.is_empty(), "{d:?}");
        assert_eq!(
            p.get("team_secrets").as_string_map().unwrap(),
            [
                (
                    "ranking".to_string(),
                    "ranking/docs-ranking-credentials".to_string()
                ),
                (
                    "search".to_string(),
                    "search/docs-search-credentials".to_string()
                ),
            ]
            .into()
        );
        let prior = applied(&p);
        let (again, _, _) = plan_of(Some(&prior), &cfg);
        assert_eq!(again, prior);
        // Read without ranking's Secret (missing, or due for rotation): the plan issues it.
        let mut read = prior.clone();
        read.set_attr(
            "team_secrets",
            Value::string_map([("search", "search/docs-search-credentials")]),
        );
        let (again, _, _) = plan_of(Some(&read), &cfg);
        assert_eq!(again.get("team_secrets"), p.get("team_secrets"));
        assert!(again.get("status").is_unknown());
        // Without team credentials there are none.
        let (p, _, _) = plan_of(None, &config(None));
        assert!(p.get("team_secrets").is_null());
    }

    #[test]
    fn degraded_status_plans_a_repair() {
        let (p, _, _) = plan_of(None, &config(None));
        let mut prior = applied(&p);
        prior.set_attr(
            "status",
            Value::string("Degraded: Secret docs-credentials is missing"),
        );
        let (again, _, _) = plan_of(Some(&prior), &config(None));
        assert!(again.get("status").is_unknown());
    }
}
