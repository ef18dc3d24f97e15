//! `terraform-provider-paved costs`: the live report from a terminal or a cron job, with the
//! clouds' usual settings (AWS environment and credential chain, kubeconfig) instead of a
//! provider block.

use super::{gather, render, Sources};
use crate::cloud::aws::AwsSettings;
use crate::cloud::gce::GcpSettings;
use crate::cloud::kube::{KubeClient, KubeSettings};
use crate::context::{Context, Defaults, RestGceFactory, SdkEc2Factory};
use std::collections::BTreeMap;
use std::sync::Arc;

pub const USAGE: &str = "usage:
  terraform-provider-paved costs [--format table|json] [--team TEAM] [--project PROJECT]
                                 [--region REGION]... [--aws-endpoint URL] [--no-aws]
                                 [--gcp-project PROJECT]... [--gcp-endpoint URL]
                                 [--kubeconfig PATH] [--context NAME] [--no-kubernetes]
                                 [--price-override KEY=USD]...
  terraform-provider-paved costs --plan PLAN.json --format infracost
Reads what runs now (EC2 instances tagged by paved, the Compute Engine VMs of paved's pools in
each --gcp-project, paved's Pods and volume claims in every namespace) and prints the hourly cost, GPUs and idle GPUs per team and project. The region
defaults to AWS_REGION / AWS_DEFAULT_REGION; credentials come from the AWS environment and the
kubeconfig (KUBECONFIG, ~/.kube/config, or in-cluster) and Google's application default
credentials (GOOGLE_APPLICATION_CREDENTIALS, GOOGLE_OAUTH_ACCESS_TOKEN). With --plan, converts the plan-time
costs in `terraform show -json PLANFILE` output to Infracost's JSON format (no cloud is read),
for `infracost output --path`.";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    pub json: bool,
    /// `--plan FILE --format infracost`.
    pub plan: Option<String>,
    pub infracost: bool,
    pub team: Option<String>,
    pub project: Option<String>,
    pub regions: Vec<String>,
    pub aws_endpoint: Option<String>,
    pub aws: bool,
    pub gcp_projects: Vec<String>,
    pub gcp_endpoint: Option<String>,
    pub kubeconfig: Option<String>,
    pub context: Option<String>,
    pub kubernetes: bool,
    pub price_overrides: BTreeMap<String, f64>,
}

/// Parses the arguments after `costs`; `env` supplies the default region.
pub fn parse(args: &[String], env: impl Fn(&str) -> Option<String>) -> Result<Options, String> {
    let mut it = args.iter().flat_map(|a| match a.split_once('=') {
        Some((k, v)) if a.starts_with("--") => vec![k.to_string(), v.to_string()],
        _ => vec![a.clone()],
    });
    let mut o = Options {
        aws: true,
        kubernetes: true,
        ..Options::default()
    };
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match a.as_str() {
            "--format" => match value("--format")?.as_str() {
                "table" => o.json = false,
                "json" => o.json = true,
                "infracost" => o.infracost = true,
                f => {
                    return Err(format!(
                        "--format {f}: use table or json (or infracost with --plan)"
                    ))
                }
            },
            "--plan" => o.plan = Some(value("--plan")?),
            "--team" => o.team = Some(value("--team")?),
            "--project" => o.project = Some(value("--project")?),
            "--region" => o.regions.push(value("--region")?),
            "--aws-endpoint" => o.aws_endpoint = Some(value("--aws-endpoint")?),
            "--no-aws" => o.aws = false,
            "--gcp-project" => o.gcp_projects.push(value("--gcp-project")?),
            "--gcp-endpoint" => o.gcp_endpoint = Some(value("--gcp-endpoint")?),
            "--kubeconfig" => o.kubeconfig = Some(value("--kubeconfig")?),
            "--context" => o.context = Some(value("--context")?),
            "--no-kubernetes" => o.kubernetes = false,
            "--price-override" => {
                let v = value("--price-override")?;
                let (k, p) = v.rsplit_once('=').ok_or_else(|| {
                    format!("--price-override {v}: use KEY=USD, e.g. g5.xlarge=0.9")
                })?;
                let p: f64 = p
                    .parse()
                    .ok()
                    .filter(|p: &f64| p.is_finite() && *p >= 0.0)
                    .ok_or_else(|| format!("--price-override {v}: {p} is not a price in USD"))?;
                o.price_overrides.insert(k.to_string(), p);
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    match (&o.plan, o.infracost) {
        (Some(_), true) => return Ok(o),
        (Some(_), false) => return Err("--plan writes Infracost's format: add --format infracost".into()),
        (None, true) => return Err("--format infracost converts a plan: add --plan PLAN.json (from `terraform show -json PLANFILE`)".into()),
        (None, false) => {}
    }
    if o.aws && o.regions.is_empty() && o.gcp_projects.is_empty() {
        match env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION")).filter(|r| !r.is_empty()) {
            Some(r) => o.regions.push(r),
            None => {
                return Err(
                    "no AWS region: pass --region (or set AWS_REGION), --gcp-project to read GCP, or --no-aws to read Kubernetes only"
                        .into(),
                )
            }
        }
    }
    if !o.aws {
        o.regions.clear();
    }
    Ok(o)
}

fn context(o: &Options) -> Context {
    let defaults = Defaults {
        price_overrides: o.price_overrides.clone(),
        ..Defaults::default()
    };
    let aws = o.aws.then(|| {
        Arc::new(SdkEc2Factory::new(AwsSettings {
            region: o.regions.first().cloned(),
            ec2_endpoint: o.aws_endpoint.clone(),
            sts_endpoint: o.aws_endpoint.clone(),
            ..AwsSettings::default()
        })) as _
    });
    let ctx = Context::new(defaults, aws).with_kube(Arc::new(KubeClient::new(KubeSettings {
        config_path: o.kubeconfig.clone(),
        config_context: o.context.clone(),
        ..KubeSettings::default()
    })));
    if o.gcp_projects.is_empty() {
        return ctx;
    }
    ctx.with_gce(Arc::new(RestGceFactory::new(GcpSettings {
        project: o.gcp_projects.first().cloned(),
        endpoint: o.gcp_endpoint.clone(),
        ..GcpSettings::default()
    })))
}

/// Runs the command; the exit code (0 printed, 1 a source failed, 2 bad arguments).
pub fn main(args: &[String]) -> i32 {
    let o = match parse(args, |k| std::env::var(k).ok()) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("terraform-provider-paved costs: {e}");
            }
            eprintln!("{USAGE}");
            return if e.is_empty() { 0 } else { 2 };
        }
    };
    if let Some(path) = &o.plan {
        return infracost_main(path);
    }
    crate::logging::init(Some(tracing::Level::WARN));
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("terraform-provider-paved costs: could not start the async runtime: {e}");
            return 1;
        }
    };
    let ctx = context(&o);
    let sources = Sources {
        regions: o.regions.clone(),
        gcp_projects: o.gcp_projects.clone(),
        kubernetes: o.kubernetes,
        kubernetes_optional: false,
    };
    match rt.block_on(gather(
        &ctx,
        &sources,
        o.team.as_deref(),
        o.project.as_deref(),
    )) {
        Ok(r) => {
            print!(
                "{}",
                if o.json {
                    render::json(&r) + "\n"
                } else {
                    render::table(&r)
                }
            );
            0
        }
        Err(e) => {
            eprintln!("terraform-provider-paved costs: {e}");
            1
        }
    }
}

