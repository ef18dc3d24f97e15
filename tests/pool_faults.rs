//! Capacity fallback and rollback of `paved_gpu_compute_pool`, against LocalStack's real EC2
//! emulation with faults injected in front of it (LocalStack cannot run out of capacity).
//!
//! Needs LocalStack on PAVED_TEST_AWS_ENDPOINT, so the tests are `#[ignore]`d: run them with
//! `cargo test -- --include-ignored` (acceptance-tests/run.sh does, after starting LocalStack).
//! Run without the variable they fail rather than pass silently.

use async_trait::async_trait;
use paved::cloud::aws::{
    AwsSettings, Ec2Api, Ec2Error, Instance, LaunchTemplate, LaunchTemplateSpec, RunRequest, SdkEc2,
};
use paved::context::{Context, Defaults, Ec2Factory};
use paved::converge;
use paved::cty::Value;
use paved::error::ResourceError;
use paved::resource::{ModifyPlan, PlanInputs, Resource};
use paved::resources::gpu_compute_pool::GpuComputePool;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

fn endpoint() -> String {
    std::env::var("PAVED_TEST_AWS_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .expect("PAVED_TEST_AWS_ENDPOINT must name LocalStack (e.g. http://127.0.0.1:4566) for this ignored test")
}

/// Wraps the real client; fails RunInstances with a capacity error for chosen instance types
/// and zones, and hides freshly launched instances from the first describes (EC2's eventual
/// consistency).
struct Faulty {
    real: SdkEc2,
    no_capacity: Vec<(String, Option<String>)>,
    hide_describes: Mutex<u32>,
    runs: Mutex<Vec<(String, Option<String>, i32)>>,
}

#[async_trait]
impl Ec2Api for Faulty {
    async fn caller_identity(&self) -> Result<String, Ec2Error> {
        self.real.caller_identity().await
    }
    async fn create_launch_template(&self, spec: &LaunchTemplateSpec) -> Result<String, Ec2Error> {
        self.real.create_launch_template(spec).await
    }
    async fn find_launch_template(
        &self,
        pool_id: &str,
        with_data: bool,
    ) -> Result<Option<LaunchTemplate>, Ec2Error> {
        self.real.find_launch_template(pool_id, with_data).await
    }
    async fn delete_launch_template(&self, id: &str) -> Result<(), Ec2Error> {
        self.real.delete_launch_template(id).await
    }
    async fn run_instances(&self, req: &RunRequest) -> Result<Vec<Instance>, Ec2Error> {
        self.runs.lock().unwrap().push((
            req.instance_type.clone(),
            req.availability_zone.clone(),
            req.count,
        ));
        let blocked = self.no_capacity.iter().any(|(t, z)| {
            (t == "*" || *t == req.instance_type) && (z.is_none() || *z == req.availability_zone)
        });
        if blocked {
            return Err(Ec2Error::new(
                "RunInstances",
                "InsufficientInstanceCapacity",
                "We currently do not have sufficient capacity in the Availability Zone you requested.",
            ));
        }
        self.real.run_instances(req).await
    }
    async fn pool_instances(&self, pool_id: &str) -> Result<Vec<Instance>, Ec2Error> {
        self.real.pool_instances(pool_id).await
    }
    async fn managed_instances(&self) -> Result<Vec<Instance>, Ec2Error> {
        self.real.managed_instances().await
    }
    async fn instances(&self, ids: &[String]) -> Result<Vec<Instance>, Ec2Error> {
        {
            let mut h = self.hide_describes.lock().unwrap();
            if *h > 0 {
                *h -= 1;
                return Ok(vec![]);
            }
        }
        self.real.instances(ids).await
    }
    async fn terminate_instances(&self, ids: &[String]) -> Result<(), Ec2Error> {
        self.real.terminate_instances(ids).await
    }
    async fn update_tags(
        &self,
        ids: &[String],
        set: &BTreeMap<String, String>,
        remove: &[String],
    ) -> Result<(), Ec2Error> {
        self.real.update_tags(ids, set, remove).await
    }
}

struct Factory(Arc<Faulty>);
impl Ec2Factory for Factory {
    fn ec2(&self, _region: &str) -> Result<Arc<dyn Ec2Api>, ResourceError> {
        Ok(self.0.clone())
    }
    fn default_region(&self) -> Option<String> {
        Some("us-east-1".into())
    }
}

fn settings(ep: &str) -> AwsSettings {
    AwsSettings {
        region: Some("us-east-1".into()),
        access_key: Some("test".into()),
        secret_key: Some("test".into()),
        ec2_endpoint: Some(ep.into()),
        sts_endpoint: Some(ep.into()),
        ..Default::default()
    }
}

fn faulty(ep: &str, no_capacity: &[(&str, Option<&str>)], hide: u32) -> Arc<Faulty> {
    Arc::new(Faulty {
        real: SdkEc2::new(&settings(ep), "us-east-1"),
        no_capacity: no_capacity
            .iter()
            .map(|(t, z)| (t.to_string(), z.map(String::from)))
            .collect(),
        hide_describes: Mutex::new(hide),
        runs: Mutex::new(vec![]),
    })
}

fn context(f: Arc<Faulty>) -> Context {
    Context::new(
        Defaults {
            team: Some("ml".into()),
            ..Default::default()
        },
        Some(Arc::new(Factory(f))),
    )
}

/// A planned value as Terraform would send it to apply, produced by the real plan path.
fn planned(ctx: &Context, name: &str, desired: i64) -> Value {
    let r = GpuComputePool;
    let schema = r.schema();
    let mut cfg = schema.block.null_object();
    cfg.set_attr("name", Value::string(name));
    cfg.set_attr("image_id", Value::string("ami-04681a1dbd79675a5"));
    cfg.set_attr(
        "availability_zones",
        Value::string_list(["us-east-1a", "us-east-1b"]),
    );
    cfg.set_attr(
        "accelerator",
        Value::object([
            ("type", Value::string("nvidia-a10g")),
            ("count", Value::int(1)),
        ]),
    );
    cfg.set_attr(
        "nodes",
        Value::object([
            ("min", Value::int(0)),
            ("max", Value::int(8)),
            ("desired", Value::int(desired)),
        ]),
    );
    let mut p = paved::plan::plan(&schema, None, &cfg, &cfg);
    let mut d = paved::diag::Diagnostics::new();
    r.modify_plan(
        ctx,
        &PlanInputs {
            prior: None,
            config: &cfg,
        },
        &mut p.planned,
        &mut p.requires_replace,
        &mut d,
    );
    assert!(!d.has_errors(), "{d:?}");
    p.planned
}

async fn live_by_name(ep: &str, name: &str) -> Vec<String> {
    // Looks past paved's own bookkeeping: every instance carrying the pool's name tag.
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_credential_types::Credentials::new(
            "test", "test", None, None, "t",
        ))
        .endpoint_url(ep)
        .load()
        .await;
    let c = aws_sdk_ec2::Client::new(&conf);
    let out = c
        .describe_instances()
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("tag:paved:pool")
                .values(name)
                .build(),
        )
        .filters(
            aws_sdk_ec2::types::Filter::builder()
                .name("instance-state-name")
                .values("pending")
                .values("running")
                .build(),
        )
        .send()
        .await
        .unwrap();
    out.reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(String::from))
        .collect()
}

