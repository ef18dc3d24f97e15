//! `paved_team_costs`: the live cost report ([`crate::team_costs`]) as a data source, so a
//! module can show a team what it runs now, or a check can compare it with a budget.

use crate::context::Context;
use crate::cty::{Type, Value};
use crate::data_source::DataSource;
use crate::diag::{AttrPath, Diagnostics};
use crate::error::ResourceError;
use crate::schema::{Attribute, Block, Schema};
use crate::team_costs::{gather, Item, Report, Sources, TeamCost};
use async_trait::async_trait;

pub struct TeamCosts;

fn item_type() -> Type {
    Type::object([
        ("kind", Type::String),
        ("name", Type::String),
        ("location", Type::String),
        ("resource", Type::String),
        ("hourly_usd", Type::Number),
        ("gpus_provisioned", Type::Number),
        ("gpus_requested", Type::Number),
    ])
}

fn team_type() -> Type {
    Type::object([
        ("team", Type::String),
        ("project", Type::String),
        ("hourly_usd", Type::Number),
        ("monthly_usd", Type::Number),
        ("gpus_provisioned", Type::Number),
        ("gpus_requested", Type::Number),
        ("idle_gpus", Type::Number),
        ("idle_gpu_hourly_usd", Type::Number),
        ("resources", Type::list(item_type())),
    ])
}

fn item_value(i: &Item) -> Value {
    Value::object([
        ("kind", Value::string(i.kind)),
        ("name", Value::string(&i.name)),
        ("location", Value::string(&i.location)),
        ("resource", Value::string(&i.resource)),
        (
            "hourly_usd",
            Value::float(crate::resources::cost::round(i.hourly_usd)),
        ),
        ("gpus_provisioned", Value::int(i.gpus_provisioned)),
        ("gpus_requested", Value::int(i.gpus_requested)),
    ])
}

fn team_value(t: &TeamCost) -> Value {
    Value::object([
        ("team", Value::string(&t.team)),
        (
            "project",
            t.project.as_deref().map_or(Value::Null, Value::string),
        ),
        ("hourly_usd", Value::float(t.hourly_usd)),
        ("monthly_usd", Value::float(t.monthly_usd)),
        ("gpus_provisioned", Value::int(t.gpus_provisioned)),
        ("gpus_requested", Value::int(t.gpus_requested)),
        ("idle_gpus", Value::int(t.idle_gpus)),
        ("idle_gpu_hourly_usd", Value::float(t.idle_gpu_hourly_usd)),
        (
            "resources",
            Value::List(t.resources.iter().map(item_value).collect()),
        ),
    ])
}

/// Writes a report into the data source's value (everything but the arguments).
pub fn write_report(out: &mut Value, r: &Report) {
    out.set_attr(
        "teams",
        Value::List(r.teams.iter().map(team_value).collect()),
    );
    out.set_attr("total_hourly_usd", Value::float(r.total_hourly_usd));
    out.set_attr(
        "total_idle_gpu_hourly_usd",
        Value::float(r.total_idle_gpu_hourly_usd),
    );
    out.set_attr("sources", Value::string_list(r.sources.clone()));
}

