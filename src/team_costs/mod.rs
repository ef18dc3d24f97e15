//! The live cost report: what runs now, by team and project, read from the clouds rather than
//! from any state, so it also sees what a plan never showed (out-of-band scale-ups, leaked
//! instances, pods of a deleted configuration).
//!
//! Every figure is priced by the same rules the resources use for their `hourly_cost_usd`
//! (the GPU catalog with `price_overrides` for instances, [`crate::resources::cost`] for pods
//! and claims), so the report of a team equals the sum of its resources' figures when all of
//! them are running. Idle GPUs are the ones a team provisions (its pools' instances) and no pod
//! of the team requests: the capacity decision the report exists for.
//!
//! `gather` makes one paginated list call per source (EC2 DescribeInstances by tag key per
//! region, Kubernetes Pods and PersistentVolumeClaims by label in every namespace), whatever
//! the number of pools or pods; `aggregate` is pure, so its arithmetic is unit-tested.

pub mod cli;
mod gather;
pub mod infracost;
pub mod render;

pub use gather::{gather, Sources};

use serde::Serialize;
use std::collections::BTreeMap;

/// One object behind a figure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// `ec2_instance`, `pod` or `persistent_volume_claim`.
    pub kind: &'static str,
    /// Instance ID, or the object's name.
    pub name: String,
    /// The region (EC2) or namespace (Kubernetes).
    pub location: String,
    /// The paved resource the object belongs to: the pool's name for an instance, the
    /// `app.kubernetes.io/instance` label for Kubernetes objects.
    pub resource: String,
    pub hourly_usd: f64,
    pub gpus_provisioned: i64,
    pub gpus_requested: i64,
}

/// An item with the team and project it is attributed to.
#[derive(Debug, Clone, PartialEq)]
pub struct Attributed {
    pub team: String,
    pub project: Option<String>,
    pub item: Item,
}

/// The figures of one team and project.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TeamCost {
    pub team: String,
    pub project: Option<String>,
    /// USD per hour of everything attributed (rounded to 1/10,000).
    pub hourly_usd: f64,
    /// `hourly_usd` × 730, in cents.
    pub monthly_usd: f64,
    pub gpus_provisioned: i64,
    pub gpus_requested: i64,
    /// Provisioned GPUs no pod of the team requests.
    pub idle_gpus: i64,
    /// What the idle GPUs cost per hour: idle GPUs × the team's average price per provisioned
    /// GPU (its instances' prices over their GPUs).
    pub idle_gpu_hourly_usd: f64,
    pub resources: Vec<Item>,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub teams: Vec<TeamCost>,
    pub total_hourly_usd: f64,
    pub total_idle_gpu_hourly_usd: f64,
    /// What was read, one line per source, e.g. `ec2 us-east-1: 1 call, 3 instances`.
    pub sources: Vec<String>,
}

/// The team an object is charged to when it carries no team key (paved always writes one;
/// this shows objects whose labels were edited out of band).
pub const UNATTRIBUTED: &str = "(unattributed)";

/// Groups items by (team, project), keeping only those `team`/`project` select, and computes
/// each group's figures. Groups and their items come out sorted, so the output is stable.
pub fn aggregate(
    items: Vec<Attributed>,
    team: Option<&str>,
    project: Option<&str>,
) -> Vec<TeamCost> {
    let mut groups: BTreeMap<(String, Option<String>), Vec<Item>> = BTreeMap::new();
    for a in items {
        if team.is_some_and(|t| t != a.team)
            || project.is_some_and(|p| a.project.as_deref() != Some(p))
        {
            continue;
        }
        groups.entry((a.team, a.project)).or_default().push(a.item);
    }
    groups
        .into_iter()
        .map(|((team, project), mut resources)| {
            resources.sort_by(|a, b| {
                (a.kind, &a.location, &a.name).cmp(&(b.kind, &b.location, &b.name))
            });
            let hourly: f64 = resources.iter().map(|i| i.hourly_usd).sum();
            let provisioned: i64 = resources.iter().map(|i| i.gpus_provisioned).sum();
            let requested: i64 = resources.iter().map(|i| i.gpus_requested).sum();
            let gpu_hosts_cost: f64 = resources
                .iter()
                .filter(|i| i.gpus_provisioned > 0)
                .map(|i| i.hourly_usd)
                .sum();
            let idle = (provisioned - requested).max(0);
            let per_gpu = if provisioned > 0 {
                gpu_hosts_cost / provisioned as f64
            } else {
                0.0
            };
            let hourly_usd = round(hourly);
            TeamCost {
                team,
                project,
                hourly_usd,
                monthly_usd: crate::resources::cost::cents(
                    hourly_usd * crate::resources::cost::HOURS_PER_MONTH,
                ),
                gpus_provisioned: provisioned,
                gpus_requested: requested,
                idle_gpus: idle,
                idle_gpu_hourly_usd: round(idle as f64 * per_gpu),
                resources,
            }
        })
        .collect()
}

