//! `paved_gpu_compute_pool`: GPU capacity for one team, with cost attribution and pinned
//! CUDA/driver versions. The folder holds the resource's whole life: schema, validation, plan,
//! catalog, node bootstrap and the two realisations: EC2 (`aws`) and Compute Engine (`gce`).

mod aws;
pub use aws::CAPACITY_TAG;
mod bootstrap;
pub mod catalog;
mod gce;
mod lineage;
pub mod schema;
mod spec;
mod validate;

use crate::context::Context;
use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostics};
use crate::error::{ApplyError, ResourceError};
use crate::resource::{
    Deletion, ImportState, ModifyPlan, Observed, Operation, PlanInputs, Recovery, Resource,
    ValidateConfig,
};
use crate::schema::Schema;
use async_trait::async_trait;
use std::collections::BTreeMap;
use std::time::Duration;

pub struct GpuComputePool;

/// The pool's cloud: `aws` when unset (states written before `cloud` had a default), None
/// while unknown.
fn cloud_of(v: &Value) -> Option<&str> {
    match v.get("cloud") {
        Value::Null => Some("aws"),
        c => c.as_str(),
    }
}

/// Whether a pool value (state or plan) lives on Compute Engine.
fn on_gcp(v: &Value) -> bool {
    v.get("cloud").as_str() == Some("gcp")
}

#[async_trait]
impl Resource for GpuComputePool {
    fn type_name(&self) -> &'static str {
        "paved_gpu_compute_pool"
    }
    fn schema(&self) -> Schema {
        schema::schema()
    }
    async fn read(&self, ctx: &Context, state: &Value) -> Result<Option<Observed>, ResourceError> {
        let mut observed = if on_gcp(state) {
            gce::read(ctx, state).await?
        } else {
            aws::read(ctx, state).await?
        };
        if let Some(o) = observed.as_mut() {
            o.state
                .set_attr("monthly_cost_usd", monthly_cost(ctx, &o.state));
            o.state
                .set_attr("gpu_hourly_usd", gpu_hourly(ctx, &o.state));
        }
        Ok(observed)
    }
    /// A pool holds `nodes.max` × the most GPUs any of its candidate types has, and costs up
    /// to `monthly_cost_usd.max`; it holds `gpus_total` now.
    fn demand(&self, v: &Value) -> Option<crate::budget::Demand> {
        let s = spec::PoolSpec::from_value(v);
        let per_node = match &s.accelerator {
            Some((_, n)) => *n,
            None => s
                .instance_types
                .iter()
                .filter_map(|t| {
                    if on_gcp(v) {
                        catalog::gce_machine_type(t, None).map(|m| m.gpus)
                    } else {
                        catalog::instance_type(t).map(|i| i.gpus)
                    }
                })
                .max()
                .unwrap_or(0),
        };
        let max_nodes = v.get("nodes").get("max").as_i64().unwrap_or(0);
        crate::budget::Demand::from_state(
            v,
            per_node * max_nodes,
            v.get("gpus_total").as_i64().unwrap_or(0),
        )
    }
    async fn create(&self, ctx: &Context, planned: &Value) -> Result<Value, ApplyError> {
        if on_gcp(planned) {
            return gce::create(ctx, planned).await;
        }
        aws::create(ctx, planned).await
    }
    async fn update(
        &self,
        ctx: &Context,
        prior: &Value,
        planned: &Value,
    ) -> Result<Value, ApplyError> {
        if on_gcp(planned) {
            return gce::update(ctx, prior, planned).await;
        }
        aws::update(ctx, prior, planned).await
    }
    async fn delete(&self, ctx: &Context, prior: &Value) -> Result<Deletion, ResourceError> {
        if on_gcp(prior) {
            return gce::delete(ctx, prior).await;
        }
        aws::delete(ctx, prior).await
    }
    /// On EC2 a capacity failure is known inside the verb, which cleans up itself; on Compute
    /// Engine the group reports it later, so the cleanup (or shrink) starts here.
    async fn recover(
        &self,
        ctx: &Context,
        observed: &Value,
        _failure: &str,
    ) -> Result<Recovery, ApplyError> {
        if on_gcp(observed) {
            return gce::recover(ctx, observed).await;
        }
        Ok(Recovery::None)
    }
    /// Neither EC2 nor Compute Engine has a watch: the wait polls every second (two list
    /// calls each).
    async fn await_change(&self, ctx: &Context, _state: &Value, within: Duration) {
        let _ = ctx.cancel.sleep(within.min(Duration::from_secs(1))).await;
    }
    fn timeout(&self, v: &Value, op: Operation) -> Duration {
        spec::timeout(v, op.as_str())
    }
    /// Pool IDs are ours to pick: derived from region and name ([`aws::derived_pool_id`]; on
    /// GCP from project, region and name), the same ID the Terraform plan shows, and create
    /// honours a planned one.
    fn choose_id(&self, planned: &Value) -> Option<String> {
        planned_id(planned)
    }
    fn lineage(&self, _ctx: &Context, v: &Value) -> Option<crate::lineage::Job> {
        lineage::job(v)
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
    /// None: a pool lives in EC2 or Compute Engine only (its nodes join the cluster by
    /// themselves).
    fn managed_kinds(&self) -> &'static [crate::cloud::kube::KubeAccess] {
        &[]
    }
}

