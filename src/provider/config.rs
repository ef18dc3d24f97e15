//! The provider block: platform defaults and cloud credentials.

use crate::cloud::aws::AwsSettings;
use crate::cloud::gce::GcpSettings;
use crate::cloud::kube::KubeSettings;
use crate::context::Defaults;
use crate::cty::{Type, Value};
use crate::diag::{AttrPath, Diagnostic, Diagnostics};
use crate::schema::{Attribute, Block, Nesting, Schema};

pub fn schema() -> Schema {
    let endpoints =
        Block::new("Custom service endpoints, e.g. LocalStack at http://127.0.0.1:4566.")
            .attr(Attribute::optional(
                "ec2",
                Type::String,
                "EC2 endpoint URL.",
            ))
            .attr(Attribute::optional(
                "sts",
                Type::String,
                "STS endpoint URL.",
            ));
    let aws = Block::new("AWS access. Unset arguments fall back to the standard AWS credential chain (environment, shared config/credentials files, SSO, instance role).")
        .attr(Attribute::optional("region", Type::String, "Default region for AWS resources (else the AWS_REGION or AWS_DEFAULT_REGION environment variable)."))
        .attr(Attribute::optional("profile", Type::String, "Shared config profile to use."))
        .attr(Attribute::optional("access_key", Type::String, "Static access key ID."))
        .attr(Attribute::optional("secret_key", Type::String, "Static secret access key.").sensitive())
        .attr(Attribute::optional("skip_credentials_validation", Type::Bool, "Skip the STS GetCallerIdentity check made before the first change."))
        .block("endpoints", Nesting::Single, endpoints);
    let kubernetes = Block::new("Kubernetes access for model endpoints. Without it (or with it empty) the usual lookup applies: KUBECONFIG / ~/.kube/config, then in-cluster config.")
        .attr(Attribute::optional("config_path", Type::String, "Path to a kubeconfig file."))
        .attr(Attribute::optional("config_context", Type::String, "Context to use from the kubeconfig."))
        .attr(Attribute::optional("host", Type::String, "API server URL; with it, the kubeconfig is not read."))
        .attr(Attribute::optional("token", Type::String, "Bearer token.").sensitive())
        .attr(Attribute::optional("cluster_ca_certificate", Type::String, "PEM CA bundle for the API server."))
        .attr(Attribute::optional("insecure", Type::Bool, "Skip TLS verification of the API server (tests only)."));
    let gcp = Block::new("Google Cloud access for GPU pools with cloud = \"gcp\". Credentials, in order: credentials; GOOGLE_OAUTH_ACCESS_TOKEN; GOOGLE_CREDENTIALS; application default credentials (GOOGLE_APPLICATION_CREDENTIALS, gcloud's application_default_credentials.json, the metadata server). With a loopback endpoint and none of the first three (and neither GOOGLE_APPLICATION_CREDENTIALS nor GCE_METADATA_HOST set), requests go unauthenticated, as the local Compute API expects.")
        .attr(Attribute::optional("project", Type::String, "Default project for GCP resources (else GOOGLE_CLOUD_PROJECT)."))
        .attr(Attribute::optional("region", Type::String, "Default region for GCP resources, e.g. us-central1 (else GOOGLE_REGION)."))
        .attr(Attribute::optional("credentials", Type::String, "A service-account key or other Google credentials JSON (file(\"key.json\"), or a path to the file), or an OAuth 2 access token (`gcloud auth print-access-token`). Unset: the environment and application default credentials.").sensitive())
        .attr(Attribute::optional("endpoint", Type::String, "API root, e.g. http://127.0.0.1:18090 for the local Compute API; paths /compute/v1/... go below it. Default https://compute.googleapis.com."));
    let budgets = Block::new("A team's monthly budget: a create, or a change that raises a resource's maximum monthly cost, is refused before anything reaches a cloud when the team's committed cost (what runs now) plus the resource's maximum (monthly_cost_usd.max) would exceed it.")
        .attr(Attribute::required("team", Type::String, "The team."))
        .attr(Attribute::required("monthly_usd", Type::Number, "The budget in USD per month."));
    let gpu_quota = Block::new("A team's GPU quota: a create or grow of a GPU pool is refused before anything reaches a cloud when the GPUs the team's pools hold now plus the pool's maximum (nodes.max × GPUs per node) would exceed it.")
        .attr(Attribute::required("team", Type::String, "The team."))
        .attr(Attribute::required("max_gpus", Type::Number, "The most GPUs the team's pools may hold."));
    let audit = Block::new("The audit trail: before every change paved writes an intent record (paved.dev/audit/v1, JSON Lines) and after it a result record with the same request_id, each fsynced. A change whose intent cannot be written fails before any cloud is touched. Without this block, PAVED_AUDIT_FILE turns the trail on.")
        .attr(Attribute::optional("file", Type::String, "The JSON Lines file (created if missing, never truncated; rotated to FILE.1 … FILE.5 by size). Else PAVED_AUDIT_FILE."))
        .attr(Attribute::optional("max_size_mb", Type::Number, "Size in MiB past which the file is rotated (default 100)."))
        .attr(Attribute::optional("requester", Type::String, "On whose behalf changes are made (a person, a portal request), recorded in every record. Else PAVED_REQUESTER."))
        .attr(Attribute::optional("url", Type::String, "An HTTP collector (a SIEM's JSON Lines input, e.g. Splunk HEC raw, Vector, Fluent Bit) that receives every record too: POSTed in batches as application/x-ndjson from a spool beside the file (FILE.spool), retried with backoff while it is down, delivered at least once. Else PAVED_AUDIT_URL."))
        .attr(Attribute::optional("headers", Type::map(Type::String), "HTTP headers sent to url, e.g. Authorization. Else PAVED_AUDIT_HEADERS (a JSON object).").sensitive());
    let lineage = Block::new("OpenLineage events (spec 2-0-2): every create, update and rollback of a model endpoint or GPU pool is a run with one START and one COMPLETE or FAIL, whose runId is the change's audit request_id. Without this block, PAVED_LINEAGE_URL / PAVED_LINEAGE_FILE turn it on.")
        .attr(Attribute::optional("url", Type::String, "The OpenLineage HTTP endpoint, e.g. http://marquez:5000/api/v1/lineage: one event per POST, from a spool (FILE.spool, else the temp dir), retried until delivered. Else PAVED_LINEAGE_URL."))
        .attr(Attribute::optional("file", Type::String, "A JSON Lines file that receives every event. Else PAVED_LINEAGE_FILE."))
        .attr(Attribute::optional("namespace", Type::String, "The OpenLineage job namespace (default \"paved\"). Else PAVED_LINEAGE_NAMESPACE."))
        .attr(Attribute::optional("headers", Type::map(Type::String), "HTTP headers sent to url, e.g. Authorization. Else PAVED_LINEAGE_HEADERS (a JSON object).").sensitive());
    Schema::new(
        0,
        Block::new("paved: self-service golden paths for AI/ML teams.")
            .attr(Attribute::optional("default_team", Type::String, "Team charged for resources that do not set `team`."))
            .attr(Attribute::optional("default_project", Type::String, "Project for resources that do not set `project`."))
            .attr(Attribute::optional("default_tags", Type::map(Type::String), "Tags applied to every cloud object the provider creates; resource `tags` override them."))
            .attr(Attribute::optional("price_overrides", Type::map(Type::Number), "Hourly USD prices that replace the built-in table, keyed by instance type (on-demand) or `TYPE:spot`."))
            .block("budgets", Nesting::List, budgets)
            .block("gpu_quota", Nesting::List, gpu_quota)
            .block("aws", Nesting::Single, aws)
            .block("gcp", Nesting::Single, gcp)
            .block("kubernetes", Nesting::Single, kubernetes)
            .block("audit", Nesting::Single, audit)
            .block("lineage", Nesting::Single, lineage),
    )
}

