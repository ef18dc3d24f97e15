//! How a pool is realised on EC2: one launch template plus `desired` instances launched from it
//! with RunInstances.
//!
//! Why RunInstances and not an Auto Scaling group or EC2 Fleet `maintain`: the provider must own
//! the capacity fallback (instance type × zone, in the user's order) and report exactly what was
//! tried, and it must work against LocalStack, which emulates neither Auto Scaling nor
//! ModifyFleet. On real AWS this behaves like a fleet of type `instant` driven by Terraform: the
//! pool is resized on apply, nothing replaces instances lost between applies, and the next plan
//! shows them as drift (`nodes.desired`).

use super::bootstrap;
use super::spec::{self, desired_of, region_of, Observed, PoolSpec};
use crate::cloud::aws::{Ec2Api, Instance, LaunchTemplateSpec, RunRequest, POOL_TAG};
use crate::context::Context;
use crate::cty::Value;
use crate::error::{ApplyError, ResourceError};
use crate::resource::{Deletion, Readiness};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant as Clock};

const NODES_MIN_TAG: &str = "paved:nodes-min";
const NODES_MAX_TAG: &str = "paved:nodes-max";
/// Set on the launch template once a create has finished: a create that finds a template
/// without it adopts the half-made pool of an interrupted create; one that finds it refuses,
/// since the pool is whole and belongs to some configuration (import it instead).
const CREATED_TAG: &str = "paved:created";
/// On each instance: `on_demand` or `spot`, so a cost report prices an instance as its pool
/// does without reading the pool's state (instances launched before the tag existed are
/// priced from EC2's `InstanceLifecycle`).
pub const CAPACITY_TAG: &str = "paved:capacity-type";

/// Tags only the provider uses for bookkeeping; not part of `tags_all`.
const INTERNAL_TAGS: [&str; 5] = [
    POOL_TAG,
    NODES_MIN_TAG,
    NODES_MAX_TAG,
    CREATED_TAG,
    CAPACITY_TAG,
];

/// The pool ID for a pool named `name` in `region`: `gp-` + 12 hex digits of
/// sha256(region, name). Known at plan time, so a create repeated after a crash (the provider
/// killed mid-apply, before Terraform saved anything) finds and completes what the first one
/// made instead of leaking it. Pools created before IDs were derived keep their random ID,
/// which their state holds.
pub fn derived_pool_id(region: &str, name: &str) -> String {
    let mut h = Sha256::new();
    for part in ["paved_gpu_compute_pool", region, name] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("gp-{}", &hex::encode(h.finalize())[..12])
}

/// A deterministic idempotency token: the same pool, the same live instances and the same
/// launch option give the same token, so a retried RunInstances (SDK retry, or a re-run apply
/// after a lost response) returns the instances already launched instead of launching more.
pub fn client_token(
    pool_id: &str,
    live: &[String],
    instance_type: &str,
    place: &str,
    count: i64,
) -> String {
    let mut ids = live.to_vec();
    ids.sort();
    let mut h = Sha256::new();
    for part in [
        pool_id,
        &ids.join(","),
        instance_type,
        place,
        &count.to_string(),
    ] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    format!("paved-{}", &hex::encode(h.finalize())[..48])
}

fn tags_all(v: &Value) -> BTreeMap<String, String> {
    v.get("tags_all").as_string_map().unwrap_or_default()
}

fn lt_tags(v: &Value, pool_id: &str) -> BTreeMap<String, String> {
    let mut t = tags_all(v);
    t.insert(POOL_TAG.into(), pool_id.into());
    let n = v.get("nodes");
    t.insert(
        NODES_MIN_TAG.into(),
        n.get("min").as_i64().unwrap_or(0).to_string(),
    );
    t.insert(
        NODES_MAX_TAG.into(),
        n.get("max").as_i64().unwrap_or(0).to_string(),
    );
    t
}

fn instance_tags(v: &Value, pool_id: &str) -> BTreeMap<String, String> {
    let mut t = tags_all(v);
    t.insert(POOL_TAG.into(), pool_id.into());
    if let Some(c) = v.get("capacity_type").as_str() {
        t.insert(CAPACITY_TAG.into(), c.into());
    }
    t
}

struct Ops<'a> {
    ec2: Arc<dyn Ec2Api>,
    ctx: &'a Context,
    deadline: Clock,
    timeout: Duration,
}

/// What a failed launch leaves behind.
struct LaunchFailure {
    launched: Vec<Instance>,
    error: ResourceError,
}