impl ValidateConfig for GpuComputePool {
    fn validate(&self, config: &Value) -> Diagnostics {
        validate::validate(config)
    }
}

#[async_trait]
impl ImportState for GpuComputePool {
    /// `PROJECT/REGION/NAME` is a GCP pool; `POOL_ID` or `REGION/POOL_ID` an AWS one.
    async fn import(&self, ctx: &Context, id: &str) -> Result<Value, ResourceError> {
        let stub = schema::schema().block.null_object();
        if id.split('/').count() == 3 {
            return gce::import(ctx, id, stub).await;
        }
        // A bare pool ID names a pool of either cloud: EC2 first when configured, then the
        // default GCP project and region.
        if ctx.aws().is_ok() || ctx.default_gcp_project().is_none() {
            match aws::import(ctx, id, stub.clone()).await {
                Err(ResourceError::NotFound(_)) if ctx.default_gcp_project().is_some() => {}
                other => return other,
            }
        }
        gce::import_by_id(ctx, id, stub).await
    }
}

/// The derived ID of a pool about to be created, once region and name are known.
fn planned_id(planned: &Value) -> Option<String> {
    let region = planned.get("region").as_str()?;
    let name = planned.get("name").as_str()?;
    match cloud_of(planned)? {
        "gcp" => Some(gce::pool_id(
            planned.get("gcp_project").as_str()?,
            region,
            name,
        )),
        _ => Some(aws::derived_pool_id(region, name)),
    }
}

/// The cost-attribution tags every pool object carries, plus the user's and the provider's tags.
/// None while any input is unknown.
fn tags_all(ctx: &Context, v: &Value) -> Option<BTreeMap<String, String>> {
    let mut t = ctx.defaults.tags.clone();
    t.extend(v.get("tags").as_string_map()?);
    let team = v.get("team").as_str()?.to_string();
    t.insert("team".into(), team.clone());
    t.insert("paved:team".into(), team);
    match v.get("project") {
        Value::Null => {}
        p => {
            t.insert("project".into(), p.as_str()?.to_string());
            t.insert("paved:project".into(), p.as_str()?.to_string());
        }
    }
    t.insert("paved:pool".into(), v.get("name").as_str()?.to_string());
    t.insert("paved:managed-by".into(), "paved".into());
    Some(t)
}

