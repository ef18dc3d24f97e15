//! `paved_model_endpoint`: one model behind an autoscaling endpoint on Kubernetes, with canary
//! rollout, health checks, automatic rollback and lineage.

mod lineage;
mod manifests;
mod ops;
pub mod schema;
mod spec;
mod validate;

use crate::cloud::kube::{Kind, KubeAccess, MANAGE, READ};
use crate::context::Context;
use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostic, Diagnostics};
use crate::error::{ApplyError, ResourceError};
use crate::resource::{
    Deletion, ImportState, ModifyPlan, Observed, Operation, PlanInputs, Recovery, Resource,
    ValidateConfig,
};
use crate::resources::gpu_compute_pool::catalog;
use crate::schema::Schema;
use async_trait::async_trait;
use std::time::Duration;

pub struct ModelEndpoint;

/// What [`ops`] does in the endpoint's namespace: applies, reads back, deletes and waits on its
/// own objects; only reads the Secret of a referenced vector database and the ConfigMap of a
/// referenced feature store.
const KUBE_ACCESS: &[KubeAccess] = &[
    KubeAccess {
        kind: Kind::Deployment,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::HorizontalPodAutoscaler,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::PodDisruptionBudget,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::NetworkPolicy,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::Service,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::ServiceAccount,
        verbs: MANAGE,
    },
    KubeAccess {
        kind: Kind::Secret,
        verbs: READ,
    },
    KubeAccess {
        kind: Kind::ConfigMap,
        verbs: READ,
    },
];

