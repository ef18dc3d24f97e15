//! Reading what runs: one list call per source, each object priced as its resource prices it.

use super::{aggregate, report, Attributed, Item, Report, UNATTRIBUTED};
use crate::cloud::aws::Instance;
use crate::cloud::gce::Vm;
use crate::cloud::kube::Kind;
use crate::context::Context;
use crate::error::ResourceError;
use crate::resources::cost::{self, UnitPrices};
use crate::resources::gpu_compute_pool::{catalog, CAPACITY_TAG};
use serde_json::Value as Json;
use std::collections::BTreeMap;

/// What to read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sources {
    /// EC2 regions (empty: EC2 is not read).
    pub regions: Vec<String>,
    /// GCP projects whose pool VMs are read (empty: Compute Engine is not read).
    pub gcp_projects: Vec<String>,
    /// Read Pods and PersistentVolumeClaims in every namespace.
    pub kubernetes: bool,
    /// An unreachable Kubernetes API counts as nothing running there (noted in the sources)
    /// instead of failing the report.
    pub kubernetes_optional: bool,
}

/// The label every Kubernetes object paved creates carries (`workload::labels`).
pub const MANAGED_SELECTOR: &str = "app.kubernetes.io/managed-by=paved";

/// Reads the sources and builds the report for `team` / `project` (None: all). A source that
/// is selected but unreachable fails the report: a report that silently left a cloud out
/// would show a team cheaper than it is.
pub async fn gather(
    ctx: &Context,
    sources: &Sources,
    team: Option<&str>,
    project: Option<&str>,
) -> Result<Report, ResourceError> {
    let overrides = &ctx.defaults.price_overrides;
    let mut items = vec![];
    let mut read = vec![];
    for region in &sources.regions {
        let ec2 = ctx.aws()?.ec2(region)?;
        let instances = ec2.managed_instances().await?;
        read.push(format!("ec2 {region}: {} instances", instances.len()));
        items.extend(
            instances
                .iter()
                .map(|i| instance_item(i, region, overrides)),
        );
    }
    for project in &sources.gcp_projects {
        // The aggregated list is project-wide; the region only keys the client cache.
        let region = ctx
            .default_gcp_region()
            .unwrap_or_else(|| "us-central1".into());
        let vms = ctx.gce(project, &region)?.pool_instances().await?;
        let billed: Vec<Attributed> = vms
            .iter()
            .filter(|v| v.is_billed())
            .map(|v| gce_instance_item(v, overrides))
            .collect();
        read.push(format!(
            "gce {project}: {} running of {} instances",
            billed.len(),
            vms.len()
        ));
        items.extend(billed);
    }
    if sources.kubernetes {
        let kube = ctx.kube()?;
        let prices = UnitPrices::new(overrides);
        let listed = async {
            let pods = kube.list(Kind::Pod, "", MANAGED_SELECTOR).await?;
            let claims = kube
                .list(Kind::PersistentVolumeClaim, "", MANAGED_SELECTOR)
                .await?;
            Ok::<_, ResourceError>((pods, claims))
        };
        let (pods, claims) = match listed.await {
            Ok(x) => x,
            Err(e) if sources.kubernetes_optional => {
                read.push(format!("kubernetes: not read ({e})"));
                return Ok(report(aggregate(items, team, project), read));
            }
            Err(e) => return Err(e),
        };
        let counted_pods: Vec<Attributed> =
            pods.iter().filter_map(|p| pod_item(p, &prices)).collect();
        let counted_claims: Vec<Attributed> = claims
            .iter()
            .filter_map(|c| claim_item(c, &prices))
            .collect();
        read.push(format!(
            "kubernetes: {} running of {} pods, {} volume claims",
            counted_pods.len(),
            pods.len(),
            counted_claims.len()
        ));
        items.extend(counted_pods);
        items.extend(counted_claims);
    }
    Ok(report(aggregate(items, team, project), read))
}

fn first<'a>(m: &'a BTreeMap<String, String>, keys: &[&str]) -> Option<&'a String> {
    keys.iter()
        .find_map(|k| m.get(*k))
        .filter(|v| !v.is_empty())
}

/// An instance priced as its pool prices it (catalog price or override, Spot when its pool
/// launched it as Spot).
pub fn instance_item(i: &Instance, region: &str, overrides: &BTreeMap<String, f64>) -> Attributed {
    let spot = match i.tags.get(CAPACITY_TAG).map(String::as_str) {
        Some(c) => c == "spot",
        None => i.spot,
    };
    Attributed {
        team: first(&i.tags, &["team", "paved:team"])
            .cloned()
            .unwrap_or_else(|| UNATTRIBUTED.into()),
        project: first(&i.tags, &["project", "paved:project"]).cloned(),
        item: Item {
            kind: "ec2_instance",
            name: i.id.clone(),
            location: region.to_string(),
            resource: i.tags.get("paved:pool").cloned().unwrap_or_default(),
            hourly_usd: catalog::hourly_price(&i.instance_type, spot, overrides).unwrap_or(0.0),
            gpus_provisioned: catalog::instance_type(&i.instance_type).map_or(0, |t| t.gpus),
            gpus_requested: 0,
        },
    }
}

