//! The node bootstrap (EC2 user data). It carries the node's Kubernetes labels and taints and the
//! pinned CUDA/driver versions to whatever joins the node to a cluster, and it records the pool's
//! spec so `terraform import` can rebuild the arguments from the cloud alone.

use super::spec::{PoolSpec, Taint};
use base64::Engine;
use std::collections::BTreeMap;

const SPEC_MARKER: &str = "# paved-spec: ";

/// The node's view: labels and taints as the kubelet will register them.
#[derive(serde::Serialize)]
struct NodeConfig<'a> {
    pool_id: &'a str,
    pool: &'a str,
    labels: BTreeMap<String, String>,
    taints: Vec<Taint>,
    cuda_version: Option<&'a str>,
    driver_version: Option<&'a str>,
}

pub fn render(pool_id: &str, spec: &PoolSpec, team: &str, project: Option<&str>) -> String {
    let mut labels = spec.labels.clone();
    labels.insert("paved.dev/pool".into(), spec.name.clone());
    labels.insert("paved.dev/pool-id".into(), pool_id.into());
    labels.insert("paved.dev/team".into(), team.into());
    if let Some(p) = project {
        labels.insert("paved.dev/project".into(), p.into());
    }
    if let Some((accel, _)) = &spec.accelerator {
        labels.insert("paved.dev/accelerator".into(), accel.clone());
    }
    if let Some(c) = &spec.cuda_version {
        labels.insert("paved.dev/cuda-version".into(), c.clone());
    }
    let mut taints = spec.taints.clone();
    // GPU nodes repel pods that did not ask for a GPU, the convention GPU device plugins use.
    if !taints.iter().any(|t| t.key == "nvidia.com/gpu") {
        taints.push(Taint {
            key: "nvidia.com/gpu".into(),
            value: "present".into(),
            effect: "NoSchedule".into(),
        });
    }
    let node = NodeConfig {
        pool_id,
        pool: &spec.name,
        labels,
        taints,
        cuda_version: spec.cuda_version.as_deref(),
        driver_version: spec.driver_version.as_deref(),
    };
    let node_json = serde_json::to_string_pretty(&node).unwrap_or_default();
    let spec_b64 = base64::engine::general_purpose::STANDARD
        .encode(serde_json::to_vec(spec).unwrap_or_default());
    format!(
        "#!/bin/bash\n\
         # paved GPU node bootstrap for pool {pool_id} (generated; changes are overwritten)\n\
         {SPEC_MARKER}{spec_b64}\n\
         set -euo pipefail\n\
         mkdir -p /etc/paved\n\
         cat > /etc/paved/node.json <<'PAVED_NODE_EOF'\n\
         {node_json}\n\
         PAVED_NODE_EOF\n\
         # A cluster-specific join hook (e.g. baked into the AMI) reads node.json for labels/taints.\n\
         if [ -x /usr/local/bin/paved-node-join ]; then exec /usr/local/bin/paved-node-join /etc/paved/node.json; fi\n"
    )
}

/// Recovers the spec written by [`render`].
pub fn parse(user_data: &str) -> Option<PoolSpec> {
    let line = user_data
        .lines()
        .find_map(|l| l.strip_prefix(SPEC_MARKER))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(line.trim())
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_round_trips_through_user_data() {
        let spec = PoolSpec {
            name: "train".into(),
            accelerator: Some(("nvidia-a10g".into(), 1)),
            instance_types: vec!["g5.xlarge".into()],
            capacity_type: "spot".into(),
            image_id: "ami-1".into(),
            cuda_version: Some("12.2".into()),
            driver_version: Some("535.104.05".into()),
            labels: [("workload".to_string(), "training".to_string())].into(),
            taints: vec![Taint {
                key: "dedicated".into(),
                value: "ml".into(),
                effect: "NoSchedule".into(),
            }],
            ..Default::default()
        };
        let ud = render("gp-1", &spec, "ml", Some("llm"));
        assert!(ud.starts_with("#!/bin/bash\n"));
        assert!(ud.contains("\"paved.dev/team\": \"ml\""));
        assert!(ud.contains("nvidia.com/gpu"));
        assert_eq!(parse(&ud), Some(spec));
        assert_eq!(parse("#!/bin/bash\necho hi\n"), None);
    }
}
