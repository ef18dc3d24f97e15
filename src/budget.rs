//! Team budgets and GPU quotas, enforced before a change reaches a cloud.
//!
//! A create, or an update that raises what a resource can cost (or the GPUs it can hold), is
//! admitted only when the team's committed figures — what runs now, from the live report
//! ([`crate::team_costs`]), less what this resource runs now — plus the resource's maximum
//! stay within the team's limits. The maximum is the resource's plan-time figure
//! (`monthly_cost_usd.max`: nodes.max or max_replicas at the dearest candidate), so a pool that
//! may autoscale to its bound is charged its bound, never its current size. Shrinks and
//! changes that do not raise the maximum are always admitted: a team over budget can still
//! reduce what it runs.
//!
//! Both front ends call [`admit`] just before the verb: Terraform's apply (and its plan, when
//! the clouds answer; see [`plan_check`]) and the Crossplane reconciler, which reports a
//! refusal as `Synced=False`, reason `BudgetExceeded`, and creates nothing.

use crate::context::Context;
use crate::cty::Value;
use crate::diag::{AttrPath, Diagnostic, Diagnostics};
use crate::error::ResourceError;
use crate::resource::Resource;
use crate::resources::cost::HOURS_PER_MONTH;
use crate::team_costs::{gather, Sources};
use std::collections::BTreeMap;

/// The limits configured on the provider (`budgets`, `gpu_quota` blocks) or the
/// ProviderConfig (`spec.budgets`, `spec.gpuQuotas`), by team.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Limits {
    pub monthly_usd: BTreeMap<String, f64>,
    pub max_gpus: BTreeMap<String, i64>,
}

impl Limits {
    pub fn is_empty(&self) -> bool {
        self.monthly_usd.is_empty() && self.max_gpus.is_empty()
    }
}

/// What one state of a resource commits its team to: the most it can cost per month and the
/// most GPUs it can hold (declared by [`Resource::demand`]).
#[derive(Debug, Clone, PartialEq)]
pub struct Demand {
    pub team: String,
    /// USD per month at the resource's bounds.
    pub monthly_usd: f64,
    /// GPUs the resource provisions at its bounds (pools; workloads that only request GPUs
    /// from a pool hold none of their own).
    pub gpus: i64,
    /// What it runs now, USD per hour (`hourly_cost_usd` of a state; 0 before it exists).
    pub running_hourly_usd: f64,
    /// GPUs it provisions now.
    pub running_gpus: i64,
}

impl Demand {
    /// The demand of a state with paved's cost attributes: `team`, `monthly_cost_usd.max`,
    /// `hourly_cost_usd`; `gpus` and `running_gpus` from the resource. None without a team or
    /// a known maximum (nothing to check against).
    pub fn from_state(v: &Value, gpus: i64, running_gpus: i64) -> Option<Demand> {
        Some(Demand {
            team: v.get("team").as_str()?.to_string(),
            monthly_usd: v.get("monthly_cost_usd").get("max").as_f64()?,
            gpus,
            running_hourly_usd: v.get("hourly_cost_usd").as_f64().unwrap_or(0.0),
            running_gpus,
        })
    }
}

/// A team's committed figures, from the live report.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Committed {
    pub monthly_usd: f64,
    pub gpus: i64,
    /// What was read (`ec2 us-east-1: 3 instances`, …), for the message.
    pub sources: Vec<String>,
}

/// A limit a change would break.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Exceeded {
    #[error("team {team:?} has a monthly budget of {budget:.2} USD; it has {committed:.2} USD/month committed elsewhere ({sources}) and this {what} can cost up to {requested:.2} USD/month, {over:.2} USD over. Lower the resource's bounds (nodes.max, max_replicas) or a cheaper type, free capacity elsewhere, or raise the team's budget (provider budgets block / ProviderConfig spec.budgets)")]
    Budget {
        team: String,
        what: String,
        budget: f64,
        committed: f64,
        requested: f64,
        over: f64,
        sources: String,
    },
    #[error("team {team:?} has a GPU quota of {quota}; it holds {committed} GPUs elsewhere ({sources}) and this {what} can hold up to {requested}, {over} over. Lower nodes.max or gpus per node, release GPUs elsewhere, or raise the team's quota (provider gpu_quota block / ProviderConfig spec.gpuQuotas)")]
    Gpus {
        team: String,
        what: String,
        quota: i64,
        committed: i64,
        requested: i64,
        over: i64,
        sources: String,
    },
}