#[async_trait]
impl DataSource for TeamCosts {
    fn type_name(&self) -> &'static str {
        "paved_team_costs"
    }

    fn schema(&self) -> Schema {
        Schema::new(
            0,
            Block::new("What runs now, by team and project: hourly cost, GPUs provisioned and requested, idle GPUs and the objects behind each figure. Read from the clouds (EC2 instances by paved's tag, paved's Pods and volume claims in every namespace: one list call per source), priced like the resources' hourly_cost_usd.")
                .attr(Attribute::computed("id", Type::String, "The selection, as team/project (\"*\" for all)."))
                .attr(Attribute::optional("team", Type::String, "Only this team."))
                .attr(Attribute::optional("project", Type::String, "Only this project."))
                .attr(Attribute::optional("regions", Type::list(Type::String), "EC2 regions to read; default: the provider's region (none when the provider has no aws block). [] reads no EC2."))
                .attr(Attribute::optional("gcp_projects", Type::list(Type::String), "GCP projects whose pool VMs are read (one aggregated list per project); default: the gcp block's project (none without a gcp block). [] reads no GCP."))
                .attr(Attribute::optional("include_kubernetes", Type::Bool, "Read the Kubernetes cluster the provider is configured for (default true)."))
                .attr(Attribute::computed("teams", Type::list(team_type()), "One entry per team and project: hourly_usd, monthly_usd (hourly × 730), gpus_provisioned, gpus_requested, idle_gpus, idle_gpu_hourly_usd and resources (kind, name, location, resource, hourly_usd, GPUs)."))
                .attr(Attribute::computed("total_hourly_usd", Type::Number, "The sum of the teams' hourly_usd."))
                .attr(Attribute::computed("total_idle_gpu_hourly_usd", Type::Number, "The sum of the teams' idle_gpu_hourly_usd."))
                .attr(Attribute::computed("sources", Type::list(Type::String), "What was read, one line per source.")),
        )
    }

    fn validate(&self, c: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        for (i, r) in c.get("regions").elements().iter().enumerate() {
            if r.as_str().is_some_and(|r| r.trim().is_empty()) {
                d.attr_error(
                    AttrPath::attr("regions").index(i),
                    "Empty region",
                    "Each entry of regions is an AWS region such as us-east-1.",
                );
            }
        }
        for (i, p) in c.get("gcp_projects").elements().iter().enumerate() {
            if p.as_str().is_some_and(|p| p.trim().is_empty()) {
                d.attr_error(
                    AttrPath::attr("gcp_projects").index(i),
                    "Empty project",
                    "Each entry of gcp_projects is a GCP project ID such as ml-prod.",
                );
            }
        }
        d
    }

    async fn read(&self, ctx: &Context, c: &Value) -> Result<Value, ResourceError> {
        let regions: Vec<String> = match c.get("regions") {
            Value::Null => ctx.default_aws_region().into_iter().collect(),
            v => v
                .elements()
                .iter()
                .filter_map(|r| r.as_str().map(String::from))
                .collect(),
        };
        let gcp_projects: Vec<String> = match c.get("gcp_projects") {
            Value::Null => ctx.default_gcp_project().into_iter().collect(),
            v => v
                .elements()
                .iter()
                .filter_map(|r| r.as_str().map(String::from))
                .collect(),
        };
        let sources = Sources {
            regions,
            gcp_projects,
            kubernetes: c.get("include_kubernetes").as_bool().unwrap_or(true),
            kubernetes_optional: false,
        };
        let team = c.get("team").as_str();
        let project = c.get("project").as_str();
        let r = gather(ctx, &sources, team, project).await?;
        let mut out = c.clone();
        out.set_attr(
            "id",
            Value::string(format!(
                "{}/{}",
                team.unwrap_or("*"),
                project.unwrap_or("*")
            )),
        );
        write_report(&mut out, &r);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::team_costs::{aggregate, report, Attributed};

    #[test]
    fn the_report_fills_every_computed_attribute_with_known_values() {
        let item = Item {
            kind: "ec2_instance",
            name: "i-1".into(),
            location: "us-east-1".into(),
            resource: "train".into(),
            hourly_usd: 1.006,
            gpus_provisioned: 1,
            gpus_requested: 0,
        };
        let r = report(
            aggregate(
                vec![Attributed {
                    team: "ml".into(),
                    project: None,
                    item,
                }],
                None,
                None,
            ),
            vec!["ec2 us-east-1: 1 instances".into()],
        );
        let mut v = TeamCosts.schema().block.null_object();
        write_report(&mut v, &r);
        v.set_attr("id", Value::string("*/*"));
        assert!(v.get("teams").is_wholly_known());
        let t = &v.get("teams").elements()[0];
        assert_eq!(t.get("idle_gpus").as_i64(), Some(1));
        assert_eq!(t.get("idle_gpu_hourly_usd").as_f64(), Some(1.006));
        assert!(t.get("project").is_null());
        assert_eq!(v.get("total_hourly_usd").as_f64(), Some(1.006));
    }

    #[test]
    fn an_empty_region_is_refused_with_its_path() {
        let mut v = TeamCosts.schema().block.null_object();
        v.set_attr("regions", Value::string_list(["us-east-1", " "]));
        let d = TeamCosts.validate(&v);
        assert_eq!(
            d.iter().next().unwrap().path.as_ref().unwrap().to_string(),
            "regions[1]"
        );
    }
}
