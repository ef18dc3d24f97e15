//! `paved_gpu_instance_types`: the GPU catalog behind `paved_gpu_compute_pool`, with the prices
//! paved uses for cost attribution, so a team can compare options before asking for a pool.

use crate::context::Context;
use crate::cty::{Type, Value};
use crate::data_source::DataSource;
use crate::diag::{AttrPath, Diagnostics};
use crate::error::ResourceError;
use crate::resources::gpu_compute_pool::catalog;
use crate::schema::{Attribute, Block, Schema};
use async_trait::async_trait;

pub struct GpuInstanceTypes;

fn entry_type() -> Type {
    Type::object([
        ("name", Type::String),
        ("accelerator", Type::String),
        ("gpus", Type::Number),
        ("hourly_usd", Type::Number),
    ])
}

#[async_trait]
impl DataSource for GpuInstanceTypes {
    fn type_name(&self) -> &'static str {
        "paved_gpu_instance_types"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new("GPU instance types paved knows, cheapest first, with the hourly prices used for cost attribution.")
                .attr(Attribute::computed("id", Type::String, "The filter, as accelerator/gpus/capacity_type."))
                .attr(Attribute::optional("accelerator", Type::String, "Only this accelerator (e.g. nvidia-a10g)."))
                .attr(Attribute::optional("gpus_per_node", Type::Number, "Only types with exactly this many GPUs."))
                .attr(Attribute::optional("capacity_type", Type::String, "on_demand (default) or spot: which price to report."))
                .attr(Attribute::computed("instance_types", Type::list(entry_type()), "Matching types: name, accelerator, gpus, hourly_usd.")),
        )
    }

    fn validate(&self, c: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        catalog::checks::accelerator(c.get("accelerator"), AttrPath::attr("accelerator"), &mut d);
        if c.get("gpus_per_node").as_i64().is_some_and(|n| n < 1) {
            d.attr_error(
                AttrPath::attr("gpus_per_node"),
                "Invalid GPU count",
                "gpus_per_node must be at least 1.",
            );
        }
        catalog::checks::capacity_type(
            c.get("capacity_type"),
            AttrPath::attr("capacity_type"),
            &mut d,
        );
        d
    }

    async fn read(&self, ctx: &Context, c: &Value) -> Result<Value, ResourceError> {
        let accel = c.get("accelerator").as_str();
        let gpus = c.get("gpus_per_node").as_i64();
        let spot = c.get("capacity_type").as_str() == Some("spot");
        let mut rows: Vec<(f64, Value)> = catalog::INSTANCE_TYPES
            .iter()
            .filter(|t| {
                accel.is_none_or(|a| t.accelerator == a) && gpus.is_none_or(|g| t.gpus == g)
            })
            .map(|t| {
                let price = catalog::hourly_price(t.name, spot, &ctx.defaults.price_overrides)
                    .unwrap_or(0.0);
                let price = (price * 10_000.0).round() / 10_000.0;
                (
                    price,
                    Value::object([
                        ("name", Value::string(t.name)),
                        ("accelerator", Value::string(t.accelerator)),
                        ("gpus", Value::int(t.gpus)),
                        ("hourly_usd", Value::float(price)),
                    ]),
                )
            })
            .collect();
        rows.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut out = c.clone();
        out.set_attr(
            "id",
            Value::string(format!(
                "{}/{}/{}",
                accel.unwrap_or("any"),
                gpus.map_or("any".to_string(), |g| g.to_string()),
                if spot { "spot" } else { "on_demand" }
            )),
        );
        out.set_attr(
            "instance_types",
            Value::List(rows.into_iter().map(|r| r.1).collect()),
        );
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(accel: Option<&str>, gpus: Option<i64>, ct: Option<&str>) -> Value {
        let mut v = GpuInstanceTypes.schema().block.null_object();
        v.set_attr("accelerator", accel.map_or(Value::Null, Value::string));
        v.set_attr("gpus_per_node", gpus.map_or(Value::Null, Value::int));
        v.set_attr("capacity_type", ct.map_or(Value::Null, Value::string));
        v
    }

    #[tokio::test]
    async fn filters_and_sorts_by_price() {
        let ctx = Context::unconfigured();
        let v = GpuInstanceTypes
            .read(&ctx, &cfg(Some("nvidia-a10g"), Some(1), None))
            .await
            .unwrap();
        let names: Vec<&str> = v
            .get("instance_types")
            .elements()
            .iter()
            .map(|e| e.get("name").as_str().unwrap())
            .collect();
        assert_eq!(
            names,
            vec!["g5.xlarge", "g5.2xlarge", "g5.4xlarge", "g5.8xlarge"]
        );
        assert_eq!(v.get("id"), &Value::string("nvidia-a10g/1/on_demand"));
        assert!(v.is_wholly_known());
        let spot = GpuInstanceTypes
            .read(&ctx, &cfg(Some("nvidia-a10g"), Some(1), Some("spot")))
            .await
            .unwrap();
        assert_eq!(
            spot.get("instance_types").elements()[0].get("hourly_usd"),
            &Value::float(0.4527)
        );
    }

    #[test]
    fn validation_names_the_attribute() {
        let d = GpuInstanceTypes.validate(&cfg(Some("nvidia-b9"), Some(0), Some("reserved")));
        let paths: Vec<String> = d
            .iter()
            .map(|x| x.path.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(paths, vec!["accelerator", "gpus_per_node", "capacity_type"]);
    }
}