impl<'a> Ops<'a> {
    async fn new(ctx: &'a Context, v: &Value, op: &str) -> Result<Ops<'a>, ResourceError> {
        let region = region_of(v)?;
        let ec2 = ctx.ec2_for_change(&region).await?;
        let timeout = spec::timeout(v, op);
        Ok(Ops {
            ec2,
            ctx,
            deadline: crate::resources::common::deadline(timeout),
            timeout,
        })
    }

    /// Launches `count` instances, trying each instance type (in preference order) in each
    /// placement (subnet or zone, in order) until all are running somewhere. Each attempt is
    /// all-or-nothing so a retry with the same token is exact.
    async fn launch(
        &self,
        pool_id: &str,
        lt_id: &str,
        spec: &PoolSpec,
        tags: &BTreeMap<String, String>,
        existing: &[Instance],
        count: i64,
    ) -> Result<Vec<Instance>, LaunchFailure> {
        let placements: Vec<(Option<String>, Option<String>)> = if !spec.subnet_ids.is_empty() {
            spec.subnet_ids
                .iter()
                .map(|s| (None, Some(s.clone())))
                .collect()
        } else if !spec.availability_zones.is_empty() {
            spec.availability_zones
                .iter()
                .map(|z| (Some(z.clone()), None))
                .collect()
        } else {
            vec![(None, None)]
        };
        let mut launched: Vec<Instance> = vec![];
        let mut tried = vec![];
        for itype in &spec.instance_types {
            for (az, subnet) in &placements {
                let remaining = count - launched.len() as i64;
                if remaining <= 0 {
                    return Ok(launched);
                }
                if self.ctx.cancel.is_cancelled() {
                    return Err(LaunchFailure {
                        launched,
                        error: ResourceError::Cancelled,
                    });
                }
                let place = subnet
                    .clone()
                    .or_else(|| az.clone())
                    .unwrap_or_else(|| "any zone".into());
                let live: Vec<String> = existing
                    .iter()
                    .chain(&launched)
                    .map(|i| i.id.clone())
                    .collect();
                let req = RunRequest {
                    launch_template_id: lt_id.to_string(),
                    instance_type: itype.clone(),
                    availability_zone: az.clone(),
                    subnet_id: subnet.clone(),
                    count: remaining as i32,
                    spot: spec.spot(),
                    client_token: client_token(pool_id, &live, itype, &place, remaining),
                    tags: tags.clone(),
                };
                tracing::info!(pool_id, instance_type = %itype, place = %place, count = remaining, "launching instances");
                match self.ec2.run_instances(&req).await {
                    Ok(new) => launched.extend(new),
                    Err(e) if e.is_capacity() => {
                        tracing::warn!(pool_id, instance_type = %itype, place = %place, code = %e.code, "no capacity, trying next option");
                        tried.push(format!("{remaining} × {itype} in {place}: {}", e.code));
                    }
                    Err(e) => {
                        return Err(LaunchFailure {
                            launched,
                            error: e.into(),
                        })
                    }
                }
            }
        }
        if (launched.len() as i64) < count {
            return Err(LaunchFailure {
                launched,
                error: ResourceError::Capacity {
                    wanted: count,
                    tried,
                    cleanup_failed: None,
                },
            });
        }
        Ok(launched)
    }

    /// Waits until every instance is terminated (or unknown to EC2).
    async fn wait_terminated(&self, ids: &[String]) -> Result<(), ResourceError> {
        let mut delay = Duration::from_millis(250);
        loop {
            let found = self.ec2.instances(ids).await?;
            if found.iter().all(|i| i.state == "terminated") {
                return Ok(());
            }
            self.pause(&mut delay, "instances to terminate").await?;
        }
    }

    async fn pause(&self, delay: &mut Duration, what: &str) -> Result<(), ResourceError> {
        if Clock::now()
            .checked_add(*delay)
            .is_none_or(|t| t > self.deadline)
        {
            return Err(ResourceError::Timeout {
                what: what.into(),
                after: self.timeout,
            });
        }
        self.ctx.cancel.sleep(*delay).await?;
        *delay = (*delay * 2).min(Duration::from_secs(5));
        Ok(())
    }

    /// Terminates instances launched by a failed attempt so no GPU is left running untracked.
    async fn roll_back(&self, launched: &[Instance]) -> Result<(), ResourceError> {
        let ids: Vec<String> = launched.iter().map(|i| i.id.clone()).collect();
        if ids.is_empty() {
            return Ok(());
        }
        tracing::warn!(
            count = ids.len(),
            "terminating instances launched by the failed attempt"
        );
        self.ec2.terminate_instances(&ids).await?;
        self.wait_terminated(&ids).await
    }
}

/// Makes a capacity error say that the cleanup of the failed attempt failed too, instead of
/// claiming its instances were terminated.
fn note_cleanup_failure(error: &mut ResourceError, cleanup: &ResourceError) {
    if let ResourceError::Capacity { cleanup_failed, .. } = error {
        *cleanup_failed = Some(cleanup.report());
    }
}

fn finish(v: &Value, instances: &[Instance], ctx: &Context) -> Value {
    let spec = PoolSpec::from_value(v);
    let o: Observed = spec::observe(
        instances,
        &spec.instance_types,
        spec.spot(),
        &ctx.defaults.price_overrides,
    );
    let mut out = v.clone();
    spec::apply_observed(&mut out, &o, &spec.instance_types);
    out
}

pub async fn create(ctx: &Context, planned: &Value) -> Result<Value, ApplyError> {
    let ops = Ops::new(ctx, planned, "create").await?;
    let spec = PoolSpec::from_value(planned);
    let desired = desired_of(planned)?;
    let region = region_of(planned)?;
    let team = planned
        .get("team")
        .as_str()
        .ok_or_else(|| spec::unknown_at_apply("team"))?;
    // The plan carries the derived ID (and the Crossplane front end records it before calling
    // create); derive it here too for a plan made while region or name was unknown.
    let pool_id = planned
        .get("id")
        .as_str()
        .map(str::to_string)
        .unwrap_or_else(|| derived_pool_id(&region, &spec.name));
    let user_data = bootstrap::render(&pool_id, &spec, team, planned.get("project").as_str());

    // Adopt what an interrupted create under the same ID left: its launch template and live
    // instances. With data, so the tags are current (DescribeTags).
    let existing = ops
        .ec2
        .find_launch_template(&pool_id, true)
        .await
        .map_err(ResourceError::from)?;
    let lt_id = match existing {
        Some(lt) if lt.tags.contains_key(CREATED_TAG) => {
            return Err(ResourceError::invalid(
                crate::diag::AttrPath::attr("name"),
                "GPU pool already exists",
                format!(
                    "A complete pool named {:?} already exists in {region} (ID {pool_id}, launch template {}), probably managed by another configuration. Pool IDs derive from region and name, so give this pool another name, or import the existing one with ID {region}/{pool_id}.",
                    spec.name, lt.id
                ),
            )
            .into());
        }
        Some(lt) => {
            tracing::warn!(pool_id, launch_template_id = %lt.id, "adopting the launch template of an interrupted create");
            if lt.user_data.as_deref() != Some(user_data.as_str()) {
                tracing::warn!(pool_id, "the adopted launch template was made from other arguments; instances already launched from it are kept");
            }
            lt.id
        }
        None => {
            let id = ops
                .ec2
                .create_launch_template(&LaunchTemplateSpec {
                    name: format!("paved-{pool_id}"),
                    image_id: spec.image_id.clone(),
                    user_data,
                    security_group_ids: spec.security_group_ids.clone(),
                    tags: lt_tags(planned, &pool_id),
                })
                .await
                .map_err(ResourceError::from)?;
            tracing::info!(pool_id, launch_template_id = %id, desired, "created launch template");
            id
        }
    };
    let mut state = planned.clone();
    state.set_attr("id", Value::string(&pool_id));
    state.set_attr("launch_template_id", Value::string(&lt_id));
    let adopted = match ops.ec2.pool_instances(&pool_id).await {
        Ok(live) => live,
        Err(e) => return Err(ApplyError::with_state(e.into(), finish(&state, &[], ctx))),
    };
    let mut adopted = adopted;
    if !adopted.is_empty() {
        tracing::warn!(
            pool_id,
            count = adopted.len(),
            "adopting the instances of an interrupted create"
        );
    }
    // More than desired (desired was lowered since the interrupted create): shrink from the
    // newest, as update does, so the state matches the plan.
    if adopted.len() as i64 > desired {
        adopted.sort_by(|a, b| b.launch_time.cmp(&a.launch_time).then(b.id.cmp(&a.id)));
        let excess: Vec<String> = adopted
            .iter()
            .take(adopted.len() - desired.max(0) as usize)
            .map(|i| i.id.clone())
            .collect();
        if let Err(e) = ops.ec2.terminate_instances(&excess).await {
            return Err(ApplyError::with_state(
                e.into(),
                finish(&state, &adopted, ctx),
            ));
        }
        adopted.retain(|i| !excess.contains(&i.id));
    }
    let tags = instance_tags(planned, &pool_id);
    let missing = desired - adopted.len() as i64;
    match ops
        .launch(&pool_id, &lt_id, &spec, &tags, &adopted, missing)
        .await
    {
        Ok(launched) => {
            let all: Vec<Instance> = adopted.iter().chain(&launched).cloned().collect();
            // Every instance is launched, so the pool is whole: a later create under this ID
            // must not adopt it. Whether they reach running is for `read` to report.
            let done = BTreeMap::from([(CREATED_TAG.to_string(), "true".to_string())]);
            if let Err(e) = ops
                .ec2
                .update_tags(std::slice::from_ref(&lt_id), &done, &[])
                .await
            {
                return Err(ApplyError::with_state(e.into(), finish(&state, &all, ctx)));
            }
            Ok(finish(&state, &all, ctx))
        }
        Err(fail) => {
            // Nothing half-made survives a failed create: roll back every instance of the pool
            // (adopted ones too, or deleting the template would orphan them) and the template.
            let all: Vec<Instance> = adopted.iter().chain(&fail.launched).cloned().collect();
            let cleanup = match ops.roll_back(&all).await {
                Ok(()) => ops
                    .ec2
                    .delete_launch_template(&lt_id)
                    .await
                    .map_err(ResourceError::from),
                Err(e) => Err(e),
            };
            match cleanup {
                Ok(()) => Err(ApplyError {
                    error: fail.error,
                    state: None,
                }),
                Err(e) => {
                    tracing::error!(pool_id, error = %e.report(), "cleanup after failed create failed; returning what exists");
                    let mut error = fail.error;
                    note_cleanup_failure(&mut error, &e);
                    Err(ApplyError::with_state(error, finish(&state, &all, ctx)))
                }
            }
        }
    }
}

pub async fn update(ctx: &Context, prior: &Value, planned: &Value) -> Result<Value, ApplyError> {
    let ops = Ops::new(ctx, planned, "update").await?;
    let pool_id = prior.get("id").as_str().unwrap_or_default().to_string();
    let lt_id = prior
        .get("launch_template_id")
        .as_str()
        .unwrap_or_default()
        .to_string();
    let spec = PoolSpec::from_value(planned);
    let desired = desired_of(planned)?;
    let mut state = planned.clone();
    let mut live = ops
        .ec2
        .pool_instances(&pool_id)
        .await
        .map_err(ResourceError::from)?;
    let current = |live: &[Instance]| Some(finish(&state_with(prior, planned), live, ctx));

    // The template carries the node bounds too; instances only the cost-attribution tags.
    let instance_ids: Vec<String> = live.iter().map(|i| i.id.clone()).collect();
    let lt_ids: Vec<String> = [lt_id.clone()]
        .into_iter()
        .filter(|i| !i.is_empty())
        .collect();
    for (ids, old, new) in [
        (
            &instance_ids,
            instance_tags(prior, &pool_id),
            instance_tags(planned, &pool_id),
        ),
        (
            &lt_ids,
            lt_tags(prior, &pool_id),
            lt_tags(planned, &pool_id),
        ),
    ] {
        if old == new {
            continue;
        }
        let removed: Vec<String> = old
            .keys()
            .filter(|k| !new.contains_key(*k))
            .cloned()
            .collect();
        if let Err(e) = ops.ec2.update_tags(ids, &new, &removed).await {
            return Err(ApplyError {
                error: e.into(),
                state: current(&live),
            });
        }
    }

    let have = live.len() as i64;
    if have < desired {
        let tags = instance_tags(planned, &pool_id);
        match ops
            .launch(&pool_id, &lt_id, &spec, &tags, &live, desired - have)
            .await
        {
            Ok(launched) => live.extend(launched),
            Err(fail) => {
                let mut error = fail.error;
                if let Err(e) = ops.roll_back(&fail.launched).await {
                    tracing::error!(pool_id, error = %e.report(), "terminating the instances of the failed attempt failed; keeping them in the state");
                    note_cleanup_failure(&mut error, &e);
                    live.extend(fail.launched);
                }
                return Err(ApplyError {
                    error,
                    state: current(&live),
                });
            }
        }
    } else if have > desired {
        // Shrink from the newest instances: the oldest have warm caches and long-running jobs.
        live.sort_by(|a, b| b.launch_time.cmp(&a.launch_time).then(b.id.cmp(&a.id)));
        let excess: Vec<String> = live
            .iter()
            .take((have - desired) as usize)
            .map(|i| i.id.clone())
            .collect();
        tracing::info!(
            pool_id,
            count = excess.len(),
            "terminating instances to shrink the pool"
        );
        if let Err(e) = ops.ec2.terminate_instances(&excess).await {
            let now = ops.ec2.pool_instances(&pool_id).await.unwrap_or(live);
            return Err(ApplyError {
                error: e.into(),
                state: current(&now),
            });
        }
        live.retain(|i| !excess.contains(&i.id));
    }
    state.set_attr("id", Value::string(&pool_id));
    state.set_attr("launch_template_id", Value::string(&lt_id));
    Ok(finish(&state, &live, ctx))
}

/// The planned value with the identity of the prior one: the best description of a pool whose
/// update stopped half way.
fn state_with(prior: &Value, planned: &Value) -> Value {
    let mut s = planned.clone();
    for k in ["id", "launch_template_id", "instance_type"] {
        s.set_attr(k, prior.get(k).clone());
    }
    s
}

/// Reads the pool: its launch template and live instances (two calls), plus one more only
/// when instances the state knows are not listed (just launched, or gone), to tell the two
/// apart for the readiness.
pub async fn read(
    ctx: &Context,
    state: &Value,
) -> Result<Option<crate::resource::Observed>, ResourceError> {
    let region = region_of(state)?;
    let ec2 = ctx.aws()?.ec2(&region)?;
    let pool_id = state.get("id").as_str().unwrap_or_default();
    let lt = ec2.find_launch_template(pool_id, false).await?;
    let live = ec2.pool_instances(pool_id).await?;
    if lt.is_none() && live.is_empty() {
        return Ok(None);
    }
    let known: Vec<String> = state
        .get("instance_ids")
        .as_string_vec()
        .unwrap_or_default();
    let unlisted: Vec<String> = known
        .into_iter()
        .filter(|id| !live.iter().any(|i| &i.id == id))
        .collect();
    let readiness = if !unlisted.is_empty() {
        let found = ec2.instances(&unlisted).await?;
        match found.iter().find(|i| !i.is_live()) {
            Some(dead) => Readiness::Failed {
                summary: "Instance stopped while starting".into(),
                detail: format!(
                    "instance {} of pool {pool_id} went to {} (spot reclaim, a bad image, or terminated out of band); the next apply launches a replacement",
                    dead.id, dead.state
                ),
            },
            None => Readiness::Progressing(format!(
                "EC2 does not list {} new instance(s) yet",
                unlisted.len()
            )),
        }
    } else {
        let running = live.iter().filter(|i| i.state == "running").count();
        let wanted = state.get("nodes").get("desired").as_i64().unwrap_or(0);
        if (live.len() as i64) < wanted {
            // Fewer than asked (an interrupted create, instances lost): the next change
            // launches the rest.
            Readiness::Progressing(format!("{} of {wanted} instances exist", live.len()))
        } else if running == live.len() {
            Readiness::Ready
        } else {
            Readiness::Progressing(format!("{running} of {} instances running", live.len()))
        }
    };
    let mut out = finish(state, &live, ctx);
    if let Some(lt) = lt {
        out.set_attr("launch_template_id", Value::string(lt.id));
    }
    Ok(Some(crate::resource::Observed {
        state: out,
        readiness,
    }))
}

/// Starts terminating the pool's instances; once EC2 reports every one terminated, deletes the
/// launch template and says `Gone`.
pub async fn delete(ctx: &Context, prior: &Value) -> Result<Deletion, ResourceError> {
    let region = region_of(prior)?;
    let ec2 = ctx.ec2_for_change(&region).await?;
    let pool_id = prior.get("id").as_str().unwrap_or_default();
    let live: Vec<String> = ec2
        .pool_instances(pool_id)
        .await?
        .into_iter()
        .map(|i| i.id)
        .collect();
    if !live.is_empty() {
        tracing::info!(pool_id, count = live.len(), "terminating pool instances");
        ec2.terminate_instances(&live).await?;
        return Ok(Deletion::InProgress(format!(
            "terminating {} instance(s)",
            live.len()
        )));
    }
    let known: Vec<String> = prior
        .get("instance_ids")
        .as_string_vec()
        .unwrap_or_default();
    if !known.is_empty() {
        let left: Vec<String> = ec2
            .instances(&known)
            .await?
            .into_iter()
            .filter(|i| i.state != "terminated")
            .map(|i| i.id)
            .collect();
        if !left.is_empty() {
            return Ok(Deletion::InProgress(format!(
                "waiting for {} to terminate",
                left.join(", ")
            )));
        }
    }
    if let Some(lt) = ec2.find_launch_template(pool_id, false).await? {
        ec2.delete_launch_template(&lt.id).await?;
    }
    Ok(Deletion::Gone)
}

/// Import by `POOL_ID` or `REGION/POOL_ID`: rebuilds the arguments from the launch template's
/// tags and bootstrap; `read` then adds the instances.
pub async fn import(ctx: &Context, id: &str, mut stub: Value) -> Result<Value, ResourceError> {
    let (region, pool_id) = match id.split_once('/') {
        Some((r, p)) => (r.to_string(), p.to_string()),
        None => (
            ctx.default_aws_region().ok_or_else(|| {
                ResourceError::invalid(
                    crate::diag::AttrPath::root(),
                    "Region unknown",
                    "Import with REGION/POOL_ID, or set aws.region in the provider block.",
                )
            })?,
            id.to_string(),
        ),
    };
    let ec2 = ctx.aws()?.ec2(&region)?;
    let lt = ec2
        .find_launch_template(&pool_id, true)
        .await?
        .ok_or_else(|| ResourceError::NotFound(format!("GPU pool {pool_id} in {region}")))?;
    let spec = lt
        .user_data
        .as_deref()
        .and_then(bootstrap::parse)
        .ok_or_else(|| {
            // The template exists: a missing or foreign bootstrap is not "gone".
            ResourceError::unreadable(
                format!("launch template {} of GPU pool {pool_id}", lt.id),
                "it carries no paved bootstrap data in its user data (was it created by paved?)",
                None,
            )
        })?;
    spec.write_into(&mut stub);
    let tags_all: BTreeMap<String, String> = lt
        .tags
        .iter()
        .filter(|(k, _)| !INTERNAL_TAGS.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let num = |k: &str| {
        lt.tags
            .get(k)
            .and_then(|v| v.parse::<i64>().ok())
            .map_or(Value::Null, Value::int)
    };
    stub.set_attr("id", Value::string(&pool_id));
    stub.set_attr("cloud", Value::string("aws"));
    stub.set_attr("region", Value::string(&region));
    super::attribution_from_tags(ctx, &mut stub, tags_all);
    stub.set_attr("launch_template_id", Value::string(&lt.id));
    stub.set_attr(
        "nodes",
        Value::object([
            ("min", num(NODES_MIN_TAG)),
            ("max", num(NODES_MAX_TAG)),
            ("desired", Value::Null),
        ]),
    );
    Ok(stub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_tokens_are_deterministic_and_bounded() {
        let a = client_token(
            "gp-1",
            &["i-2".into(), "i-1".into()],
            "g5.xlarge",
            "us-east-1a",
            2,
        );
        let b = client_token(
            "gp-1",
            &["i-1".into(), "i-2".into()],
            "g5.xlarge",
            "us-east-1a",
            2,
        );
        assert_eq!(a, b, "order of live instances must not matter");
        assert!(a.len() <= 64 && a.is_ascii());
        assert_ne!(
            a,
            client_token("gp-1", &["i-1".into()], "g5.xlarge", "us-east-1a", 2)
        );
        assert_ne!(
            a,
            client_token(
                "gp-1",
                &["i-1".into(), "i-2".into()],
                "g5.2xlarge",
                "us-east-1a",
                2
            )
        );
    }

    #[test]
    fn pool_ids_derive_from_region_and_name() {
        let id = derived_pool_id("us-east-1", "train-a10g");
        assert!(id.starts_with("gp-") && id.len() == 15, "{id}");
        assert!(id[3..].chars().all(|c| c.is_ascii_hexdigit()), "{id}");
        assert_eq!(id, derived_pool_id("us-east-1", "train-a10g"), "stable");
        assert_ne!(id, derived_pool_id("us-west-2", "train-a10g"));
        assert_ne!(id, derived_pool_id("us-east-1", "train-a10g2"));
        // No ambiguity between the parts.
        assert_ne!(derived_pool_id("a", "bc"), derived_pool_id("ab", "c"));
    }
}
