//! What a resource costs, computed from what it asks the cloud or the cluster for, so the
//! figure is known at plan time (offline) and the same number is stored by apply.
//!
//! Kubernetes workloads are priced the way OpenCost prices them: requests (GPUs from requests or
//! limits) × unit prices, plus claimed storage. The unit prices are OpenCost's defaults
//! (opencost/opencost `configs/default.json`: "Default prices based on GCP us-central1"), so a
//! team that runs OpenCost without a cloud integration sees the same figures; the provider's
//! `price_overrides` replace them with the keys in [`OVERRIDE_KEYS`]. The figures come from the
//! objects the resource renders (its `manifests.rs`), never from a second copy of its sizing.

use crate::cty::{Type, Value};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// Hours in a month for monthly figures (365 × 24 / 12, as AWS, GCP and Infracost use).
pub const HOURS_PER_MONTH: f64 = 730.0;

/// `price_overrides` keys for Kubernetes unit prices (USD per hour).
pub const OVERRIDE_KEYS: [&str; 4] = ["k8s:cpu", "k8s:memory_gib", "k8s:gpu", "k8s:storage_gib"];

/// Pod annotation with the USD price of one GPU-hour on the pod's nodes, when its resource
/// knows it (the endpoint's `gpu_hourly_usd`); it replaces the Kubernetes GPU price for that pod.
pub const GPU_PRICE_ANNOTATION: &str = "paved.dev/gpu-hourly-usd";

/// USD per hour of one unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitPrices {
    pub cpu: f64,
    pub memory_gib: f64,
    pub gpu: f64,
    pub storage_gib: f64,
}

impl UnitPrices {
    /// The same prices with GPUs at `gpu` when it is known.
    pub fn with_gpu(self, gpu: Option<f64>) -> UnitPrices {
        UnitPrices {
            gpu: gpu.unwrap_or(self.gpu),
            ..self
        }
    }

    /// The prices for a pod: GPUs at its [`GPU_PRICE_ANNOTATION`] when it carries a valid one.
    pub fn for_pod(self, pod: &Json) -> UnitPrices {
        let own = pod["metadata"]["annotations"][GPU_PRICE_ANNOTATION]
            .as_str()
            .and_then(|p| p.parse::<f64>().ok())
            .filter(|p| p.is_finite() && *p >= 0.0);
        self.with_gpu(own)
    }

    /// OpenCost's defaults, replaced key by key by `price_overrides`.
    pub fn new(overrides: &BTreeMap<String, f64>) -> UnitPrices {
        let get = |k: &str, d: f64| overrides.get(k).copied().unwrap_or(d);
        UnitPrices {
            cpu: get(OVERRIDE_KEYS[0], 0.031611),
            memory_gib: get(OVERRIDE_KEYS[1], 0.004237),
            gpu: get(OVERRIDE_KEYS[2], 0.95),
            storage_gib: get(OVERRIDE_KEYS[3], 0.00005479452),
        }
    }
}

/// CPU cores of a Kubernetes quantity ("500m", "2", "0.5").
pub fn cpu_cores(q: &str) -> Option<f64> {
    let q = q.trim();
    match q.strip_suffix('m') {
        Some(m) => m.parse::<f64>().ok().map(|m| m / 1000.0),
        None => q.parse::<f64>().ok(),
    }
    .filter(|c| c.is_finite() && *c >= 0.0)
}

/// GiB of a Kubernetes quantity ("512Mi", "10Gi", "1G", "1073741824").
pub fn gib(q: &str) -> Option<f64> {
    let q = q.trim();
    const GI: f64 = 1024.0 * 1024.0 * 1024.0;
    let units: [(&str, f64); 10] = [
        ("Ki", 1024.0),
        ("Mi", 1024.0 * 1024.0),
        ("Gi", GI),
        ("Ti", GI * 1024.0),
        ("Pi", GI * 1024.0 * 1024.0),
        ("k", 1e3),
        ("M", 1e6),
        ("G", 1e9),
        ("T", 1e12),
        ("P", 1e15),
    ];
    let (num, mult) = units
        .iter()
        .find_map(|(u, m)| q.strip_suffix(u).map(|n| (n, *m)))
        .unwrap_or((q, 1.0));
    num.parse::<f64>()
        .ok()
        .map(|n| n * mult / GI)
        .filter(|g| g.is_finite() && *g >= 0.0)
}