/// The report from its groups and the list of what was read.
pub fn report(teams: Vec<TeamCost>, sources: Vec<String>) -> Report {
    Report {
        total_hourly_usd: round(teams.iter().map(|t| t.hourly_usd).sum()),
        total_idle_gpu_hourly_usd: round(teams.iter().map(|t| t.idle_gpu_hourly_usd).sum()),
        teams,
        sources,
    }
}

fn round(x: f64) -> f64 {
    crate::resources::cost::round(x)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(kind: &'static str, name: &str, hourly: f64, prov: i64, req: i64) -> Item {
        Item {
            kind,
            name: name.into(),
            location: "x".into(),
            resource: "r".into(),
            hourly_usd: hourly,
            gpus_provisioned: prov,
            gpus_requested: req,
        }
    }

    fn a(team: &str, project: Option<&str>, i: Item) -> Attributed {
        Attributed {
            team: team.into(),
            project: project.map(String::from),
            item: i,
        }
    }

    #[test]
    fn unrequested_gpus_are_idle_at_the_teams_price_per_gpu() {
        let items = vec![
            // two 4-GPU instances at 5.672 and one 1-GPU at 1.006: 9 GPUs for 12.35 an hour
            a("ml", Some("rag"), item("ec2_instance", "i-1", 5.672, 4, 0)),
            a("ml", Some("rag"), item("ec2_instance", "i-2", 5.672, 4, 0)),
            a("ml", Some("rag"), item("ec2_instance", "i-3", 1.006, 1, 0)),
            a("ml", Some("rag"), item("pod", "ep-1", 1.2, 0, 2)),
            a("ml", Some("rag"), item("pod", "ep-2", 1.2, 0, 2)),
            a(
                "ml",
                Some("rag"),
                item("persistent_volume_claim", "data", 0.0005, 0, 0),
            ),
            a("search", None, item("pod", "db-0", 0.05, 0, 0)),
        ];
        let t = aggregate(items.clone(), None, None);
        assert_eq!(t.len(), 2);
        let ml = &t[0];
        assert_eq!(
            (ml.gpus_provisioned, ml.gpus_requested, ml.idle_gpus),
            (9, 4, 5)
        );
        assert_eq!(ml.hourly_usd, round(5.672 * 2.0 + 1.006 + 2.4 + 0.0005));
        assert_eq!(ml.idle_gpu_hourly_usd, round(5.0 * (12.35 / 9.0)));
        assert_eq!(
            ml.monthly_usd,
            crate::resources::cost::cents(ml.hourly_usd * 730.0)
        );
        assert_eq!(t[1].team, "search");
        assert_eq!((t[1].idle_gpus, t[1].idle_gpu_hourly_usd), (0, 0.0));
        // more requested than provisioned (pods on shared nodes): nothing idle, never negative
        let over = aggregate(
            vec![
                a("ml", None, item("ec2_instance", "i-1", 1.0, 1, 0)),
                a("ml", None, item("pod", "p", 0.9, 0, 3)),
            ],
            None,
            None,
        );
        assert_eq!((over[0].idle_gpus, over[0].idle_gpu_hourly_usd), (0, 0.0));
        let ml_hourly = ml.hourly_usd;
        let r = report(t, vec![]);
        assert_eq!(r.total_hourly_usd, round(ml_hourly + 0.05));
    }

    #[test]
    fn team_and_project_select_groups() {
        let items = vec![
            a("ml", Some("rag"), item("pod", "a", 1.0, 0, 0)),
            a("ml", Some("chat"), item("pod", "b", 2.0, 0, 0)),
            a("search", Some("rag"), item("pod", "c", 4.0, 0, 0)),
        ];
        let by_team = aggregate(items.clone(), Some("ml"), None);
        assert_eq!(by_team.iter().map(|t| t.hourly_usd).sum::<f64>(), 3.0);
        let by_project = aggregate(items.clone(), None, Some("rag"));
        assert_eq!(by_project.iter().map(|t| t.hourly_usd).sum::<f64>(), 5.0);
        assert!(aggregate(items, Some("nobody"), None).is_empty());
    }
}