fn unique(prefix: &str) -> String {
    format!("{prefix}-{:08x}", rand::random::<u32>())
}

#[tokio::test]
#[ignore = "needs PAVED_TEST_AWS_ENDPOINT (LocalStack)"]
async fn falls_back_to_next_type_and_zone_and_reports_choice() {
    let ep = endpoint();
    // g5.xlarge has no room anywhere; g5.2xlarge none in 1a: expect g5.2xlarge in 1b.
    let f = faulty(
        &ep,
        &[("g5.xlarge", None), ("g5.2xlarge", Some("us-east-1a"))],
        2,
    );
    let ctx = context(f.clone());
    let name = unique("fallback");
    let state = converge::create(&GpuComputePool, &ctx, &planned(&ctx, &name, 2))
        .await
        .expect("create falls back");
    assert_eq!(state.get("instance_type"), &Value::string("g5.2xlarge"));
    assert_eq!(state.get("instance_ids").elements().len(), 2);
    assert_eq!(state.get("gpus_total"), &Value::int(2));
    assert_eq!(state.get("hourly_cost_usd"), &Value::float(2.424));
    let runs = f.runs.lock().unwrap().clone();
    assert_eq!(
        runs,
        vec![
            ("g5.xlarge".into(), Some("us-east-1a".into()), 2),
            ("g5.xlarge".into(), Some("us-east-1b".into()), 2),
            ("g5.2xlarge".into(), Some("us-east-1a".into()), 2),
            ("g5.2xlarge".into(), Some("us-east-1b".into()), 2),
        ]
    );
    assert_eq!(live_by_name(&ep, &name).await.len(), 2);
    converge::delete(&GpuComputePool, &ctx, &state)
        .await
        .unwrap();
    assert!(live_by_name(&ep, &name).await.is_empty());
}