fn quantity(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Hourly cost of one pod of a pod spec: every container's (and init container's largest)
/// requests. GPUs count from requests, else limits (Kubernetes requires them equal).
pub fn pod_hourly(pod_spec: &Json, p: &UnitPrices) -> f64 {
    let one = |c: &Json| {
        let r = &c["resources"];
        let get = |k: &str| quantity(&r["requests"][k]).or_else(|| quantity(&r["limits"][k]));
        let cpu = get("cpu").and_then(|q| cpu_cores(&q)).unwrap_or(0.0);
        let mem = get("memory").and_then(|q| gib(&q)).unwrap_or(0.0);
        let gpus = get("nvidia.com/gpu")
            .and_then(|q| q.parse::<f64>().ok())
            .unwrap_or(0.0);
        cpu * p.cpu + mem * p.memory_gib + gpus * p.gpu
    };
    let containers: f64 = pod_spec["containers"]
        .as_array()
        .map(|cs| cs.iter().map(one).sum())
        .unwrap_or(0.0);
    let init = pod_spec["initContainers"]
        .as_array()
        .map(|cs| cs.iter().map(one).fold(0.0, f64::max))
        .unwrap_or(0.0);
    containers.max(init)
}

/// GPUs one pod of a pod spec asks for (`nvidia.com/gpu`, requests else limits; the largest
/// init container's count when that is more).
pub fn pod_gpus(pod_spec: &Json) -> i64 {
    let one = |c: &Json| {
        let r = &c["resources"];
        quantity(&r["requests"]["nvidia.com/gpu"])
            .or_else(|| quantity(&r["limits"]["nvidia.com/gpu"]))
            .and_then(|q| q.parse::<i64>().ok())
            .unwrap_or(0)
            .max(0)
    };
    let sum = |k: &str| {
        pod_spec[k]
            .as_array()
            .map(|cs| cs.iter().map(one).collect::<Vec<_>>())
    };
    let containers: i64 = sum("containers").map_or(0, |v| v.into_iter().sum());
    let init: i64 = sum("initContainers").map_or(0, |v| v.into_iter().max().unwrap_or(0));
    containers.max(init)
}

/// A PersistentVolumeClaim's (or claim template's) storage, USD per hour.
pub fn claim_hourly(claim: &Json, p: &UnitPrices) -> f64 {
    quantity(&claim["spec"]["resources"]["requests"]["storage"])
        .and_then(|q| gib(&q))
        .unwrap_or(0.0)
        * p.storage_gib
}

/// The cost range of a set of rendered objects, USD per hour.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Range {
    pub min: f64,
    pub max: f64,
}

impl Range {
    pub fn fixed(x: f64) -> Range {
        Range { min: x, max: x }
    }
}

/// One replica's hourly cost of a Deployment or StatefulSet (its pod plus, for a StatefulSet,
/// its volume claim templates), or a PersistentVolumeClaim's storage; other kinds cost nothing.
pub fn per_replica(obj: &Json, p: &UnitPrices) -> f64 {
    match obj["kind"].as_str() {
        Some("Deployment") | Some("StatefulSet") => {
            let pod = pod_hourly(&obj["spec"]["template"]["spec"], p);
            let claims: f64 = obj["spec"]["volumeClaimTemplates"]
                .as_array()
                .map(|cs| cs.iter().map(|c| claim_hourly(c, p)).sum())
                .unwrap_or(0.0);
            pod + claims
        }
        Some("PersistentVolumeClaim") => claim_hourly(obj, p),
        _ => 0.0,
    }
}

/// An object's hourly cost at its own replica count (`spec.replicas`, default 1).
pub fn object_hourly(obj: &Json, p: &UnitPrices) -> f64 {
    let replicas = match obj["kind"].as_str() {
        Some("Deployment") | Some("StatefulSet") => obj["spec"]["replicas"].as_f64().unwrap_or(1.0),
        _ => 1.0,
    };
    per_replica(obj, p) * replicas
}