/// Checks that hold with unknown values too (validate runs before other resources exist).
pub fn validate(config: &Value) -> Diagnostics {
    let mut d = Diagnostics::new();
    let aws = config.get("aws");
    let ak = aws.get("access_key");
    let sk = aws.get("secret_key");
    if !ak.is_unknown() && !sk.is_unknown() && ak.is_null() != sk.is_null() {
        let path = if ak.is_null() {
            "access_key"
        } else {
            "secret_key"
        };
        d.attr_error(
            AttrPath::attr("aws").then(path),
            "Incomplete static credentials",
            "Set both access_key and secret_key, or neither to use the AWS credential chain.",
        );
    }
    for ep in ["ec2", "sts"] {
        if let Some(u) = aws.get("endpoints").get(ep).as_str() {
            if !(u.starts_with("http://") || u.starts_with("https://")) {
                d.attr_error(
                    AttrPath::attr("aws").then("endpoints").then(ep),
                    "Invalid endpoint URL",
                    format!("{u:?} is not a URL; write it as http://HOST:PORT or https://HOST."),
                );
            }
        }
    }
    if let Some(u) = config.get("gcp").get("endpoint").as_str() {
        if !(u.starts_with("http://") || u.starts_with("https://")) {
            d.attr_error(
                AttrPath::attr("gcp").then("endpoint"),
                "Invalid endpoint URL",
                format!("{u:?} is not a URL; write it as http://HOST:PORT or https://HOST."),
            );
        }
    }
    if let Some(c) = config.get("gcp").get("credentials").as_str() {
        if !c.trim().is_empty() {
            if let Err(m) = crate::cloud::gcp_auth::parse_value(c, "gcp.credentials") {
                d.attr_error(
                    AttrPath::attr("gcp").then("credentials"),
                    "Unusable GCP credentials",
                    m,
                );
            }
        }
    }
    if let Some(h) = config.get("kubernetes").get("host").as_str() {
        if !(h.starts_with("https://") || h.starts_with("http://")) {
            d.attr_error(
                AttrPath::attr("kubernetes").then("host"),
                "Invalid API server URL",
                format!("{h:?} is not a URL; write it as https://HOST:PORT."),
            );
        }
    }
    team_limits(config, "budgets", "monthly_usd", false, &mut d);
    team_limits(config, "gpu_quota", "max_gpus", true, &mut d);
    let audit = config.get("audit");
    if audit
        .get("file")
        .as_str()
        .is_some_and(|f| f.trim().is_empty())
    {
        d.attr_error(
            AttrPath::attr("audit").then("file"),
            "Empty audit file",
            "Set audit.file to the path of a JSON Lines file, e.g. \"audit/paved.jsonl\", or leave the audit block out.",
        );
    }
    if let Some(m) = audit.get("max_size_mb").as_f64() {
        if !(m >= 1.0 && m.is_finite()) {
            d.attr_error(
                AttrPath::attr("audit").then("max_size_mb"),
                "Invalid audit file size",
                format!("max_size_mb is the size in MiB past which the file is rotated: 1 or more, not {m}."),
            );
        }
    }
    for block in ["audit", "lineage"] {
        if let Some(u) = config.get(block).get("url").as_str() {
            if let Err(why) = crate::delivery::check_url(u) {
                d.attr_error(
                    AttrPath::attr(block).then("url"),
                    "Invalid URL",
                    format!("{u:?}: {why}."),
                );
            }
        }
    }
    if let Some(m) = config.get("price_overrides").entries() {
        for (k, v) in m {
            if v.as_f64().is_some_and(|p| p < 0.0) {
                d.attr_error(
                    AttrPath::attr("price_overrides").key(k),
                    "Negative price",
                    "Prices are hourly USD amounts and cannot be negative.",
                );
            }
        }
    }
    d
}

