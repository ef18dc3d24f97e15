//! Plan-time checks for `paved_model_endpoint`.

use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostics};
use crate::resources::common::{
    check_count, check_duration, check_len, is_dns_label, validate_timeouts,
};
use crate::resources::gpu_compute_pool::catalog;

/// Platform limits (documented in docs/resources/model_endpoint.md, "Limits").
pub const MAX_REPLICAS: i64 = 1000;
pub const MAX_GPUS_PER_REPLICA: i64 = 16;

pub fn validate(c: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    for attr in ["name", "namespace"] {
        if let Some(n) = c.get(attr).as_str() {
            if !is_dns_label(n) {
                d.attr_error(AttrPath::attr(attr), "Invalid Kubernetes name", format!("{n:?} must be 1-63 lowercase letters, digits and dashes, starting and ending with a letter or digit."));
            }
        }
    }
    if let Some(n) = c.get("name").as_str() {
        if n.starts_with(|ch: char| ch.is_ascii_digit()) {
            d.attr_error(AttrPath::attr("name"), "Invalid endpoint name", format!("{n:?} starts with a digit; the endpoint's Service name must start with a letter."));
        }
    }
    if let Some(p) = c.get("gpu_hourly_usd").as_f64() {
        if !p.is_finite() || p < 0.0 {
            d.attr_error(
                AttrPath::attr("gpu_hourly_usd"),
                "Invalid GPU price",
                format!("gpu_hourly_usd = {p} is not a price: give USD per GPU-hour, 0 or more (usually the pool's gpu_hourly_usd)."),
            );
        }
    }
    if let Some(env) = c.get("runtime").get("env").entries() {
        for k in env.keys() {
            if [
                "MODEL_URI",
                "MODEL_VERSION",
                "MODEL_DIGEST",
                "MODEL_FORMAT",
                "PORT",
            ]
            .contains(&k.as_str())
            {
                d.attr_error(
                    AttrPath::attr("runtime").then("env").key(k),
                    "Reserved environment variable",
                    format!("{k} is set by paved from the model and runtime blocks; set it there instead."),
                );
            }
        }
    }
    let ns = c.get("namespace");
    for attr in ["vector_db_id", "feature_store_id"] {
        let Some(id) = c.get(attr).as_str() else {
            continue;
        };
        match id.split_once('/') {
            Some((n, name)) if !n.is_empty() && !name.is_empty() && !name.contains('/') => {
                let own = ns.as_str().unwrap_or("default");
                if n != own && !ns.is_unknown() {
                    d.attr_error(AttrPath::attr(attr), "Reference in another namespace", format!("{id} is in namespace {n:?} but the endpoint is in {own:?}; pods can only use Secrets and ConfigMaps of their own namespace. Put both in the same namespace."));
                }
            }
            _ => d.attr_error(AttrPath::attr(attr), "Invalid reference", format!("{id:?} is not NAMESPACE/NAME; use the id attribute of the referenced resource.")),
        }
    }
    if let Some(u) = c.get("model").get("uri").as_str() {
        if !u.contains("://") {
            d.attr_error(AttrPath::attr("model").then("uri"), "Invalid model URI", format!("{u:?} has no scheme; write it like s3://bucket/path, gs://…, hf://org/model or https://…."));
        }
    }
    check_len(
        c.get("model").get("uri"),
        AttrPath::attr("model").then("uri"),
        2048,
        "model.uri",
        &mut d,
    );
    check_count(
        c.get("runtime").get("port"),
        AttrPath::attr("runtime").then("port"),
        1,
        65535,
        "runtime.port (a TCP port)",
        &mut d,
    );
    let cuda = c.get("runtime").get("cuda_version");
    catalog::checks::cuda(cuda, AttrPath::attr("runtime").then("cuda_version"), &mut d);
    if let Some(g) = check_count(
        c.get("resources").get("gpus"),
        AttrPath::attr("resources").then("gpus"),
        0,
        MAX_GPUS_PER_REPLICA,
        "resources.gpus",
        &mut d,
    ) {
        if g > 0 && cuda.is_null() {
            d.attr_error(
                AttrPath::attr("resources").then("gpus"),
                "GPUs need a GPU-capable runtime",
                "resources.gpus asks for GPUs but the runtime declares no CUDA version. Set runtime.cuda_version to the CUDA version the image is built with (it is checked against the pool's driver), or set gpus = 0.",
            );
        }
    }
    let a = c.get("autoscaling");
    let at = |x: &str| AttrPath::attr("autoscaling").then(x);
    let (min, max) = (
        check_count(
            a.get("min_replicas"),
            at("min_replicas"),
            1,
            MAX_REPLICAS,
            "autoscaling.min_replicas",
            &mut d,
        ),
        check_count(
            a.get("max_replicas"),
            at("max_replicas"),
            1,
            MAX_REPLICAS,
            "autoscaling.max_replicas",
            &mut d,
        ),
    );
    if let (Some(mn), Some(mx)) = (min, max) {
        if mn > mx {
            d.attr_error(
                at("min_replicas"),
                "min_replicas is larger than max_replicas",
                format!("min_replicas = {mn} and max_replicas = {mx}: make min ≤ max."),
            );
        }
    }
    check_count(
        a.get("target_cpu_utilization"),
        at("target_cpu_utilization"),
        1,
        100,
        "autoscaling.target_cpu_utilization (a percentage)",
        &mut d,
    );
    let path = AttrPath::attr("canary").then("traffic_percent");
    if let Some(p) = check_count(
        c.get("canary").get("traffic_percent"),
        path.clone(),
        0,
        100,
        "canary.traffic_percent (a percentage)",
        &mut d,
    ) {
        if p > 0 && p < 100 && min.unwrap_or(1) < 2 && !a.get("min_replicas").is_unknown() {
            d.attr_error(
                path,
                "Canary needs at least two replicas",
                "Traffic is split by replica ratio inside autoscaling.min_replicas, so a canary that shares traffic needs min_replicas ≥ 2 (a canary never adds GPUs). Raise min_replicas or use traffic_percent = 100.",
            );
        }
    }
    for (block, attr) in [("health", "startup_timeout"), ("rollout", "timeout")] {
        check_duration(
            c.get(block).get(attr),
            AttrPath::attr(block).then(attr),
            true,
            &mut d,
        );
    }
    validate_timeouts(c, &mut d);
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Value {
        let mut v = super::super::schema::schema().block.null_object();
        v.set_attr("name", Value::string("llm"));
        v.set_attr(
            "model",
            Value::object([
                ("uri", Value::string("s3://m/llm")),
                ("version", Value::string("v1")),
                ("digest", Value::Null),
                ("format", Value::Null),
            ]),
        );
        v.set_attr(
            "runtime",
            Value::object([
                ("image", Value::string("srv:1")),
                ("args", Value::Null),
                ("env", Value::Null),
                ("port", Value::int(8080)),
                ("cuda_version", Value::Null),
            ]),
        );
        v
    }

    fn paths(v: &Value) -> Vec<String> {
        validate(v)
            .iter()
            .map(|d| d.path.as_ref().map(|p| p.to_string()).unwrap_or_default())
            .collect()
    }

    #[test]
    fn good_config_passes() {
        assert!(validate(&base()).is_empty());
    }

    #[test]
    fn canary_and_replica_rules() {
        let mut v = base();
        v.set_attr(
            "canary",
            Value::object([
                ("version", Value::string("v2")),
                ("image", Value::Null),
                ("traffic_percent", Value::int(120)),
            ]),
        );
        v.set_attr(
            "autoscaling",
            Value::object([
                ("min_replicas", Value::int(4)),
                ("max_replicas", Value::int(2)),
                ("target_cpu_utilization", Value::int(70)),
            ]),
        );
        assert_eq!(
            paths(&v),
            vec!["autoscaling.min_replicas", "canary.traffic_percent"]
        );
        v.set_attr(
            "canary",
            Value::object([
                ("version", Value::string("v2")),
                ("image", Value::Null),
                ("traffic_percent", Value::int(20)),
            ]),
        );
        v.set_attr(
            "autoscaling",
            Value::object([
                ("min_replicas", Value::int(1)),
                ("max_replicas", Value::int(2)),
                ("target_cpu_utilization", Value::int(70)),
            ]),
        );
        assert_eq!(paths(&v), vec!["canary.traffic_percent"]);
    }

    #[test]
    fn gpus_need_a_cuda_runtime() {
        let mut v = base();
        v.set_attr(
            "resources",
            Value::object([
                ("gpus", Value::int(1)),
                ("cpu", Value::Null),
                ("memory", Value::Null),
            ]),
        );
        assert_eq!(paths(&v), vec!["resources.gpus"]);
        v.get_mut("runtime")
            .unwrap()
            .set_attr("cuda_version", Value::string("12.2"));
        assert!(validate(&v).is_empty());
    }
}