/// In a plan: the cost attributes from `set` when every input in `inputs` is known, else
/// unknown (never a guess from a partly known configuration).
pub fn plan(planned: &mut Value, inputs: &[&str], set: impl FnOnce(&mut Value)) {
    if inputs.iter().all(|k| planned.get(k).is_wholly_known()) {
        set(planned);
    } else {
        planned.set_attr("hourly_cost_usd", Value::Unknown);
        planned.set_attr("monthly_cost_usd", Value::Unknown);
    }
}

/// Rounds a price to 1/10,000 USD, so values stay stable across float noise.
pub fn round(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Rounds a unit price to 1/1,000,000 USD (a per-GPU price such as 32.7726 / 8), so it prints
/// and reads back as the same decimal.
pub fn per_unit(x: f64) -> f64 {
    (x * 1_000_000.0).round() / 1_000_000.0
}

/// Rounds to cents.
pub fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The type of `monthly_cost_usd`.
pub fn monthly_type() -> Type {
    Type::Object(
        [
            ("min".to_string(), Type::Number),
            ("max".to_string(), Type::Number),
        ]
        .into_iter()
        .collect(),
    )
}

pub const MONTHLY_DESCRIPTION: &str = "Monthly cost range in USD, known at plan time: min and max from the resource's bounds (nodes or replicas) × the built-in prices or price_overrides, at 730 hours a month. See the cost section of the resource's page.";

/// `monthly_cost_usd` for an hourly range.
pub fn monthly_value(r: Range) -> Value {
    Value::object([
        ("min", Value::float(cents(r.min * HOURS_PER_MONTH))),
        ("max", Value::float(cents(r.max * HOURS_PER_MONTH))),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quantities() {
        assert_eq!(cpu_cores("500m"), Some(0.5));
        assert_eq!(cpu_cores("2"), Some(2.0));
        assert_eq!(cpu_cores("x"), None);
        assert_eq!(gib("512Mi"), Some(0.5));
        assert_eq!(gib("10Gi"), Some(10.0));
        assert_eq!(gib("1073741824"), Some(1.0));
        assert!((gib("1G").unwrap() - 0.931_322_574_615_478_5).abs() < 1e-12);
        assert_eq!(gib("-1Gi"), None);
    }

    #[test]
    fn objects_are_priced_from_requests_gpus_and_claims() {
        let p = UnitPrices::new(&BTreeMap::new());
        let sts = json!({"kind": "StatefulSet", "spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}},
            {"resources": {"limits": {"nvidia.com/gpu": 1}}}]}},
            "volumeClaimTemplates": [{"spec": {"resources": {"requests": {"storage": "10Gi"}}}}]}});
        let one = 0.5 * 0.031611 + 0.004237 + 0.95 + 10.0 * 0.00005479452;
        assert!((per_replica(&sts, &p) - one).abs() < 1e-12);
        assert!((object_hourly(&sts, &p) - 3.0 * one).abs() < 1e-12);
        let pvc = json!({"kind": "PersistentVolumeClaim", "spec": {"resources": {"requests": {"storage": "1Gi"}}}});
        assert!((object_hourly(&pvc, &p) - 0.00005479452).abs() < 1e-15);
        assert_eq!(object_hourly(&json!({"kind": "Service"}), &p), 0.0);
        let o: BTreeMap<String, f64> = [("k8s:gpu".to_string(), 2.0)].into_iter().collect();
        assert_eq!(UnitPrices::new(&o).gpu, 2.0);
        assert_eq!(pod_gpus(&sts["spec"]["template"]["spec"]), 1);
        let init = json!({"initContainers": [{"resources": {"requests": {"nvidia.com/gpu": "2"}}}],
            "containers": [{"resources": {"requests": {"nvidia.com/gpu": 1}}}]});
        assert_eq!(pod_gpus(&init), 2);
        assert_eq!(pod_gpus(&json!({})), 0);
    }

    #[test]
    fn monthly_is_in_cents_at_730_hours() {
        let v = monthly_value(Range { min: 1.0, max: 2.5 });
        assert_eq!(v.get("min").as_f64(), Some(730.0));
        assert_eq!(v.get("max").as_f64(), Some(1825.0));
    }
}
