//! The pool's arguments as typed Rust, read from a (known) planned value, and the state value
//! built back from them plus what exists in the cloud.

use super::catalog;
use crate::cloud::aws::Instance;
use crate::cty::Value;
use crate::error::ResourceError;
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Taint {
    pub key: String,
    #[serde(default)]
    pub value: String,
    pub effect: String,
}

/// Everything a pool is made from. Serialised into the node bootstrap (user data), which is also
/// how `terraform import` recovers the arguments.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct PoolSpec {
    pub name: String,
    #[serde(default)]
    pub accelerator: Option<(String, i64)>,
    pub instance_types: Vec<String>,
    #[serde(default)]
    pub availability_zones: Vec<String>,
    #[serde(default)]
    pub subnet_ids: Vec<String>,
    #[serde(default)]
    pub security_group_ids: Vec<String>,
    pub capacity_type: String,
    pub image_id: String,
    #[serde(default)]
    pub cuda_version: Option<String>,
    #[serde(default)]
    pub driver_version: Option<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub taints: Vec<Taint>,
}

impl PoolSpec {
    pub fn from_value(v: &Value) -> PoolSpec {
        let accel = v.get("accelerator");
        PoolSpec {
            name: v.get("name").as_str().unwrap_or_default().to_string(),
            accelerator: accel
                .get("type")
                .as_str()
                .map(|t| (t.to_string(), accel.get("count").as_i64().unwrap_or(1))),
            instance_types: v.get("instance_types").as_string_vec().unwrap_or_default(),
            availability_zones: v
                .get("availability_zones")
                .as_string_vec()
                .unwrap_or_default(),
            subnet_ids: v.get("subnet_ids").as_string_vec().unwrap_or_default(),
            security_group_ids: v
                .get("security_group_ids")
                .as_string_vec()
                .unwrap_or_default(),
            capacity_type: v
                .get("capacity_type")
                .as_str()
                .unwrap_or("on_demand")
                .to_string(),
            image_id: v.get("image_id").as_str().unwrap_or_default().to_string(),
            cuda_version: v.get("cuda_version").as_str().map(String::from),
            driver_version: v.get("driver_version").as_str().map(String::from),
            labels: v.get("labels").as_string_map().unwrap_or_default(),
            taints: v
                .get("taints")
                .elements()
                .iter()
                .map(|t| Taint {
                    key: t.get("key").as_str().unwrap_or_default().to_string(),
                    value: t.get("value").as_str().unwrap_or_default().to_string(),
                    effect: t.get("effect").as_str().unwrap_or_default().to_string(),
                })
                .collect(),
        }
    }

    pub fn spot(&self) -> bool {
        self.capacity_type == "spot"
    }

    /// Writes the spec's arguments into a state value (used by import). Collections the user
    /// never set stay null, as Terraform stores them.
    pub fn write_into(&self, v: &mut Value) {
        let list = |xs: &Vec<String>| {
            if xs.is_empty() {
                Value::Null
            } else {
                Value::string_list(xs.clone())
            }
        };
        v.set_attr("name", Value::string(&self.name));
        v.set_attr(
            "instance_types",
            Value::string_list(self.instance_types.clone()),
        );
        v.set_attr("availability_zones", list(&self.availability_zones));
        v.set_attr("subnet_ids", list(&self.subnet_ids));
        v.set_attr("security_group_ids", list(&self.security_group_ids));
        v.set_attr("capacity_type", Value::string(&self.capacity_type));
        v.set_attr("image_id", Value::string(&self.image_id));
        v.set_attr(
            "cuda_version",
            self.cuda_version.clone().map_or(Value::Null, Value::String),
        );
        v.set_attr(
            "driver_version",
            self.driver_version
                .clone()
                .map_or(Value::Null, Value::String),
        );
        v.set_attr(
            "labels",
            if self.labels.is_empty() {
                Value::Null
            } else {
                Value::string_map(self.labels.clone())
            },
        );
        v.set_attr(
            "taints",
            if self.taints.is_empty() {
                Value::Null
            } else {
                Value::List(
                    self.taints
                        .iter()
                        .map(|t| {
                            Value::object([
                                ("key", Value::string(&t.key)),
                                ("value", Value::string(&t.value)),
                                ("effect", Value::string(&t.effect)),
                            ])
                        })
                        .collect(),
                )
            },
        );
        v.set_attr(
            "accelerator",
            match &self.accelerator {
                Some((t, c)) => {
                    Value::object([("type", Value::string(t)), ("count", Value::int(*c))])
                }
                None => Value::Null,
            },
        );
    }
}