/// A Compute Engine VM priced as its pool prices it (catalog price or override, Spot when it
/// runs as Spot). GCP label keys are the tag keys with `:` turned into `-`.
pub fn gce_instance_item(vm: &Vm, overrides: &BTreeMap<String, f64>) -> Attributed {
    let guest = vm.accelerator.as_ref().map(|a| a.0.as_str());
    let entry = catalog::gce_vm_type(&vm.machine_type, guest);
    let accel = entry.map(|t| t.accelerator);
    Attributed {
        team: first(&vm.labels, &["team", "paved-team"])
            .cloned()
            .unwrap_or_else(|| UNATTRIBUTED.into()),
        project: first(&vm.labels, &["project", "paved-project"]).cloned(),
        item: Item {
            kind: "gce_instance",
            name: vm.name.clone(),
            location: vm.zone.clone(),
            resource: vm.labels.get("paved-pool").cloned().unwrap_or_default(),
            hourly_usd: catalog::gce_hourly_price(&vm.machine_type, accel, vm.spot, overrides)
                .unwrap_or(0.0),
            gpus_provisioned: vm
                .accelerator
                .as_ref()
                .map(|a| i64::from(a.1))
                .or(entry.map(|t| t.gpus))
                .unwrap_or(0),
            gpus_requested: 0,
        },
    }
}