#[async_trait]
impl Resource for ModelEndpoint {
    fn type_name(&self) -> &'static str {
        "paved_model_endpoint"
    }
    fn schema(&self) -> Schema {
        schema::schema()
    }
    /// Costs up to `monthly_cost_usd.max` (max_replicas); the GPUs it requests are held by
    /// the pool it runs on, so it provisions none of its own.
    fn demand(&self, v: &Value) -> Option<crate::budget::Demand> {
        crate::budget::Demand::from_state(v, 0, 0)
    }
    async fn read(&self, ctx: &Context, state: &Value) -> Result<Option<Observed>, ResourceError> {
        ops::observe(ctx, state).await
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
        ops::delete(ctx, prior).await
    }
    /// A failed rollout goes back to the last revision that served (or, for a first revision,
    /// the endpoint is removed), unless `rollout.auto_rollback = false`.
    async fn recover(
        &self,
        ctx: &Context,
        observed: &Value,
        _failure: &str,
    ) -> Result<Recovery, ApplyError> {
        ops::recover(ctx, observed).await
    }
    async fn await_change(&self, ctx: &Context, state: &Value, within: Duration) {
        crate::resources::workload::await_change(ctx, ops::watched_objects(state), within).await
    }
    /// Create and update wait at most `rollout.timeout` (and the `timeouts` block).
    fn timeout(&self, v: &Value, op: Operation) -> Duration {
        let t = crate::resources::workload::timeout(v, op);
        match op {
            Operation::Delete => t,
            _ => t.min(spec::EndpointSpec::from_value(v).rollout_timeout),
        }
    }
    fn lineage(&self, ctx: &Context, v: &Value) -> Option<crate::lineage::Job> {
        lineage::job(ctx, v)
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

impl ValidateConfig for ModelEndpoint {
    fn validate(&self, config: &Value) -> Diagnostics {
        validate::validate(config)
    }
}

#[async_trait]
impl ImportState for ModelEndpoint {
    async fn import(&self, ctx: &Context, id: &str) -> Result<Value, ResourceError> {
        ops::import(ctx, id).await
    }
}

/// Environment parity: the runtime's CUDA version must run on the pool's driver. Checked when
/// this provider process has seen the pool (same configuration): at plan time once the pool
/// exists, and at apply time, before anything is created, for a pool created in the same run.
pub fn pool_compatibility(ctx: &Context, v: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    let (Some(pool_id), Some(cuda)) = (
        v.get("pool_id").as_str(),
        v.get("runtime").get("cuda_version").as_str(),
    ) else {
        return d;
    };
    let Some(pool) = ctx.recall("paved_gpu_compute_pool", pool_id) else {
        return d;
    };
    let path = AttrPath::attr("runtime").then("cuda_version");
    let pool_name = pool.get("name").as_str().unwrap_or(pool_id).to_string();
    if let (Some(c), Some(dv)) = (
        catalog::parse_cuda(cuda),
        pool.get("driver_version").as_str(),
    ) {
        if let (Some(min), Some(have)) = (catalog::cuda_min_driver(c), catalog::parse_driver(dv)) {
            if have < min {
                d.push(
                    Diagnostic::error(
                        "Runtime CUDA version not supported by the pool's driver",
                        format!(
                            "runtime.cuda_version = {cuda} needs NVIDIA driver {} or newer, but pool {pool_name} ({pool_id}) runs driver {dv}. Use an image built for an older CUDA, or a pool with a newer driver_version.",
                            catalog::fmt_driver(min)
                        ),
                    )
                    .at(path.clone()),
                );
            }
        }
    }
    if let Some(pool_cuda) = pool.get("cuda_version").as_str() {
        if pool_cuda != cuda && !d.has_errors() {
            d.push(
                Diagnostic::warning(
                    "Runtime and pool CUDA versions differ",
                    format!("The endpoint's runtime uses CUDA {cuda} while pool {pool_name} pins CUDA {pool_cuda}; training and serving environments will not match."),
                )
                .at(path),
            );
        }
    }
    d
}

impl ModifyPlan for ModelEndpoint {
    fn modify_plan(
        &self,
        ctx: &Context,
        inputs: &PlanInputs<'_>,
        planned: &mut Value,
        _requires_replace: &mut Vec<AttrPath>,
        diags: &mut Diagnostics,
    ) {
        crate::resources::common::plan_attribution(
            ctx,
            inputs.config,
            planned,
            diags,
            "model endpoint",
        );
        diags.extend(pool_compatibility(ctx, planned));
        let s = spec::EndpointSpec::from_value(planned);
        let known = |k: &str| !planned.get(k).is_unknown();
        if known("name") && known("namespace") {
            planned.set_attr("id", Value::string(format!("{}/{}", s.namespace, s.name)));
            planned.set_attr("url", Value::string(s.url()));
        }
        let lineage_inputs = [
            &planned.get("model").clone(),
            &planned.get("runtime").clone(),
            planned.get("team"),
            planned.get("project"),
            planned.get("pool_id"),
            planned.get("vector_db_id"),
            planned.get("feature_store_id"),
        ]
        .iter()
        .all(|v| v.is_wholly_known());
        planned.set_attr(
            "lineage",
            if lineage_inputs {
                Value::string_map(s.lineage())
            } else {
                Value::Unknown
            },
        );
        // What is served and how many replicas are ready are only known after the rollout.
        let changed = match inputs.prior {
            None => true,
            Some(prior) => crate::resources::common::args_changed(prior, planned, &ops::COMPUTED),
        };
        if changed {
            for k in ["served_revision", "ready_replicas", "status"] {
                planned.set_attr(k, Value::Unknown);
            }
        }
        // Cost needs only the sizing: known at plan time whenever it is.
        if planned.get("resources").is_wholly_known()
            && planned.get("autoscaling").is_wholly_known()
            && !planned.get("gpu_hourly_usd").is_unknown()
        {
            ops::set_costs(ctx, planned);
        } else {
            planned.set_attr("monthly_cost_usd", Value::Unknown);
            planned.set_attr("hourly_cost_usd", Value::Unknown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_is_priced_per_replica_over_the_autoscaling_bounds() {
        let mut v = endpoint("gp-1", "12.4");
        v.set_attr(
            "resources",
            Value::object([
                ("gpus", Value::int(1)),
                ("cpu", Value::string("2")),
                ("memory", Value::string("8Gi")),
            ]),
        );
        v.set_attr(
            "autoscaling",
            Value::object([
                ("min_replicas", Value::int(1)),
                ("max_replicas", Value::int(3)),
                ("target_cpu_utilization", Value::int(70)),
            ]),
        );
        v.set_attr("ready_replicas", Value::int(2));
        let mut overrides = std::collections::BTreeMap::new();
        overrides.insert("k8s:gpu".to_string(), 1.5);
        let mut ctx = Context::unconfigured();
        ctx.defaults.price_overrides = overrides;
        ops::set_costs(&ctx, &mut v);
        let unit = 2.0 * 0.031611 + 8.0 * 0.004237 + 1.5;
        let cents = |x: f64| (x * 100.0).round() / 100.0;
        let m = v.get("monthly_cost_usd");
        assert_eq!(m.get("min").as_f64(), Some(cents(unit * 730.0)));
        assert_eq!(m.get("max").as_f64(), Some(cents(3.0 * unit * 730.0)));
        assert_eq!(
            v.get("hourly_cost_usd").as_f64(),
            Some(((2.0 * unit) * 10_000.0).round() / 10_000.0)
        );
        v.set_attr("ready_replicas", Value::Unknown);
        ops::set_costs(&ctx, &mut v);
        assert!(v.get("hourly_cost_usd").is_unknown());

        // The pool's price per GPU replaces the Kubernetes GPU price, and the pods carry it
        // so a report of what runs prices them the same.
        v.set_attr("gpu_hourly_usd", Value::float(1.006));
        v.set_attr("ready_replicas", Value::int(1));
        ops::set_costs(&ctx, &mut v);
        let unit: f64 = 2.0 * 0.031611 + 8.0 * 0.004237 + 1.006;
        assert_eq!(
            v.get("hourly_cost_usd").as_f64(),
            Some((unit * 10_000.0).round() / 10_000.0)
        );
        let s = spec::EndpointSpec::from_value(&v);
        let d = manifests::deployment(&s, manifests::Track::Stable, None);
        let pod = serde_json::json!({"metadata": d["spec"]["template"]["metadata"], "spec": d["spec"]["template"]["spec"]});
        let p =
            crate::resources::cost::UnitPrices::new(&ctx.defaults.price_overrides).for_pod(&pod);
        assert_eq!(p.gpu, 1.006);
        assert_eq!(crate::resources::cost::pod_hourly(&pod["spec"], &p), unit);
    }

    #[test]
    fn a_negative_gpu_price_is_refused_with_its_path() {
        let mut v = endpoint("gp-1", "12.4");
        v.set_attr("gpu_hourly_usd", Value::float(-1.0));
        let d = validate::validate(&v);
        assert!(d
            .iter()
            .any(|x| x.path.as_ref().map(|p| p.to_string()).as_deref() == Some("gpu_hourly_usd")));
    }

    fn endpoint(pool: &str, cuda: &str) -> Value {
        let mut v = schema::schema().block.null_object();
        v.set_attr("pool_id", Value::string(pool));
        v.set_attr(
            "runtime",
            Value::object([
                ("image", Value::string("srv:1")),
                ("args", Value::Null),
                ("env", Value::Null),
                ("port", Value::int(8080)),
                ("cuda_version", Value::string(cuda)),
            ]),
        );
        v
    }

    #[test]
    fn runtime_cuda_is_checked_against_a_known_pools_driver() {
        let ctx = Context::unconfigured();
        // Unknown pool: nothing to check against.
        assert!(pool_compatibility(&ctx, &endpoint("gp-1", "12.4")).is_empty());
        let mut pool = crate::resources::gpu_compute_pool::schema::schema()
            .block
            .null_object();
        pool.set_attr("id", Value::string("gp-1"));
        pool.set_attr("name", Value::string("train"));
        pool.set_attr("driver_version", Value::string("535.104.05"));
        pool.set_attr("cuda_version", Value::string("12.2"));
        ctx.remember("paved_gpu_compute_pool", &pool);
        let d = pool_compatibility(&ctx, &endpoint("gp-1", "12.4"));
        assert!(d.has_errors());
        assert_eq!(
            d.0[0].path.as_ref().unwrap().to_string(),
            "runtime.cuda_version"
        );
        assert!(
            d.0[0].detail.contains("550.54.14") && d.0[0].detail.contains("535.104.05"),
            "{}",
            d.0[0].detail
        );
        // Supported but different from the pool's pinned CUDA: a parity warning, not an error.
        let d = pool_compatibility(&ctx, &endpoint("gp-1", "12.1"));
        assert!(!d.has_errors() && d.0.len() == 1);
        assert!(pool_compatibility(&ctx, &endpoint("gp-1", "12.2")).is_empty());
    }
}