fn infracost_main(path: &str) -> i32 {
    let plan = match std::fs::read(path)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            serde_json::from_slice::<serde_json::Value>(&b).map_err(|e| format!("not JSON: {e}"))
        }) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("terraform-provider-paved costs: cannot read {path}: {e}");
            return 1;
        }
    };
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into());
    match super::infracost::convert(&plan, path, &now) {
        Ok(out) => {
            println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
            0
        }
        Err(e) => {
            eprintln!("terraform-provider-paved costs: {path}: {e}");
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn flags_parse_and_the_region_defaults_from_the_environment() {
        let env = |k: &str| (k == "AWS_REGION").then(|| "eu-west-1".to_string());
        let o = parse(&args("--format json --team ml --price-override g5.xlarge:spot=0.4 --price-override=k8s:gpu=2"), env).unwrap();
        assert!(o.json && o.aws && o.kubernetes);
        assert_eq!(o.team.as_deref(), Some("ml"));
        assert_eq!(o.regions, vec!["eu-west-1"]);
        assert_eq!(o.price_overrides["g5.xlarge:spot"], 0.4);
        assert_eq!(o.price_overrides["k8s:gpu"], 2.0);
        let o = parse(
            &args("--region us-east-1 --region us-west-2 --no-kubernetes"),
            |_| None,
        )
        .unwrap();
        assert_eq!((o.regions.len(), o.kubernetes), (2, false));
        assert!(parse(&args("--no-aws"), |_| None)
            .unwrap()
            .regions
            .is_empty());
        assert!(parse(&args(""), |_| None).unwrap_err().contains("--region"));
        assert!(parse(&args("--format xml --no-aws"), |_| None)
            .unwrap_err()
            .contains("table or json"));
        assert!(parse(&args("--price-override g5=cheap --no-aws"), |_| None).is_err());
        assert!(parse(&args("--bogus"), |_| None)
            .unwrap_err()
            .contains("--bogus"));
        let o = parse(
            &args("--gcp-project ml-prod --gcp-endpoint http://127.0.0.1:1"),
            |_| None,
        )
        .unwrap();
        assert_eq!(
            (o.gcp_projects, o.gcp_endpoint.as_deref(), o.regions.len()),
            (vec!["ml-prod".to_string()], Some("http://127.0.0.1:1"), 0)
        );
        let o = parse(&args("--plan p.json --format infracost"), |_| None).unwrap();
        assert_eq!((o.plan.as_deref(), o.infracost), (Some("p.json"), true));
        assert!(parse(&args("--plan p.json"), |_| None)
            .unwrap_err()
            .contains("--format infracost"));
        assert!(parse(&args("--format infracost"), |_| None)
            .unwrap_err()
            .contains("--plan"));
    }
}