/// Import: `team`, `project`, the user's `tags` and `tags_all` from the tags paved wrote on the
/// pool's objects. User tags are everything that is neither paved's own (`paved:*`, the
/// attribution family) nor an unchanged provider default.
fn attribution_from_tags(ctx: &Context, stub: &mut Value, tags_all: BTreeMap<String, String>) {
    let tags: BTreeMap<String, String> = tags_all
        .iter()
        .filter(|(k, v)| {
            !k.starts_with("paved:")
                && !crate::resources::common::ATTRIBUTION_KEYS.contains(&k.as_str())
                && ctx.defaults.tags.get(*k) != Some(*v)
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let read = |old: &str, new: &str| {
        tags_all
            .get(old)
            .or_else(|| tags_all.get(new))
            .map_or(Value::Null, Value::string)
    };
    stub.set_attr("team", read("paved:team", "team"));
    stub.set_attr("project", read("paved:project", "project"));
    stub.set_attr(
        "tags",
        if tags.is_empty() {
            Value::Null
        } else {
            Value::string_map(tags)
        },
    );
    stub.set_attr("tags_all", Value::string_map(tags_all));
}

impl ModifyPlan for GpuComputePool {
    fn modify_plan(
        &self,
        ctx: &Context,
        inputs: &PlanInputs<'_>,
        planned: &mut Value,
        _requires_replace: &mut Vec<AttrPath>,
        diags: &mut Diagnostics,
    ) {
        let config = inputs.config;
        crate::resources::common::plan_attribution(ctx, config, planned, diags, "pool");
        let cloud = cloud_of(planned).map(String::from);
        let gcp = cloud.as_deref() == Some("gcp");
        if config.get("region").is_null() {
            let (region, block) = if gcp {
                (ctx.default_gcp_region(), "gcp")
            } else {
                (ctx.default_aws_region(), "aws")
            };
            match region {
                Some(r) => planned.set_attr("region", Value::string(r)),
                None => diags.attr_error(
                    AttrPath::attr("region"),
                    "Missing region",
                    format!("Set region here, or region in the provider's {block} block."),
                ),
            }
        }
        if gcp {
            // Validation checks zones against a configured region; a region from the provider
            // is known only now.
            if let (true, Some(region)) = (
                config.get("region").is_null(),
                planned.get("region").as_str(),
            ) {
                for (i, z) in planned
                    .get("availability_zones")
                    .elements()
                    .iter()
                    .enumerate()
                {
                    if let Some(z) = z.as_str().filter(|z| !z.starts_with(&format!("{region}-"))) {
                        diags.attr_error(
                            AttrPath::attr("availability_zones").index(i),
                            "Zone outside the region",
                            format!("{z:?} is not a zone of {region} (the provider's gcp.region); GCP zones are named REGION-LETTER, e.g. {region}-a."),
                        );
                    }
                }
            }
            if config.get("gcp_project").is_null() {
                match ctx.default_gcp_project() {
                    Some(p) => planned.set_attr("gcp_project", Value::string(p)),
                    None => diags.attr_error(
                        AttrPath::attr("gcp_project"),
                        "Missing GCP project",
                        "Set gcp_project here, or project in the provider's gcp block.",
                    ),
                }
            }
        } else if cloud.is_some() {
            // Computed attributes an AWS pool never has: null, not "known after apply".
            for k in ["gcp_project", "instance_template", "instance_group"] {
                planned.set_attr(k, Value::Null);
            }
        }
        let accel = config.get("accelerator");
        if config.get("instance_types").is_null() {
            let count = planned.get("accelerator").get("count").as_i64();
            let v = match (accel.get("type").as_str(), count, cloud.as_deref()) {
                (Some(t), Some(n), Some("gcp")) => Value::string_list(catalog::gce_types_for(t, n)),
                (Some(t), Some(n), Some(_)) => Value::string_list(catalog::types_for(t, n)),
                _ => Value::Unknown,
            };
            planned.set_attr("instance_types", v);
        }
        let nodes = config.get("nodes");
        if nodes.get("desired").is_null() && !nodes.is_null() {
            let min = nodes.get("min").clone();
            if let Some(n) = planned.get_mut("nodes") {
                n.set_attr("desired", min);
            }
        }
        planned.set_attr(
            "tags_all",
            tags_all(ctx, planned).map_or(Value::Unknown, Value::string_map),
        );
        // A create's ID is known at plan time (so a create repeated after a crash converges on
        // the same pool); an existing pool keeps the ID in its state, derived or not.
        if inputs.prior.is_none() {
            if let Some(id) = planned_id(planned) {
                planned.set_attr("id", Value::string(id));
            }
        }
        // GCP: the group's link is known with the ID; the template's name follows its content,
        // so it is known whenever every input is, and a new one means the instances are
        // replaced one zone at a time (their names and types may change).
        let mut rolled = false;
        if gcp {
            planned.set_attr("launch_template_id", Value::Null);
            let id = planned.get("id").as_str().map(String::from);
            match (
                id.as_deref(),
                planned.get("gcp_project").as_str(),
                planned.get("region").as_str(),
            ) {
                (Some(id), Some(p), Some(r)) => {
                    let link = gce::group_link(p, r, id);
                    planned.set_attr("instance_group", Value::string(link));
                }
                _ => planned.set_attr("instance_group", Value::Unknown),
            }
            let template = id
                .and_then(|id| gce::template_spec(&id, planned))
                .map(|t| t.name);
            rolled = inputs
                .prior
                .is_some_and(|p| template.as_deref() != p.get("instance_template").as_str());
            planned.set_attr(
                "instance_template",
                template.map_or(Value::Unknown, Value::String),
            );
        }

        // Values apply will change. GPUs are known now when every candidate type has the same
        // GPU count; the chosen type, instance IDs and cost depend on capacity at apply time.
        let desired = planned.get("nodes").get("desired").clone();
        let resized = inputs
            .prior
            .is_none_or(|p| p.get("nodes").get("desired") != &desired);
        if resized || rolled {
            for k in ["instance_ids", "instance_type", "hourly_cost_usd"] {
                planned.set_attr(k, Value::Unknown);
            }
            let accel_type = planned
                .get("accelerator")
                .get("type")
                .as_str()
                .map(String::from);
            let per_node: Option<Vec<i64>> =
                planned.get("instance_types").as_string_vec().map(|ts| {
                    ts.iter()
                        .map(|t| {
                            catalog::gpus_per_node(
                                cloud.as_deref().unwrap_or("aws"),
                                t,
                                accel_type.as_deref(),
                            )
                            .unwrap_or(0)
                        })
                        .collect()
                });
            let gpus = match (per_node, desired.as_i64()) {
                (Some(counts), Some(n))
                    if !counts.is_empty() && counts.iter().all(|c| *c == counts[0]) =>
                {
                    Value::int(counts[0] * n)
                }
                _ => Value::Unknown,
            };
            planned.set_attr("gpus_total", gpus);
        }
        let inputs_known = [
            "cloud",
            "instance_types",
            "capacity_type",
            "accelerator",
            "nodes",
        ]
        .iter()
        .all(|k| planned.get(k).is_wholly_known());
        let (monthly, per_gpu) = if inputs_known {
            (monthly_cost(ctx, planned), gpu_hourly(ctx, planned))
        } else {
            (Value::Unknown, Value::Unknown)
        };
        planned.set_attr("monthly_cost_usd", monthly);
        planned.set_attr("gpu_hourly_usd", per_gpu);
    }
}

/// USD per hour of one GPU on the first candidate type, from the arguments only, so the value
/// planned is the value read back whatever type capacity fallback lands on. The first type is
/// the one the pool asks for first on both clouds; a fallback type's per-GPU price may differ
/// (the pool's own `hourly_cost_usd` follows what runs). Null when it has no price or GPUs.
fn gpu_hourly(ctx: &Context, v: &Value) -> Value {
    let s = spec::PoolSpec::from_value(v);
    let Some(first) = s.instance_types.first() else {
        return Value::Null;
    };
    let accel = s.accelerator.as_ref().map(|a| a.0.as_str());
    let overrides = &ctx.defaults.price_overrides;
    let (price, gpus) = if on_gcp(v) {
        (
            catalog::gce_hourly_price(first, accel, s.spot(), overrides),
            catalog::gpus_per_node("gcp", first, accel),
        )
    } else {
        (
            catalog::hourly_price(first, s.spot(), overrides),
            catalog::gpus_per_node("aws", first, accel),
        )
    };
    match (price, gpus) {
        (Some(p), Some(n)) if n > 0 => Value::float(crate::resources::cost::per_unit(p / n as f64)),
        _ => Value::Null,
    }
}

/// The monthly range from the node bounds: `nodes.min` of the cheapest candidate type to
/// `nodes.max` of the dearest (the group may land on any of them), at the capacity type's price.
/// Null when no candidate type has a price (set one in price_overrides).
fn monthly_cost(ctx: &Context, v: &Value) -> Value {
    let s = spec::PoolSpec::from_value(v);
    let gcp = on_gcp(v);
    let accel = s.accelerator.as_ref().map(|a| a.0.as_str());
    let spot = s.spot();
    let overrides = &ctx.defaults.price_overrides;
    let prices: Vec<f64> = s
        .instance_types
        .iter()
        .filter_map(|t| {
            if gcp {
                catalog::gce_hourly_price(t, accel, spot, overrides)
            } else {
                catalog::hourly_price(t, spot, overrides)
            }
        })
        .collect();
    let nodes = v.get("nodes");
    let (Some(lo), Some(hi), Some(min), Some(max)) = (
        prices.iter().copied().reduce(f64::min),
        prices.iter().copied().reduce(f64::max),
        nodes.get("min").as_i64(),
        nodes.get("max").as_i64(),
    ) else {
        return Value::Null;
    };
    crate::resources::cost::monthly_value(crate::resources::cost::Range {
        min: lo * min as f64,
        max: hi * max as f64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(prior: Option<&Value>, config: &Value) -> Value {
        let mut planned = config.clone();
        let mut diags = Diagnostics::new();
        GpuComputePool.modify_plan(
            &Context::unconfigured(),
            &PlanInputs { prior, config },
            &mut planned,
            &mut vec![],
            &mut diags,
        );
        planned
    }

    #[test]
    fn a_create_plans_the_derived_id_and_an_update_keeps_the_prior_one() {
        let mut c = schema::schema().block.null_object();
        c.set_attr("name", Value::string("train-a10g"));
        c.set_attr("region", Value::string("us-east-1"));
        c.set_attr("team", Value::string("ml"));
        c.set_attr("id", Value::Unknown);
        let p = plan(None, &c);
        assert_eq!(
            p.get("id").as_str(),
            Some(aws::derived_pool_id("us-east-1", "train-a10g").as_str())
        );
        assert_eq!(
            GpuComputePool.choose_id(&p).as_deref(),
            p.get("id").as_str()
        );
        // Region unknown at plan time: the ID is too (create derives it).
        let mut u = c.clone();
        u.set_attr("region", Value::Unknown);
        assert!(plan(None, &u).get("id").is_unknown());
        // A pool created with an old random ID keeps it.
        let mut prior = c.clone();
        prior.set_attr("id", Value::string("gp-0123456789ab"));
        let mut proposed = c.clone();
        proposed.set_attr("id", Value::string("gp-0123456789ab"));
        assert_eq!(
            plan(Some(&prior), &proposed).get("id").as_str(),
            Some("gp-0123456789ab")
        );
    }

    #[test]
    fn every_pool_object_carries_the_attribution_family_and_the_old_keys() {
        let mut v = schema::schema().block.null_object();
        v.set_attr("name", Value::string("train"));
        v.set_attr("team", Value::string("ml"));
        v.set_attr("project", Value::string("rag"));
        v.set_attr("tags", Value::string_map([("team", "someone-else")]));
        let t = tags_all(&Context::unconfigured(), &v).unwrap();
        assert_eq!(
            t["team"], "ml",
            "attribution wins over a user tag of the same key"
        );
        assert_eq!(
            (t["project"].as_str(), t["paved:team"].as_str()),
            ("rag", "ml")
        );
        assert_eq!(t["paved:project"], "rag");
    }

    #[test]
    fn the_monthly_range_runs_from_min_nodes_of_the_cheapest_type_to_max_of_the_dearest() {
        let mut c = schema::schema().block.null_object();
        c.set_attr("name", Value::string("train"));
        c.set_attr("region", Value::string("us-east-1"));
        c.set_attr("team", Value::string("ml"));
        c.set_attr("capacity_type", Value::string("on_demand"));
        c.set_attr(
            "instance_types",
            Value::string_list(["g5.xlarge", "g5.2xlarge"]),
        );
        c.set_attr(
            "nodes",
            Value::object([
                ("min", Value::int(1)),
                ("max", Value::int(4)),
                ("desired", Value::int(2)),
            ]),
        );
        let p = plan(None, &c);
        let m = p.get("monthly_cost_usd");
        let price = |t: &str| catalog::hourly_price(t, false, &BTreeMap::new()).unwrap();
        let (lo, hi) = (price("g5.xlarge"), price("g5.2xlarge"));
        assert!(lo < hi);
        assert_eq!(
            m.get("min").as_f64(),
            Some((lo * 730.0 * 100.0).round() / 100.0)
        );
        assert_eq!(
            m.get("max").as_f64(),
            Some((4.0 * hi * 730.0 * 100.0).round() / 100.0)
        );
        // Unknown bounds: unknown cost, never a guess.
        let mut u = c.clone();
        u.set_attr("nodes", Value::Unknown);
        assert!(plan(None, &u).get("monthly_cost_usd").is_unknown());
        // A type without a price: no figure rather than a wrong one.
        let mut x = c.clone();
        x.set_attr("instance_types", Value::string_list(["x9.mega"]));
        assert!(plan(None, &x).get("monthly_cost_usd").is_null());
    }

    #[test]
    fn the_gpu_price_is_the_first_types_price_per_gpu_at_its_capacity_type() {
        let mut c = schema::schema().block.null_object();
        c.set_attr("name", Value::string("train"));
        c.set_attr("region", Value::string("us-east-1"));
        c.set_attr("team", Value::string("ml"));
        c.set_attr("capacity_type", Value::string("on_demand"));
        c.set_attr(
            "instance_types",
            Value::string_list(["g5.12xlarge", "g5.xlarge"]),
        );
        c.set_attr(
            "nodes",
            Value::object([
                ("min", Value::int(0)),
                ("max", Value::int(2)),
                ("desired", Value::int(1)),
            ]),
        );
        let none = BTreeMap::new();
        let g5_12 = catalog::hourly_price("g5.12xlarge", false, &none).unwrap();
        let p = plan(None, &c);
        assert_eq!(
            p.get("gpu_hourly_usd").as_f64(),
            Some(crate::resources::cost::per_unit(g5_12 / 4.0))
        );
        // Spot and overrides move it as they move the pool's own figures.
        c.set_attr("capacity_type", Value::string("spot"));
        let spot = catalog::hourly_price("g5.12xlarge", true, &none).unwrap();
        assert_eq!(
            plan(None, &c).get("gpu_hourly_usd").as_f64(),
            Some(crate::resources::cost::per_unit(spot / 4.0))
        );
        // GCP: the machine type's built-in GPUs.
        let mut g = c.clone();
        g.set_attr("cloud", Value::string("gcp"));
        g.set_attr("region", Value::string("us-central1"));
        g.set_attr("gcp_project", Value::string("p"));
        g.set_attr("capacity_type", Value::string("on_demand"));
        g.set_attr("instance_types", Value::string_list(["a2-highgpu-2g"]));
        let a2 = catalog::gce_hourly_price("a2-highgpu-2g", None, false, &none).unwrap();
        assert_eq!(
            plan(None, &g).get("gpu_hourly_usd").as_f64(),
            Some(crate::resources::cost::per_unit(a2 / 2.0))
        );
        // Unknown types: unknown, never a guess; a type without GPUs or price: null.
        let mut u = c.clone();
        u.set_attr("instance_types", Value::Unknown);
        assert!(plan(None, &u).get("gpu_hourly_usd").is_unknown());
        let mut x = c.clone();
        x.set_attr("instance_types", Value::string_list(["x9.mega"]));
        assert!(plan(None, &x).get("gpu_hourly_usd").is_null());
    }
}