/// The timeout for `op` (create/update/delete) from the `timeouts` block, default 20 minutes.
pub fn timeout(v: &Value, op: &str) -> Duration {
    crate::resources::common::timeout(v, op, Duration::from_secs(20 * 60))
}

/// What the live instances add up to.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub instance_ids: Vec<String>,
    pub instance_type: Option<String>,
    pub gpus_total: i64,
    pub hourly_cost_usd: f64,
}

pub fn observe(
    instances: &[Instance],
    preference: &[String],
    spot: bool,
    overrides: &BTreeMap<String, f64>,
) -> Observed {
    let mut ids: Vec<String> = instances.iter().map(|i| i.id.clone()).collect();
    ids.sort();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for i in instances {
        *counts.entry(i.instance_type.as_str()).or_default() += 1;
    }
    let rank = |t: &str| preference.iter().position(|p| p == t).unwrap_or(usize::MAX);
    let instance_type = counts
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(rank(b.0).cmp(&rank(a.0))))
        .map(|(t, _)| t.to_string());
    let gpus_total = instances
        .iter()
        .map(|i| catalog::instance_type(&i.instance_type).map_or(0, |t| t.gpus))
        .sum();
    let cost: f64 = instances
        .iter()
        .map(|i| catalog::hourly_price(&i.instance_type, spot, overrides).unwrap_or(0.0))
        .sum();
    Observed {
        instance_ids: ids,
        instance_type,
        gpus_total,
        hourly_cost_usd: round_cents(cost),
    }
}

/// Four decimals: enough for per-hour prices and stable across float noise.
pub fn round_cents(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

/// Writes observed cloud facts into a state value.
pub fn apply_observed(v: &mut Value, o: &Observed, preference: &[String]) {
    v.set_attr("instance_ids", Value::string_list(o.instance_ids.clone()));
    let t = o
        .instance_type
        .clone()
        .or_else(|| v.get("instance_type").as_str().map(String::from))
        .or_else(|| preference.first().cloned())
        .unwrap_or_default();
    v.set_attr("instance_type", Value::string(t));
    v.set_attr("gpus_total", Value::int(o.gpus_total));
    v.set_attr("hourly_cost_usd", Value::float(o.hourly_cost_usd));
    let desired = o.instance_ids.len() as i64;
    if let Some(nodes) = v.get_mut("nodes") {
        nodes.set_attr("desired", Value::int(desired));
    }
}

/// The pool's region, known at apply.
pub fn region_of(v: &Value) -> Result<String, ResourceError> {
    v.get("region")
        .as_str()
        .map(String::from)
        .ok_or_else(|| unknown_at_apply("region"))
}

/// `nodes.desired`, known at apply.
pub fn desired_of(v: &Value) -> Result<i64, ResourceError> {
    v.get("nodes")
        .get("desired")
        .as_i64()
        .ok_or_else(|| unknown_at_apply("nodes.desired"))
}

/// Validation-free helper: the error for a value that should have been known at apply.
pub fn unknown_at_apply(attr: &str) -> ResourceError {
    ResourceError::invalid(
        crate::diag::AttrPath::attr(attr),
        "Value not known at apply time",
        format!("{attr} must be known when the pool is created or changed."),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observe_picks_majority_type_and_sums_costs() {
        let inst = |id: &str, t: &str| Instance {
            id: id.into(),
            instance_type: t.into(),
            state: "running".into(),
            ..Default::default()
        };
        let pref = vec!["g5.xlarge".to_string(), "g5.2xlarge".to_string()];
        let o = observe(
            &[
                inst("i-2", "g5.2xlarge"),
                inst("i-1", "g5.xlarge"),
                inst("i-3", "g5.2xlarge"),
            ],
            &pref,
            false,
            &BTreeMap::new(),
        );
        assert_eq!(o.instance_ids, vec!["i-1", "i-2", "i-3"]);
        assert_eq!(o.instance_type.as_deref(), Some("g5.2xlarge"));
        assert_eq!(o.gpus_total, 3);
        assert_eq!(o.hourly_cost_usd, round_cents(1.006 + 2.0 * 1.212));
        // A tie goes to the preferred type.
        let o = observe(
            &[inst("i-1", "g5.2xlarge"), inst("i-2", "g5.xlarge")],
            &pref,
            false,
            &BTreeMap::new(),
        );
        assert_eq!(o.instance_type.as_deref(), Some("g5.xlarge"));
    }
}