/// The decision, without any I/O: `None` admits. `prior` is the state before an update (None
/// for a create). Only a rise of the maximum is checked.
pub fn decide(
    limits: &Limits,
    what: &str,
    demand: &Demand,
    prior: Option<&Demand>,
    committed: &Committed,
) -> Option<Exceeded> {
    let sources = if committed.sources.is_empty() {
        "nothing read".to_string()
    } else {
        committed.sources.join(", ")
    };
    let team = &demand.team;
    let running_monthly = prior.map_or(0.0, |p| p.running_hourly_usd * HOURS_PER_MONTH);
    let grows_cost = prior.is_none_or(|p| demand.monthly_usd > p.monthly_usd + 0.005);
    if let (Some(budget), true) = (limits.monthly_usd.get(team), grows_cost) {
        let others = (committed.monthly_usd - running_monthly).max(0.0);
        let total = others + demand.monthly_usd;
        if total > budget + 0.005 {
            return Some(Exceeded::Budget {
                team: team.clone(),
                what: what.to_string(),
                budget: *budget,
                committed: cents(others),
                requested: cents(demand.monthly_usd),
                over: cents(total - budget),
                sources,
            });
        }
    }
    let grows_gpus = prior.is_none_or(|p| demand.gpus > p.gpus);
    if let (Some(quota), true) = (limits.max_gpus.get(team), grows_gpus) {
        let others = (committed.gpus - prior.map_or(0, |p| p.running_gpus)).max(0);
        if others + demand.gpus > *quota {
            return Some(Exceeded::Gpus {
                team: team.clone(),
                what: what.to_string(),
                quota: *quota,
                committed: others,
                requested: demand.gpus,
                over: others + demand.gpus - quota,
                sources,
            });
        }
    }
    None
}