fn labels(obj: &Json) -> BTreeMap<String, String> {
    obj["metadata"]["labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn attributed(obj: &Json, kind: &'static str, hourly: f64, gpus: i64) -> Attributed {
    let l = labels(obj);
    Attributed {
        team: first(&l, &["team", "paved.dev/team"])
            .cloned()
            .unwrap_or_else(|| UNATTRIBUTED.into()),
        project: first(&l, &["project", "paved.dev/project"]).cloned(),
        item: Item {
            kind,
            name: obj["metadata"]["name"].as_str().unwrap_or("").to_string(),
            location: obj["metadata"]["namespace"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            resource: l
                .get("app.kubernetes.io/instance")
                .cloned()
                .unwrap_or_default(),
            hourly_usd: hourly,
            gpus_provisioned: 0,
            gpus_requested: gpus,
        },
    }
}

/// A running pod at its requests. Pods of Jobs (a vector database's bootstrap and backups, a
/// feature store's materialization) are left out, as the resources leave them out of their
/// figures: they run minutes a day. Pending, finished and terminating pods cost nothing.
pub fn pod_item(pod: &Json, prices: &UnitPrices) -> Option<Attributed> {
    let running = pod["status"]["phase"].as_str() == Some("Running");
    let terminating = !pod["metadata"]["deletionTimestamp"].is_null();
    let of_job = pod["metadata"]["ownerReferences"]
        .as_array()
        .is_some_and(|o| o.iter().any(|r| r["kind"].as_str() == Some("Job")));
    if !running || terminating || of_job {
        return None;
    }
    let spec = &pod["spec"];
    Some(attributed(
        pod,
        "pod",
        cost::pod_hourly(spec, &prices.for_pod(pod)),
        cost::pod_gpus(spec),
    ))
}

/// A volume claim at its requested storage, bound or not (a claim waiting for a volume is
/// what the resource asked for and will be billed once bound).
pub fn claim_item(claim: &Json, prices: &UnitPrices) -> Option<Attributed> {
    if !claim["metadata"]["deletionTimestamp"].is_null() {
        return None;
    }
    Some(attributed(
        claim,
        "persistent_volume_claim",
        cost::claim_hourly(claim, prices),
        0,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn instances_are_priced_like_their_pool() {
        let tags = |extra: &[(&str, &str)]| {
            let mut t: BTreeMap<String, String> = [("paved:team", "ml"), ("paved:pool", "train")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            t.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            t
        };
        let i = |t: BTreeMap<String, String>, spot: bool| Instance {
            id: "i-1".into(),
            instance_type: "g5.xlarge".into(),
            state: "running".into(),
            tags: t,
            spot,
            ..Default::default()
        };
        let none = BTreeMap::new();
        let od = instance_item(&i(tags(&[]), false), "us-east-1", &none);
        assert_eq!(od.team, "ml");
        assert_eq!(od.item.resource, "train");
        assert_eq!(od.item.gpus_provisioned, 1);
        assert_eq!(
            od.item.hourly_usd,
            catalog::hourly_price("g5.xlarge", false, &none).unwrap()
        );
        let spot_tag = instance_item(&i(tags(&[(CAPACITY_TAG, "spot")]), false), "r", &none);
        let spot_ec2 = instance_item(&i(tags(&[]), true), "r", &none);
        let spot = catalog::hourly_price("g5.xlarge", true, &none).unwrap();
        assert_eq!(
            (spot_tag.item.hourly_usd, spot_ec2.item.hourly_usd),
            (spot, spot)
        );
        // the plain key wins over the old one
        let plain = instance_item(
            &i(tags(&[("team", "search"), ("project", "rag")]), false),
            "r",
            &none,
        );
        assert_eq!(
            (plain.team.as_str(), plain.project.as_deref()),
            ("search", Some("rag"))
        );
        assert_eq!(
            instance_item(&i(BTreeMap::new(), false), "r", &none).team,
            UNATTRIBUTED
        );
    }

    #[test]
    fn gce_vms_are_priced_like_their_pool() {
        let none = BTreeMap::new();
        let vm = |mt: &str, accel: Option<(&str, u32)>, spot: bool| Vm {
            name: "gp-abc-x1".into(),
            zone: "us-central1-a".into(),
            machine_type: mt.into(),
            status: "RUNNING".into(),
            labels: [("team", "ml"), ("project", "rag"), ("paved-pool", "train")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            spot,
            accelerator: accel.map(|(a, n)| (a.to_string(), n)),
        };
        let a2 = gce_instance_item(&vm("a2-highgpu-2g", None, false), &none);
        assert_eq!(
            (
                a2.team.as_str(),
                a2.project.as_deref(),
                a2.item.resource.as_str()
            ),
            ("ml", Some("rag"), "train")
        );
        assert_eq!(
            (a2.item.kind, a2.item.location.as_str()),
            ("gce_instance", "us-central1-a")
        );
        assert_eq!(a2.item.gpus_provisioned, 2);
        assert_eq!(
            a2.item.hourly_usd,
            catalog::gce_hourly_price("a2-highgpu-2g", None, false, &none).unwrap()
        );
        // N1 VMs are priced with the GPU model they carry, not the first entry of the type
        let v100 = gce_instance_item(
            &vm("n1-standard-8", Some(("nvidia-tesla-v100", 1)), false),
            &none,
        );
        assert_eq!(
            v100.item.hourly_usd,
            catalog::gce_hourly_price("n1-standard-8", Some("nvidia-v100-16gb"), false, &none)
                .unwrap()
        );
        let t4 = gce_instance_item(
            &vm("n1-standard-8", Some(("nvidia-tesla-t4", 1)), false),
            &none,
        );
        assert!(t4.item.hourly_usd < v100.item.hourly_usd);
        let spot = gce_instance_item(&vm("g2-standard-4", None, true), &none);
        assert_eq!(
            spot.item.hourly_usd,
            catalog::gce_hourly_price("g2-standard-4", None, true, &none).unwrap()
        );
        let over = BTreeMap::from([("g2-standard-4:spot".to_string(), 0.25)]);
        assert_eq!(
            gce_instance_item(&vm("g2-standard-4", None, true), &over)
                .item
                .hourly_usd,
            0.25
        );
        let mut old = vm("g2-standard-4", None, false);
        old.labels = BTreeMap::from([("paved-team".to_string(), "search".to_string())]);
        assert_eq!(gce_instance_item(&old, &none).team, "search");
        old.labels.clear();
        assert_eq!(gce_instance_item(&old, &none).team, UNATTRIBUTED);
    }

    #[test]
    fn only_running_pods_outside_jobs_count() {
        let p = UnitPrices::new(&BTreeMap::new());
        let pod = |phase: &str, owner: &str| {
            json!({"metadata": {"name": "ep-1", "namespace": "ml",
                "labels": {"team": "ml", "app.kubernetes.io/instance": "ep"},
                "ownerReferences": [{"kind": owner}]},
              "spec": {"containers": [{"resources": {"requests": {"cpu": "1", "nvidia.com/gpu": "1"}}}]},
              "status": {"phase": phase}})
        };
        let a = pod_item(&pod("Running", "ReplicaSet"), &p).unwrap();
        assert_eq!(a.item.hourly_usd, 0.031611 + 0.95);
        assert_eq!((a.item.gpus_requested, a.item.resource.as_str()), (1, "ep"));
        assert!(pod_item(&pod("Pending", "ReplicaSet"), &p).is_none());
        assert!(pod_item(&pod("Running", "Job"), &p).is_none());
        let mut gone = pod("Running", "ReplicaSet");
        gone["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
        assert!(pod_item(&gone, &p).is_none());
        let claim = json!({"metadata": {"name": "data-db-0", "namespace": "ml",
            "labels": {"paved.dev/team": "ml", "paved.dev/project": "rag"}},
            "spec": {"resources": {"requests": {"storage": "10Gi"}}}});
        let c = claim_item(&claim, &p).unwrap();
        assert_eq!((c.team.as_str(), c.project.as_deref()), ("ml", Some("rag")));
        assert_eq!(c.item.hourly_usd, 10.0 * 0.00005479452);
    }
}