/// The per-team limit blocks (`budgets`, `gpu_quota`): one block per team, and a limit of 0 or
/// more (a whole number when `whole`).
fn team_limits(config: &Value, block: &str, key: &str, whole: bool, d: &mut Diagnostics) {
    let mut seen = std::collections::BTreeSet::new();
    for (i, b) in config.get(block).elements().iter().enumerate() {
        let path = || AttrPath::attr(block).index(i);
        if let Some(n) = b.get(key).as_f64() {
            if !(n >= 0.0 && n.is_finite()) || (whole && n.fract() != 0.0) {
                let what = if whole {
                    "a whole number, 0 or more"
                } else {
                    "0 or more"
                };
                d.attr_error(
                    path().then(key),
                    "Invalid limit",
                    format!("{key} must be {what}."),
                );
            }
        }
        if let Some(t) = b.get("team").as_str() {
            if !seen.insert(t.to_string()) {
                d.attr_error(
                    path().then("team"),
                    "Duplicate team",
                    format!("Team {t:?} has more than one {block} block; keep one."),
                );
            }
        }
    }
}

fn opt_str(v: &Value) -> Option<String> {
    v.as_str().filter(|s| !s.is_empty()).map(String::from)
}

/// Reads the `kubernetes` block (absent = defaults: kubeconfig lookup, then in-cluster).
pub fn parse_kube(config: &Value) -> KubeSettings {
    let k = config.get("kubernetes");
    KubeSettings {
        config_path: opt_str(k.get("config_path")),
        config_context: opt_str(k.get("config_context")),
        host: opt_str(k.get("host")),
        token: opt_str(k.get("token")),
        cluster_ca_certificate: opt_str(k.get("cluster_ca_certificate")),
        insecure: k.get("insecure").as_bool().unwrap_or(false),
    }
}