fn cents(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// The regions a check reads: the provider's default and the resource's own (`region`).
fn regions(ctx: &Context, planned: &Value) -> Vec<String> {
    if ctx.aws().is_err() {
        return vec![];
    }
    let mut r: Vec<String> = ctx.default_aws_region().into_iter().collect();
    if planned.get("cloud").as_str().is_none_or(|c| c == "aws") {
        if let Some(own) = planned.get("region").as_str() {
            if !r.iter().any(|x| x == own) {
                r.push(own.to_string());
            }
        }
    }
    r
}

/// The GCP projects a check reads: the gcp block's and the resource's own (`gcp_project`).
fn gcp_projects(ctx: &Context, planned: &Value) -> Vec<String> {
    let mut p: Vec<String> = ctx.default_gcp_project().into_iter().collect();
    if planned.get("cloud").as_str() == Some("gcp") {
        if let Some(own) = planned.get("gcp_project").as_str() {
            if !p.iter().any(|x| x == own) {
                p.push(own.to_string());
            }
        }
    }
    p
}

/// The team's committed figures now. An unreachable Kubernetes API counts as nothing running
/// there (a pool-only configuration has no cluster), noted in the sources; an EC2 or Compute
/// Engine failure is an error, since that is where the change would spend.
pub async fn committed(
    ctx: &Context,
    team: &str,
    planned: &Value,
) -> Result<Committed, ResourceError> {
    let sources = Sources {
        regions: regions(ctx, planned),
        gcp_projects: gcp_projects(ctx, planned),
        kubernetes: true,
        kubernetes_optional: true,
    };
    let r = gather(ctx, &sources, Some(team), None).await?;
    Ok(Committed {
        monthly_usd: r.teams.iter().map(|t| t.hourly_usd).sum::<f64>() * HOURS_PER_MONTH,
        gpus: r.teams.iter().map(|t| t.gpus_provisioned).sum(),
        sources: r.sources,
    })
}

fn what(r: &dyn Resource, planned: &Value) -> String {
    match planned.get("name").as_str() {
        Some(n) => format!("{} {n:?}", r.type_name()),
        None => r.type_name().to_string(),
    }
}

/// The check before a create (`prior` None) or an update. Makes no call when no limit applies
/// to the resource's team or nothing grows.
pub async fn admit(
    r: &dyn Resource,
    ctx: &Context,
    prior: Option<&Value>,
    planned: &Value,
) -> Result<(), ResourceError> {
    let limits = &ctx.defaults.limits;
    if limits.is_empty() {
        return Ok(());
    }
    let Some(demand) = r.demand(planned) else {
        return Ok(());
    };
    let limited =
        limits.monthly_usd.contains_key(&demand.team) || limits.max_gpus.contains_key(&demand.team);
    let prior_demand = prior.and_then(|p| r.demand(p));
    let grows = prior_demand
        .as_ref()
        .is_none_or(|p| demand.monthly_usd > p.monthly_usd + 0.005 || demand.gpus > p.gpus);
    if !limited || !grows {
        return Ok(());
    }
    let committed = committed(ctx, &demand.team, planned).await?;
    match decide(
        limits,
        &what(r, planned),
        &demand,
        prior_demand.as_ref(),
        &committed,
    ) {
        None => Ok(()),
        Some(e) => Err(ResourceError::BudgetExceeded(e)),
    }
}

/// The same check at plan time, as diagnostics: an error when the clouds answer and a limit is
/// exceeded; a warning (and the plan goes on) when they do not, since plans must work offline.
pub async fn plan_check(
    r: &dyn Resource,
    ctx: &Context,
    prior: Option<&Value>,
    planned: &Value,
    diags: &mut Diagnostics,
) {
    let known = ["team", "monthly_cost_usd"]
        .iter()
        .all(|k| planned.get(k).is_wholly_known());
    if ctx.defaults.limits.is_empty() || !known {
        return;
    }
    // Bounded, so an offline plan waits seconds, not the SDKs' retry schedule.
    let checked = tokio::time::timeout(PLAN_TIMEOUT, admit(r, ctx, prior, planned)).await;
    match checked {
        Err(_) => diags.push(Diagnostic::warning(
            "Budget not checked at plan time",
            format!("The team's committed cost could not be read within {}s; the check runs again at apply, before anything is created.", PLAN_TIMEOUT.as_secs()),
        )),
        Ok(Ok(())) => {}
        Ok(Err(ResourceError::BudgetExceeded(e))) => {
            diags.attr_error(AttrPath::attr("team"), "Team budget exceeded", format!("{e}."))
        }
        Ok(Err(e)) => diags.push(Diagnostic::warning(
            "Budget not checked at plan time",
            format!("The team's committed cost could not be read ({e}); the check runs again at apply, before anything is created."),
        )),
    }
}

/// How long a plan waits for the committed cost before it goes on without the check.
const PLAN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

#[cfg(test)]
mod tests {
    use super::*;

    fn demand(monthly: f64, gpus: i64, running_hourly: f64, running_gpus: i64) -> Demand {
        Demand {
            team: "ml".into(),
            monthly_usd: monthly,
            gpus,
            running_hourly_usd: running_hourly,
            running_gpus,
        }
    }

    fn limits(budget: Option<f64>, gpus: Option<i64>) -> Limits {
        Limits {
            monthly_usd: budget.map(|b| ("ml".to_string(), b)).into_iter().collect(),
            max_gpus: gpus.map(|g| ("ml".to_string(), g)).into_iter().collect(),
        }
    }

    fn committed(monthly: f64, gpus: i64) -> Committed {
        Committed {
            monthly_usd: monthly,
            gpus,
            sources: vec!["ec2 us-east-1: 2 instances".into()],
        }
    }

    #[test]
    fn a_create_over_budget_is_refused_with_every_figure() {
        let e = decide(
            &limits(Some(1000.0), None),
            "pool \"train\"",
            &demand(734.38, 1, 0.0, 0),
            None,
            &committed(400.0, 0),
        )
        .unwrap();
        let m = e.to_string();
        for want in [
            "\"ml\"",
            "1000.00",
            "400.00",
            "734.38",
            "134.38",
            "ec2 us-east-1",
        ] {
            assert!(m.contains(want), "{want} missing from {m}");
        }
        assert!(decide(
            &limits(Some(1200.0), None),
            "p",
            &demand(734.38, 1, 0.0, 0),
            None,
            &committed(400.0, 0)
        )
        .is_none());
        // other teams' limits do not apply
        let mut other = limits(Some(1.0), Some(0));
        other.monthly_usd = [("search".to_string(), 1.0)].into_iter().collect();
        other.max_gpus = [("search".to_string(), 0)].into_iter().collect();
        assert!(decide(
            &other,
            "p",
            &demand(734.38, 1, 0.0, 0),
            None,
            &committed(400.0, 0)
        )
        .is_none());
    }

    #[test]
    fn an_update_counts_what_the_resource_runs_once_and_shrinks_always_pass() {
        // the pool runs 1.006/h now (734.38/month, inside the committed 1000) and grows to 2000
        let prior = demand(734.38, 1, 1.006, 1);
        let grown = demand(2000.0, 4, 1.006, 1);
        assert!(decide(
            &limits(Some(2300.0), None),
            "p",
            &grown,
            Some(&prior),
            &committed(1000.0, 1)
        )
        .is_none());
        assert!(decide(
            &limits(Some(2200.0), None),
            "p",
            &grown,
            Some(&prior),
            &committed(1000.0, 1)
        )
        .is_some());
        // a shrink (or no change of the maximum) over budget is still admitted
        let shrunk = demand(500.0, 1, 1.006, 1);
        assert!(decide(
            &limits(Some(10.0), Some(0)),
            "p",
            &shrunk,
            Some(&prior),
            &committed(1000.0, 1)
        )
        .is_none());
    }

    #[test]
    fn gpu_quota_counts_provisioned_gpus_outside_the_resource() {
        let l = limits(None, Some(8));
        assert!(decide(&l, "p", &demand(1.0, 4, 0.0, 0), None, &committed(0.0, 4)).is_none());
        let e = decide(&l, "p", &demand(1.0, 8, 0.0, 0), None, &committed(0.0, 4)).unwrap();
        assert!(
            matches!(
                e,
                Exceeded::Gpus {
                    over: 4,
                    committed: 4,
                    ..
                }
            ),
            "{e:?}"
        );
        // growing a pool from 4 to 8 GPUs when it is the only one: within quota
        assert!(decide(
            &l,
            "p",
            &demand(1.0, 8, 0.0, 4),
            Some(&demand(1.0, 4, 0.0, 4)),
            &committed(0.0, 4)
        )
        .is_none());
    }
}