#[tokio::test]
#[ignore = "needs PAVED_TEST_AWS_ENDPOINT (LocalStack)"]
async fn no_capacity_anywhere_fails_with_what_was_tried_and_leaves_nothing() {
    let ep = endpoint();
    let f = faulty(&ep, &[("*", None)], 0);
    let ctx = context(f.clone());
    let name = unique("nocap");
    let err = converge::create(&GpuComputePool, &ctx, &planned(&ctx, &name, 2))
        .await
        .expect_err("must fail");
    assert!(
        err.state.is_none(),
        "nothing exists, so no state: {:?}",
        err.state
    );
    let ResourceError::Capacity { wanted, tried, .. } = &err.error else {
        panic!("{:?}", err.error)
    };
    assert_eq!(*wanted, 2);
    assert_eq!(tried.len(), 8, "4 types x 2 zones: {tried:?}");
    assert!(
        tried[0].contains("g5.xlarge in us-east-1a: InsufficientInstanceCapacity"),
        "{tried:?}"
    );
    let d = err.error.to_diagnostic();
    assert!(
        d.detail.contains("g5.8xlarge in us-east-1b"),
        "{}",
        d.detail
    );
    assert!(live_by_name(&ep, &name).await.is_empty());
}

#[tokio::test]
#[ignore = "needs PAVED_TEST_AWS_ENDPOINT (LocalStack)"]
async fn failed_resize_keeps_what_runs_and_returns_its_state() {
    let ep = endpoint();
    let ok = faulty(&ep, &[], 0);
    let ctx = context(ok);
    let name = unique("resize");
    let p1 = planned(&ctx, &name, 1);
    let state = converge::create(&GpuComputePool, &ctx, &p1).await.unwrap();
    // Now capacity is gone and the user asks for 3.
    let ctx2 = context(faulty(&ep, &[("*", None)], 0));
    let mut p3 = state.clone();
    p3.get_mut("nodes")
        .unwrap()
        .set_attr("desired", Value::int(3));
    for k in ["instance_ids", "instance_type", "hourly_cost_usd"] {
        p3.set_attr(k, Value::Unknown);
    }
    let err = converge::update(&GpuComputePool, &ctx2, &state, &p3)
        .await
        .expect_err("no capacity");
    let after = err.state.expect("partial failure returns state");
    assert_eq!(after.get("instance_ids"), state.get("instance_ids"));
    assert_eq!(after.get("nodes").get("desired"), &Value::int(1));
    assert!(after.is_wholly_known());
    assert_eq!(live_by_name(&ep, &name).await.len(), 1);
    converge::delete(&GpuComputePool, &ctx, &state)
        .await
        .unwrap();
    assert!(live_by_name(&ep, &name).await.is_empty());
}