/// Reads the `gcp` block. Absent, GCP access still works from the environment
/// (GOOGLE_CLOUD_PROJECT, GOOGLE_REGION, application default credentials), as the AWS side
/// does without an `aws` block.
pub fn parse_gcp(config: &Value) -> GcpSettings {
    let g = config.get("gcp");
    GcpSettings {
        project: opt_str(g.get("project")),
        region: opt_str(g.get("region")),
        credentials: opt_str(g.get("credentials")),
        endpoint: opt_str(g.get("endpoint")),
    }
}

/// Reads the `audit` block, falling back to PAVED_AUDIT_FILE / PAVED_REQUESTER /
/// PAVED_AUDIT_URL / PAVED_AUDIT_HEADERS: None when no file is set.
pub fn parse_audit(
    config: &Value,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<crate::audit::Trail>, Diagnostic> {
    let a = config.get("audit");
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let url = opt_str(a.get("url")).or_else(|| env("PAVED_AUDIT_URL"));
    let Some(file) = opt_str(a.get("file")).or_else(|| env("PAVED_AUDIT_FILE")) else {
        return match url {
            Some(_) => Err(Diagnostic::error(
                "Audit URL without a file",
                "audit.url ships the records of the audit file, and its spool lives beside it: set audit.file (or PAVED_AUDIT_FILE) too.",
            )
            .at(AttrPath::attr("audit").then("url"))),
            None => Ok(None),
        };
    };
    let max = a
        .get("max_size_mb")
        .as_f64()
        .map_or(crate::audit::DEFAULT_MAX_BYTES, |m| {
            (m * 1024.0 * 1024.0) as u64
        });
    let mut trail = crate::audit::Trail::new(
        crate::audit::AuditLog::new(&file, max),
        opt_str(a.get("requester")).or_else(|| env("PAVED_REQUESTER")),
    );
    if let Some(url) = url {
        let headers = headers(a.get("headers"), env("PAVED_AUDIT_HEADERS"), "audit")?;
        let sink = crate::delivery::HttpSink::new(
            &url,
            crate::delivery::beside(std::path::Path::new(&file), ".spool"),
            headers,
            crate::delivery::Framing::JsonLines,
        )
        .map_err(|e| {
            Diagnostic::error("Invalid URL", e.to_string()).at(AttrPath::attr("audit").then("url"))
        })?;
        trail = trail.with_http(sink);
    }
    Ok(Some(trail))
}

/// A block's `headers` map, else the JSON object in the environment variable.
fn headers(
    map: &Value,
    env: Option<String>,
    block: &str,
) -> Result<Vec<(String, String)>, Diagnostic> {
    if let Some(m) = map.entries() {
        return Ok(m
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
            .collect());
    }
    match env {
        None => Ok(vec![]),
        Some(text) => crate::delivery::headers_from_json(&text).map_err(|e| {
            Diagnostic::error(
                "Invalid headers",
                format!(
                    "PAVED_{}_HEADERS: {e}. Write it as {{\"Authorization\": \"Bearer …\"}}.",
                    block.to_uppercase()
                ),
            )
        }),
    }
}

/// Reads the `lineage` block, falling back to PAVED_LINEAGE_URL / _FILE / _NAMESPACE /
/// _HEADERS: None when neither a URL nor a file is set.
pub fn parse_lineage(
    config: &Value,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<std::sync::Arc<crate::lineage::Emitter>>, Diagnostic> {
    let l = config.get("lineage");
    let env = |k: &str| env(k).filter(|v| !v.is_empty());
    let settings = crate::lineage::Settings {
        url: opt_str(l.get("url")).or_else(|| env("PAVED_LINEAGE_URL")),
        file: opt_str(l.get("file"))
            .or_else(|| env("PAVED_LINEAGE_FILE"))
            .map(std::path::PathBuf::from),
        namespace: opt_str(l.get("namespace")).or_else(|| env("PAVED_LINEAGE_NAMESPACE")),
    };
    let headers = headers(l.get("headers"), env("PAVED_LINEAGE_HEADERS"), "lineage")?;
    crate::lineage::Emitter::new(&settings, headers).map_err(|e| {
        Diagnostic::error("Invalid URL", e.to_string()).at(AttrPath::attr("lineage").then("url"))
    })
}

/// Reads the `budgets` and `gpu_quota` blocks.
pub fn parse_limits(config: &Value) -> crate::budget::Limits {
    let pairs = |block: &str, key: &str| -> Vec<(String, f64)> {
        config
            .get(block)
            .elements()
            .iter()
            .filter_map(|b| Some((b.get("team").as_str()?.to_string(), b.get(key).as_f64()?)))
            .collect()
    };
    crate::budget::Limits {
        monthly_usd: pairs("budgets", "monthly_usd").into_iter().collect(),
        max_gpus: pairs("gpu_quota", "max_gpus")
            .into_iter()
            .map(|(t, n)| (t, n as i64))
            .collect(),
    }
}

/// Reads a validated provider configuration.
pub fn parse(config: &Value) -> (Defaults, Option<AwsSettings>) {
    let defaults = Defaults {
        team: opt_str(config.get("default_team")),
        project: opt_str(config.get("default_project")),
        tags: config
            .get("default_tags")
            .as_string_map()
            .unwrap_or_default(),
        price_overrides: config
            .get("price_overrides")
            .entries()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_f64().map(|p| (k.clone(), p)))
                    .collect()
            })
            .unwrap_or_default(),
        limits: parse_limits(config),
    };
    let aws = config.get("aws");
    let settings = (!aws.is_null()).then(|| AwsSettings {
        region: opt_str(aws.get("region")),
        profile: opt_str(aws.get("profile")),
        access_key: opt_str(aws.get("access_key")),
        secret_key: opt_str(aws.get("secret_key")),
        ec2_endpoint: opt_str(aws.get("endpoints").get("ec2")),
        sts_endpoint: opt_str(aws.get("endpoints").get("sts")),
        skip_credentials_validation: aws
            .get("skip_credentials_validation")
            .as_bool()
            .unwrap_or(false),
    });
    (defaults, settings)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(aws: Value) -> Value {
        let mut c = schema().block.null_object();
        c.set_attr("aws", aws);
        c.set_attr("default_team", Value::string("ml"));
        c
    }

    #[test]
    fn half_static_credentials_are_rejected_with_a_path() {
        let mut aws = schema().block.nested("aws").unwrap().block.null_object();
        aws.set_attr("access_key", Value::string("AK"));
        let d = validate(&cfg(aws));
        assert!(d.has_errors());
        assert_eq!(d.0[0].path.as_ref().unwrap().to_string(), "aws.secret_key");
    }

    #[test]
    fn budget_blocks_are_checked_and_parsed_by_team() {
        let block = |team: &str, key: &str, n: f64| {
            Value::object([("team", Value::string(team)), (key, Value::float(n))])
        };
        let mut c = cfg(Value::Null);
        c.set_attr(
            "budgets",
            Value::List(vec![
                block("ml", "monthly_usd", 500.0),
                block("ml", "monthly_usd", -1.0),
            ]),
        );
        c.set_attr("gpu_quota", Value::List(vec![block("ml", "max_gpus", 2.5)]));
        let paths: Vec<String> = validate(&c)
            .iter()
            .map(|d| d.path.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(
            paths,
            [
                "budgets[1].monthly_usd",
                "budgets[1].team",
                "gpu_quota[0].max_gpus"
            ]
        );
        c.set_attr(
            "budgets",
            Value::List(vec![block("ml", "monthly_usd", 500.0)]),
        );
        c.set_attr("gpu_quota", Value::List(vec![block("ml", "max_gpus", 8.0)]));
        let l = parse_limits(&c);
        assert_eq!((l.monthly_usd["ml"], l.max_gpus["ml"]), (500.0, 8));
    }

    #[test]
    fn audit_url_needs_a_file_and_lineage_falls_back_to_the_environment() {
        let c = cfg(Value::Null);
        let only_url = |k: &str| (k == "PAVED_AUDIT_URL").then(|| "http://siem/raw".to_string());
        let e = parse_audit(&c, only_url).unwrap_err();
        assert_eq!(e.path.unwrap().to_string(), "audit.url");
        let both = |k: &str| match k {
            "PAVED_AUDIT_URL" => Some("http://siem/raw".to_string()),
            "PAVED_AUDIT_FILE" => Some("/tmp/a.jsonl".to_string()),
            "PAVED_AUDIT_HEADERS" => Some(r#"{"Authorization":"Splunk t"}"#.to_string()),
            _ => None,
        };
        let t = parse_audit(&c, both).unwrap().unwrap();
        assert_eq!(t.http.unwrap().url(), "http://siem/raw");
        let bad = |k: &str| match k {
            "PAVED_AUDIT_FILE" => Some("/tmp/a.jsonl".to_string()),
            "PAVED_AUDIT_URL" => Some("http://siem/raw".to_string()),
            "PAVED_AUDIT_HEADERS" => Some("[1]".to_string()),
            _ => None,
        };
        assert!(parse_audit(&c, bad)
            .unwrap_err()
            .detail
            .contains("PAVED_AUDIT_HEADERS"));
        assert!(parse_lineage(&c, |_| None).unwrap().is_none());
        let file = |k: &str| (k == "PAVED_LINEAGE_FILE").then(|| "/tmp/l.jsonl".to_string());
        assert!(parse_lineage(&c, file).unwrap().is_some());
        let mut c = c;
        c.set_attr("lineage", Value::object([("url", Value::string("nope"))]));
        let paths: Vec<String> = validate(&c)
            .iter()
            .map(|d| d.path.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(paths, ["lineage.url"]);
    }

    #[test]
    fn the_audit_block_is_checked_and_falls_back_to_the_environment() {
        let mut c = cfg(Value::Null);
        assert!(parse_audit(&c, |_| None).unwrap().is_none());
        let env = |k: &str| match k {
            "PAVED_AUDIT_FILE" => Some("/tmp/env.jsonl".to_string()),
            "PAVED_REQUESTER" => Some("ci-job-7".to_string()),
            _ => None,
        };
        let t = parse_audit(&c, env).unwrap().unwrap();
        assert_eq!(
            (t.log.path().to_str(), t.requester.as_deref()),
            (Some("/tmp/env.jsonl"), Some("ci-job-7"))
        );
        c.set_attr(
            "audit",
            Value::object([
                ("file", Value::string(" ")),
                ("max_size_mb", Value::float(0.5)),
                ("requester", Value::string("alice")),
            ]),
        );
        let paths: Vec<String> = validate(&c)
            .iter()
            .map(|d| d.path.as_ref().unwrap().to_string())
            .collect();
        assert_eq!(paths, ["audit.file", "audit.max_size_mb"]);
        c.set_attr(
            "audit",
            Value::object([
                ("file", Value::string("a.jsonl")),
                ("max_size_mb", Value::Null),
                ("requester", Value::string("alice")),
            ]),
        );
        assert!(validate(&c).is_empty());
        let t = parse_audit(&c, env).unwrap().unwrap();
        assert_eq!(
            (t.log.path().to_str(), t.requester.as_deref()),
            (Some("a.jsonl"), Some("alice"))
        );
    }

    #[test]
    fn parse_reads_endpoints_and_defaults() {
        let mut aws = schema().block.nested("aws").unwrap().block.null_object();
        aws.set_attr("region", Value::string("us-east-1"));
        aws.set_attr(
            "endpoints",
            Value::object([
                ("ec2", Value::string("http://127.0.0.1:4566")),
                ("sts", Value::Null),
            ]),
        );
        let (d, s) = parse(&cfg(aws));
        assert_eq!(d.team.as_deref(), Some("ml"));
        let s = s.unwrap();
        assert_eq!(s.ec2_endpoint.as_deref(), Some("http://127.0.0.1:4566"));
        assert_eq!(s.region.as_deref(), Some("us-east-1"));
        assert!(!s.skip_credentials_validation);
    }
}
