//! The endpoint's arguments as typed Rust, with defaults for blocks the user left out.

use crate::cty::Value;
use crate::resources::common::{parse_duration, MAX_DURATION};
use std::collections::BTreeMap;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Canary {
    pub version: String,
    pub image: String,
    pub percent: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointSpec {
    pub name: String,
    pub namespace: String,
    pub team: String,
    pub project: Option<String>,
    pub model_uri: String,
    pub model_version: String,
    pub model_digest: Option<String>,
    pub model_format: Option<String>,
    pub image: String,
    pub args: Vec<String>,
    pub env: BTreeMap<String, String>,
    pub port: i64,
    pub cuda_version: Option<String>,
    pub gpus: i64,
    pub cpu: String,
    pub memory: String,
    pub min_replicas: i64,
    pub max_replicas: i64,
    pub target_cpu: i64,
    pub readiness_path: String,
    pub liveness_path: String,
    pub startup_timeout: Duration,
    pub canary: Option<Canary>,
    pub wait: bool,
    pub rollout_timeout: Duration,
    pub auto_rollback: bool,
    pub pool_id: Option<String>,
    /// USD per GPU-hour on the pool's nodes (`gpu_hourly_usd`), replacing the Kubernetes GPU
    /// price in the endpoint's cost.
    pub gpu_hourly_usd: Option<f64>,
    /// `namespace/name` of a paved_vector_db whose connection Secret is injected.
    pub vector_db_id: Option<String>,
    /// `namespace/name` of a paved_feature_store whose client configuration is mounted.
    pub feature_store_id: Option<String>,
    /// The feature store's online-store credential (Secret name, key), read from its client
    /// ConfigMap at apply time.
    pub feature_store_secret: Option<(String, String)>,
}

/// The name part of a `namespace/name` ID.
pub fn id_name(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

fn s(v: &Value, d: &str) -> String {
    v.as_str().unwrap_or(d).to_string()
}
fn n(v: &Value, d: i64) -> i64 {
    v.as_i64().unwrap_or(d)
}

impl EndpointSpec {
    pub fn from_value(v: &Value) -> EndpointSpec {
        let (m, r, res, a, h, c, ro) = (
            v.get("model"),
            v.get("runtime"),
            v.get("resources"),
            v.get("autoscaling"),
            v.get("health"),
            v.get("canary"),
            v.get("rollout"),
        );
        let image = s(r.get("image"), "");
        EndpointSpec {
            name: s(v.get("name"), ""),
            namespace: s(v.get("namespace"), "default"),
            team: s(v.get("team"), ""),
            project: v.get("project").as_str().map(String::from),
            model_uri: s(m.get("uri"), ""),
            model_version: s(m.get("version"), ""),
            model_digest: m.get("digest").as_str().map(String::from),
            model_format: m.get("format").as_str().map(String::from),
            args: r.get("args").as_string_vec().unwrap_or_default(),
            env: r.get("env").as_string_map().unwrap_or_default(),
            port: n(r.get("port"), 8080),
            cuda_version: r.get("cuda_version").as_str().map(String::from),
            gpus: n(res.get("gpus"), 0),
            cpu: s(res.get("cpu"), "1"),
            memory: s(res.get("memory"), "2Gi"),
            min_replicas: n(a.get("min_replicas"), 1),
            max_replicas: n(a.get("max_replicas"), 3),
            target_cpu: n(a.get("target_cpu_utilization"), 70),
            readiness_path: s(h.get("readiness_path"), "/healthz"),
            liveness_path: s(h.get("liveness_path"), "/healthz"),
            startup_timeout: h
                .get("startup_timeout")
                .as_str()
                .and_then(parse_duration)
                .unwrap_or(Duration::from_secs(300))
                .min(MAX_DURATION),
            canary: (!c.is_null()).then(|| Canary {
                version: s(c.get("version"), ""),
                image: c
                    .get("image")
                    .as_str()
                    .map(String::from)
                    .unwrap_or_else(|| image.clone()),
                percent: n(c.get("traffic_percent"), 0),
            }),
            image,
            wait: ro.get("wait").as_bool().unwrap_or(true),
            rollout_timeout: ro
                .get("timeout")
                .as_str()
                .and_then(parse_duration)
                .unwrap_or(Duration::from_secs(600))
                .min(MAX_DURATION),
            auto_rollback: ro.get("auto_rollback").as_bool().unwrap_or(true),
            pool_id: v.get("pool_id").as_str().map(String::from),
            gpu_hourly_usd: v
                .get("gpu_hourly_usd")
                .as_f64()
                .filter(|p| p.is_finite() && *p >= 0.0),
            vector_db_id: v.get("vector_db_id").as_str().map(String::from),
            feature_store_id: v.get("feature_store_id").as_str().map(String::from),
            feature_store_secret: None,
        }
    }

    /// Stable and canary replica counts. Traffic is split by replica ratio inside
    /// `min_replicas`, so a canary never adds GPUs: 20% of 5 replicas is 4 stable + 1 canary.
    pub fn split(&self) -> (i64, i64) {
        let total = self.min_replicas.max(1);
        match &self.canary {
            None => (total, 0),
            Some(c) if c.percent <= 0 => (total, 0),
            Some(c) if c.percent >= 100 => (0, total),
            Some(c) => {
                let canary = ((total * c.percent) as f64 / 100.0).round() as i64;
                let canary = canary.clamp(1, (total - 1).max(1));
                (total - canary, canary)
            }
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}.{}.svc.cluster.local", self.name, self.namespace)
    }

    /// Lineage recorded on every object and exposed as the `lineage` attribute.
    pub fn lineage(&self) -> BTreeMap<String, String> {
        let mut l = BTreeMap::new();
        l.insert("model_uri".into(), self.model_uri.clone());
        l.insert("model_version".into(), self.model_version.clone());
        if let Some(d) = &self.model_digest {
            l.insert("model_digest".into(), d.clone());
        }
        if let Some(f) = &self.model_format {
            l.insert("model_format".into(), f.clone());
        }
        l.insert("runtime_image".into(), self.image.clone());
        if let Some(c) = &self.cuda_version {
            l.insert("cuda_version".into(), c.clone());
        }
        if let Some(p) = &self.pool_id {
            l.insert("pool_id".into(), p.clone());
        }
        if let Some(v) = &self.vector_db_id {
            l.insert("vector_db".into(), v.clone());
        }
        if let Some(f) = &self.feature_store_id {
            l.insert("feature_store".into(), f.clone());
        }
        l.insert("team".into(), self.team.clone());
        if let Some(p) = &self.project {
            l.insert("project".into(), p.clone());
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(min: i64, pct: Option<i64>) -> EndpointSpec {
        let mut v = super::super::schema::schema().block.null_object();
        v.set_attr(
            "autoscaling",
            Value::object([
                ("min_replicas", Value::int(min)),
                ("max_replicas", Value::int(10)),
                ("target_cpu_utilization", Value::int(70)),
            ]),
        );
        if let Some(p) = pct {
            v.set_attr(
                "canary",
                Value::object([
                    ("version", Value::string("v2")),
                    ("image", Value::Null),
                    ("traffic_percent", Value::int(p)),
                ]),
            );
        }
        EndpointSpec::from_value(&v)
    }

    #[test]
    fn canary_splits_inside_min_replicas() {
        assert_eq!(spec(5, None).split(), (5, 0));
        assert_eq!(spec(5, Some(20)).split(), (4, 1));
        assert_eq!(spec(5, Some(50)).split(), (2, 3));
        assert_eq!(
            spec(5, Some(5)).split(),
            (4, 1),
            "a live canary gets at least one replica"
        );
        assert_eq!(
            spec(5, Some(99)).split(),
            (1, 4),
            "and stable keeps one until 100%"
        );
        assert_eq!(spec(5, Some(100)).split(), (0, 5));
        assert_eq!(spec(5, Some(0)).split(), (5, 0));
        assert_eq!(spec(2, Some(20)).split(), (1, 1));
    }

    #[test]
    fn defaults_apply_to_missing_blocks() {
        let s = EndpointSpec::from_value(&super::super::schema::schema().block.null_object());
        assert_eq!(
            (s.port, s.gpus, s.min_replicas, s.max_replicas),
            (8080, 0, 1, 3)
        );
        assert_eq!(s.startup_timeout, Duration::from_secs(300));
        assert!(s.wait && s.auto_rollback);
    }
}
