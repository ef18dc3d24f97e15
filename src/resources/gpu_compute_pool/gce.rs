//! How a pool is realised on Compute Engine: one instance template plus one regional managed
//! instance group (MIG) that runs `nodes.desired` instances from it.
//!
//! Why a MIG and not instances paved launches itself (as on EC2): Compute's groups do the
//! capacity fallback themselves — `distributionPolicy.targetShape = BALANCED` moves an instance
//! that finds no room to another of the pool's zones, `instanceFlexibilityPolicy` to the next
//! machine type — and they resize in place and roll a new template out without paved driving
//! each instance. paved keeps what the group cannot: the decision that *every* option failed
//! (read from the group's own errors, so the apply fails with what was tried instead of waiting
//! forever), the cleanup after a failed create, and idempotency across crashes.
//!
//! Names are deterministic so that a create repeated after a crash finds what the first one
//! made: the group is `paved-<pool id>`, a template `paved-<pool id>-<hash of its content>`
//! (templates are immutable, so a changed template is a new one). Every write carries a
//! deterministic `requestId`; see [`fresh_request`] for why that alone is not enough.

use super::bootstrap;
use super::catalog;
use super::spec::{self, desired_of, region_of, PoolSpec};
use crate::cloud::gce::{
    self, GceApi, GceError, Group, GroupSpec, InstanceTemplate, ManagedInstance, Operation,
    TemplateSpec, POOL_LABEL,
};
use crate::context::Context;
use crate::cty::Value;
use crate::diag::AttrPath;
use crate::error::{ApplyError, ResourceError};
use crate::resource::{Deletion, Readiness, Recovery};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

/// How long a verb waits for Compute to accept one write (the operation to be DONE). Template
/// and group inserts are accepted in seconds; what takes long (instances) is read's business.
const ACCEPT: Duration = Duration::from_secs(60);

/// Template metadata keys paved writes besides the startup script.
const META_TAGS: &str = "paved-tags";
const META_STARTUP: &str = "startup-script";
/// The group's description carries the node bounds (the one mutable text field of a group),
/// so import recovers them.
const DESCRIPTION_PREFIX: &str = "paved GPU pool; nodes ";

/// The pool ID of a GCP pool: derived from project, region and name, so it is known at plan
/// time and a create repeated after a crash converges on the same group.
pub fn pool_id(project: &str, region: &str, name: &str) -> String {
    super::aws::derived_pool_id(&format!("gcp/{project}/{region}"), name)
}

pub fn group_name(pool_id: &str) -> String {
    format!("paved-{pool_id}")
}

fn template_prefix(pool_id: &str) -> String {
    format!("paved-{pool_id}-")
}

pub fn group_link(project: &str, region: &str, pool_id: &str) -> String {
    format!(
        "projects/{project}/regions/{region}/instanceGroupManagers/{}",
        group_name(pool_id)
    )
}

/// A GCP label key or value from a tag: GCP allows only lowercase letters, digits, `_` and `-`
/// (keys start with a letter), at most 63 characters. `paved:team` becomes `paved-team`.
pub fn label_key(k: &str) -> String {
    let mut s: String = k
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            _ => '-',
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_lowercase()) {
        s.insert_str(0, "t-");
    }
    s.truncate(63);
    s
}

pub fn label_value(v: &str) -> String {
    let mut s: String = v
        .chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '_' | '-') => c,
            _ => '_',
        })
        .collect();
    s.truncate(63);
    s
}

fn project_of(v: &Value) -> Result<String, ResourceError> {
    v.get("gcp_project")
        .as_str()
        .map(String::from)
        .ok_or_else(|| spec::unknown_at_apply("gcp_project"))
}

fn id_of(v: &Value) -> Result<String, ResourceError> {
    if let Some(id) = v.get("id").as_str() {
        return Ok(id.to_string());
    }
    Ok(pool_id(
        &project_of(v)?,
        &region_of(v)?,
        v.get("name")
            .as_str()
            .ok_or_else(|| spec::unknown_at_apply("name"))?,
    ))
}

fn client(ctx: &Context, v: &Value) -> Result<Arc<dyn GceApi>, ResourceError> {
    ctx.gce(&project_of(v)?, &region_of(v)?)
}

/// The template a pool with these (known) arguments runs, named after its content. None while
/// an input is unknown (plan time).
pub fn template_spec(pool_id: &str, v: &Value) -> Option<TemplateSpec> {
    let spec = PoolSpec::from_value(v);
    let team = v.get("team").as_str()?;
    let project = v.get("gcp_project").as_str()?;
    let tags_all = v.get("tags_all").as_string_map()?;
    let machine = spec.instance_types.first()?.clone();
    let accel = spec.accelerator.as_ref().map(|a| a.0.as_str());
    let guest = catalog::gce_machine_type(&machine, accel)
        .and_then(|t| t.guest.map(|g| (g.to_string(), t.gpus as u32)));
    let mut labels: BTreeMap<String, String> = tags_all
        .iter()
        .map(|(k, v)| (label_key(k), label_value(v)))
        .collect();
    labels.insert(POOL_LABEL.into(), pool_id.into());
    let metadata = BTreeMap::from([
        (
            META_STARTUP.to_string(),
            bootstrap::render(pool_id, &spec, team, v.get("project").as_str()),
        ),
        (
            META_TAGS.to_string(),
            serde_json::to_string(&tags_all).unwrap_or_default(),
        ),
    ]);
    let mut t = TemplateSpec {
        name: String::new(),
        description: format!("paved GPU pool {} ({pool_id})", spec.name),
        machine_type: machine,
        accelerator: guest,
        spot: spec.spot(),
        image: spec.image_id.clone(),
        boot_disk_gb: 0,
        labels,
        metadata,
        network: None,
    };
    let body = gce::template_body(project, &t);
    let digest = Sha256::digest(serde_json::to_vec(&body).unwrap_or_default());
    t.name = format!("{}{}", template_prefix(pool_id), &hex::encode(digest)[..10]);
    Some(t)
}

fn description(v: &Value) -> String {
    let n = v.get("nodes");
    format!(
        "{DESCRIPTION_PREFIX}{}..{}",
        n.get("min").as_i64().unwrap_or(0),
        n.get("max").as_i64().unwrap_or(0)
    )
}

fn parse_description(d: &str) -> Option<(i64, i64)> {
    let (a, b) = d.strip_prefix(DESCRIPTION_PREFIX)?.split_once("..")?;
    Some((a.parse().ok()?, b.parse().ok()?))
}

fn group_spec(pool_id: &str, v: &Value, template: &str, size: i64) -> GroupSpec {
    let spec = PoolSpec::from_value(v);
    // Instance names are BASE-xxxx: the pool name, cut to leave room (GCP allows 58 here).
    let mut base: String = spec.name.chars().take(50).collect();
    while base.ends_with('-') {
        base.pop();
    }
    GroupSpec {
        name: group_name(pool_id),
        base_instance_name: base,
        template: template.to_string(),
        target_size: size.max(0) as u32,
        zones: spec.availability_zones.clone(),
        target_shape: "BALANCED".into(),
        machine_types: if spec.instance_types.len() > 1 {
            spec.instance_types.clone()
        } else {
            vec![]
        },
        description: description(v),
    }
}

fn accepted(op: Operation) -> Result<Operation, ResourceError> {
    op.result().map_err(ResourceError::from)?;
    Ok(op)
}

/// Runs one write whose effect `exists` can check, with a deterministic `requestId`.
///
/// Google ignores a repeated `requestId` and answers with the first request's operation, for
/// some time after it finished. That makes a write retried after a crash or a lost answer
/// apply once — and it makes the *same* intent repeated later (a pool destroyed and created
/// again under the same name) return the old, long-DONE operation while nothing is created.
/// So after the operation is DONE the effect is checked; when it is missing the ID was a stale
/// one and the write is sent again under an ID derived from the stale operation's name:
/// deterministic (a crash here repeats the same chain), and new for each lifetime.
async fn fresh_request<W, E>(
    api: &dyn GceApi,
    pool_id: &str,
    what: &'static str,
    content: &[&str],
    write: W,
    exists: E,
) -> Result<(), ResourceError>
where
    W: for<'a> Fn(&'a str) -> futures::future::BoxFuture<'a, Result<Operation, GceError>>,
    E: Fn() -> futures::future::BoxFuture<'static, Result<bool, GceError>>,
{
    let mut salt = String::new();
    for _ in 0..8 {
        let mut parts: Vec<&str> = content.to_vec();
        if !salt.is_empty() {
            parts.push(&salt);
        }
        let rid = gce::request_id(pool_id, what, &parts);
        let op = match write(&rid).await {
            Ok(op) => op,
            Err(e) if e.kind == gce::GceErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(e.into()),
        };
        let done = api.wait_operation(&op, ACCEPT).await?;
        match done.result() {
            Ok(()) => {}
            Err(e) if e.kind == gce::GceErrorKind::AlreadyExists => return Ok(()),
            Err(e) if !done.is_done() => {
                return Err(ResourceError::Timeout {
                    what: format!("Compute Engine to accept {what} ({e})"),
                    after: ACCEPT,
                })
            }
            Err(e) => return Err(e.into()),
        }
        if exists().await? {
            return Ok(());
        }
        tracing::warn!(
            pool_id,
            what,
            operation = %done.name,
            "the requestId named an earlier, finished request; sending the write again"
        );
        salt = done.name.clone();
    }
    Err(ResourceError::failed(
        "Compute Engine did not apply the request",
        format!("{what} for pool {pool_id} reported DONE eight times without effect"),
    ))
}

/// Makes sure the template exists (adopting one of the same name: same content).
async fn ensure_template(
    api: &Arc<dyn GceApi>,
    pool_id: &str,
    t: &TemplateSpec,
) -> Result<InstanceTemplate, ResourceError> {
    if let Some(found) = api.get_template(&t.name).await? {
        return Ok(found);
    }
    let a = api.clone();
    let name = t.name.clone();
    fresh_request(
        api.as_ref(),
        pool_id,
        "insertTemplate",
        &[&t.name],
        |rid| {
            let a = api.clone();
            let t = t.clone();
            let rid = rid.to_string();
            Box::pin(async move { a.insert_template(&t, &rid).await })
        },
        move || {
            let a = a.clone();
            let name = name.clone();
            Box::pin(async move { Ok(a.get_template(&name).await?.is_some()) })
        },
    )
    .await?;
    api.get_template(&t.name).await?.ok_or_else(|| {
        ResourceError::failed(
            "Instance template missing",
            format!("{} was created but cannot be found", t.name),
        )
    })
}

/// The state a verb returns: the plan with what the verb knows filled in (instances are
/// `read`'s to report).
fn started(v: &Value, pool_id: &str, template: &str, ctx: &Context) -> Value {
    let mut s = v.clone();
    s.set_attr("id", Value::string(pool_id));
    s.set_attr("launch_template_id", Value::Null);
    s.set_attr("instance_template", Value::string(template));
    if let (Ok(p), Ok(r)) = (project_of(v), region_of(v)) {
        s.set_attr("instance_group", Value::string(group_link(&p, &r, pool_id)));
    }
    let spec = PoolSpec::from_value(v);
    let desired = v.get("nodes").get("desired").as_i64().unwrap_or(0);
    let first = spec.instance_types.first().cloned().unwrap_or_default();
    let accel = spec.accelerator.as_ref().map(|a| a.0.as_str());
    if s.get("instance_ids").is_unknown() {
        s.set_attr("instance_ids", Value::string_list(Vec::<String>::new()));
    }
    if s.get("instance_type").is_unknown() {
        s.set_attr("instance_type", Value::string(&first));
    }
    if s.get("gpus_total").is_unknown() {
        let per = catalog::gpus_per_node("gcp", &first, accel).unwrap_or(0);
        s.set_attr("gpus_total", Value::int(per * desired));
    }
    if s.get("hourly_cost_usd").is_unknown() {
        let p =
            catalog::gce_hourly_price(&first, accel, spec.spot(), &ctx.defaults.price_overrides)
                .unwrap_or(0.0);
        s.set_attr(
            "hourly_cost_usd",
            Value::float(spec::round_cents(p * desired as f64)),
        );
    }
    s
}

pub async fn create(ctx: &Context, planned: &Value) -> Result<Value, ApplyError> {
    let api = client(ctx, planned)?;
    let pool_id = id_of(planned)?;
    let desired = desired_of(planned)?;
    let t = template_spec(&pool_id, planned).ok_or_else(|| spec::unknown_at_apply("tags_all"))?;
    let gname = group_name(&pool_id);
    let template = ensure_template(&api, &pool_id, &t).await?;
    let gspec = group_spec(&pool_id, planned, &template.name, desired);
    let content = [gname.as_str(), template.id.as_str()];
    if api
        .get_group(&gname)
        .await
        .map_err(ResourceError::from)?
        .is_some()
    {
        // A group under this pool's name: ours from an interrupted create when Google
        // recognises the insert's requestId (same pool, same template instance), else a whole
        // pool some other configuration owns.
        let rid = gce::request_id(&pool_id, "insertGroup", &content);
        match api.insert_group(&gspec, &rid).await {
            Ok(op) if op.error.is_none() && op.target_link.ends_with(&gname) => {
                tracing::warn!(pool_id, group = %gname, "adopting the group of an interrupted create");
            }
            Ok(_) | Err(_) => {
                return Err(ResourceError::invalid(
                    AttrPath::attr("name"),
                    "GPU pool already exists",
                    format!(
                        "A pool named {:?} already exists in {}/{} (group {gname}), probably managed by another configuration. Pool IDs derive from project, region and name, so give this pool another name, or import the existing one with ID {}/{}/{}.",
                        planned.get("name").as_str().unwrap_or_default(),
                        api.project(),
                        api.region(),
                        api.project(),
                        api.region(),
                        planned.get("name").as_str().unwrap_or_default()
                    ),
                )
                .into())
            }
        }
    } else {
        let a = api.clone();
        let g2 = gname.clone();
        let inserted = fresh_request(
            api.as_ref(),
            &pool_id,
            "insertGroup",
            &content,
            |rid| {
                let a = api.clone();
                let g = gspec.clone();
                let rid = rid.to_string();
                Box::pin(async move { a.insert_group(&g, &rid).await })
            },
            move || {
                let a = a.clone();
                let g = g2.clone();
                Box::pin(async move { Ok(a.get_group(&g).await?.is_some()) })
            },
        )
        .await;
        if let Err(e) = inserted {
            // Nothing runs yet: take the template away too, or say it is left.
            let rid = gce::request_id(&pool_id, "deleteTemplate", &[&template.name, &template.id]);
            return match api.delete_template(&template.name, &rid).await {
                Ok(_) => Err(ApplyError {
                    error: e,
                    state: None,
                }),
                Err(d) => {
                    tracing::error!(pool_id, error = %d, "deleting the template after a failed create failed; returning it in the state");
                    Err(ApplyError::with_state(
                        e,
                        started(planned, &pool_id, &template.name, ctx),
                    ))
                }
            };
        }
        tracing::info!(pool_id, group = %gname, template = %template.name, desired, "created instance template and group");
    }
    Ok(started(planned, &pool_id, &template.name, ctx))
}

pub async fn update(ctx: &Context, prior: &Value, planned: &Value) -> Result<Value, ApplyError> {
    let api = client(ctx, planned)?;
    let pool_id = prior.get("id").as_str().unwrap_or_default().to_string();
    let gname = group_name(&pool_id);
    let desired = desired_of(planned)?;
    let Some(group) = api.get_group(&gname).await.map_err(ResourceError::from)? else {
        // Deleted out of band (its template is left): make it again, as a create would.
        tracing::warn!(pool_id, group = %gname, "the group is missing; creating it again");
        let mut again = planned.clone();
        again.set_attr("id", Value::string(&pool_id));
        return create(ctx, &again).await;
    };
    let t = template_spec(&pool_id, planned).ok_or_else(|| spec::unknown_at_apply("tags_all"))?;
    let fail = |e: ResourceError, template: &str| {
        ApplyError::with_state(
            e,
            started(&with_prior_ids(prior, planned), &pool_id, template, ctx),
        )
    };
    let mut template = group.template.clone();
    if group.template != t.name {
        let new = ensure_template(&api, &pool_id, &t)
            .await
            .map_err(|e| fail(e, &template))?;
        let rid = gce::request_id(
            &pool_id,
            "setTemplate",
            &[&gname, &group.fingerprint, &new.name],
        );
        let op = api
            .set_group_template(&gname, &new.name, &rid)
            .await
            .map_err(|e| fail(e.into(), &template))?;
        let op = api
            .wait_operation(&op, ACCEPT)
            .await
            .map_err(|e| fail(e.into(), &template))?;
        accepted(op).map_err(|e| fail(e, &template))?;
        tracing::info!(pool_id, from = %group.template, to = %new.name, "rolling out a new instance template");
        template = new.name;
        sweep_templates(&api, &pool_id, &template).await;
    }
    let want = description(planned);
    if group.description != want {
        let rid = gce::request_id(
            &pool_id,
            "setDescription",
            &[&gname, &group.fingerprint, &want],
        );
        let op = api
            .set_group_description(&gname, &want, &rid)
            .await
            .map_err(|e| fail(e.into(), &template))?;
        let op = api
            .wait_operation(&op, ACCEPT)
            .await
            .map_err(|e| fail(e.into(), &template))?;
        accepted(op).map_err(|e| fail(e, &template))?;
    }
    if i64::from(group.target_size) != desired {
        let size = desired.to_string();
        let rid = gce::request_id(&pool_id, "resize", &[&gname, &group.fingerprint, &size]);
        tracing::info!(
            pool_id,
            from = group.target_size,
            to = desired,
            "resizing the group"
        );
        let op = api
            .resize_group(&gname, desired.max(0) as u32, &rid)
            .await
            .map_err(|e| fail(e.into(), &template))?;
        // Resize is DONE as soon as the new size is recorded; the instances are read's.
        let op = api
            .wait_operation(&op, ACCEPT)
            .await
            .map_err(|e| fail(e.into(), &template))?;
        accepted(op).map_err(|e| fail(e, &template))?;
    }
    Ok(started(
        &with_prior_ids(prior, planned),
        &pool_id,
        &template,
        ctx,
    ))
}

/// The planned value with the prior instance list where the plan left it unknown: the
/// instances that run until the change reaches them.
fn with_prior_ids(prior: &Value, planned: &Value) -> Value {
    let mut s = planned.clone();
    if s.get("instance_ids").is_unknown() && !prior.get("instance_ids").is_null() {
        s.set_attr("instance_ids", prior.get("instance_ids").clone());
    }
    s
}

/// Deletes the pool's templates other than `keep` that no group uses any more (best effort:
/// a template still in use stays, and `delete` removes it with the pool).
async fn sweep_templates(api: &Arc<dyn GceApi>, pool_id: &str, keep: &str) {
    let Ok(all) = api.list_templates(&template_prefix(pool_id)).await else {
        return;
    };
    for t in all.into_iter().filter(|t| t.name != keep) {
        let rid = gce::request_id(pool_id, "deleteTemplate", &[&t.name, &t.id]);
        match api.delete_template(&t.name, &rid).await {
            Ok(_) => tracing::info!(pool_id, template = %t.name, "deleted an unused template"),
            Err(e) => {
                tracing::info!(pool_id, template = %t.name, error = %e, "template kept for now")
            }
        }
    }
}

/// A member that exists for the pool's count: everything but instances being deleted and
/// instances that vanished or stopped outside the group's control (those show as drift).
fn counts(m: &ManagedInstance) -> bool {
    if m.current_action == "DELETING" {
        return false;
    }
    !(m.current_action == "NONE"
        && m.status
            .as_deref()
            .is_none_or(|s| matches!(s, "TERMINATED" | "STOPPED" | "STOPPING")))
}

fn is_live(m: &ManagedInstance) -> bool {
    m.current_action != "DELETING"
        && m.status
            .as_deref()
            .is_some_and(|s| !matches!(s, "TERMINATED" | "STOPPED" | "STOPPING"))
}

/// A member still waiting for its instance whose last attempt found no capacity.
fn starved(m: &ManagedInstance) -> bool {
    matches!(m.current_action.as_str(), "CREATING" | "RECREATING")
        && m.status.is_none()
        && !m.last_errors.is_empty()
        && m.last_errors.iter().all(GceError::is_capacity)
}

/// Reads the pool: the group and its managed instances (two calls), plus the group's errors
/// only while an instance waits for capacity, to tell "still trying" from "every zone and
/// machine type refused".
pub async fn read(
    ctx: &Context,
    state: &Value,
) -> Result<Option<crate::resource::Observed>, ResourceError> {
    let api = client(ctx, state)?;
    let pool_id = state.get("id").as_str().unwrap_or_default().to_string();
    let gname = group_name(&pool_id);
    let Some(group) = api.get_group(&gname).await? else {
        // No group: gone when no template of the pool is left either. Templates alone (the
        // group deleted out of band, or a delete half done) still count, so a delete comes
        // back for them and an apply recreates the group.
        if api
            .list_templates(&template_prefix(&pool_id))
            .await?
            .is_empty()
        {
            return Ok(None);
        }
        let mut out = state.clone();
        out.set_attr("instance_ids", Value::string_list(Vec::<String>::new()));
        out.set_attr("gpus_total", Value::int(0));
        out.set_attr("hourly_cost_usd", Value::float(0.0));
        if let Some(n) = out.get_mut("nodes") {
            n.set_attr("desired", Value::int(0));
        }
        return Ok(Some(crate::resource::Observed {
            state: out,
            readiness: Readiness::Progressing(format!(
                "instance group {gname} does not exist (only its template); the next apply creates it"
            )),
        }));
    };
    let members = api.list_managed_instances(&gname).await?;
    let readiness = readiness(api.as_ref(), &group, &members).await?;
    let mut out = observed_state(ctx, state, &group, &members);
    if let Some((min, max)) = parse_description(&group.description) {
        if let Some(n) = out.get_mut("nodes") {
            n.set_attr("min", Value::int(min));
            n.set_attr("max", Value::int(max));
        }
    }
    Ok(Some(crate::resource::Observed {
        state: out,
        readiness,
    }))
}

async fn readiness(
    api: &dyn GceApi,
    group: &Group,
    members: &[ManagedInstance],
) -> Result<Readiness, ResourceError> {
    let starving: Vec<&ManagedInstance> = members.iter().filter(|m| starved(m)).collect();
    if !starving.is_empty() {
        let errors = api.list_group_errors(&group.name, 200).await?;
        let names: BTreeSet<&str> = starving.iter().map(|m| m.name.as_str()).collect();
        let mine: Vec<_> = errors
            .iter()
            .filter(|e| e.error.is_capacity())
            .filter(|e| e.instance.as_deref().is_some_and(|i| names.contains(i)))
            .collect();
        let tried: BTreeSet<&str> = mine.iter().filter_map(|e| e.zone.as_deref()).collect();
        let zones: BTreeSet<&str> = group.zones.iter().map(String::as_str).collect();
        if !zones.is_empty() && zones.is_subset(&tried) {
            let mut lines: Vec<String> = mine
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}: {}",
                        e.zone.as_deref().unwrap_or("?"),
                        e.error.code,
                        e.error.message
                    )
                })
                .collect();
            lines.sort();
            lines.dedup();
            let types = if group.machine_types.is_empty() {
                "the template's machine type".to_string()
            } else {
                group.machine_types.join(", ")
            };
            return Ok(Readiness::Failed {
                summary: "No GPU capacity".into(),
                detail: format!(
                    "{} of {} instance(s) found no capacity: the group tried {types} in every zone of the pool ({}). Compute Engine said:\n- {}\nTry other zones (availability_zones), more machine types (instance_types), spot capacity, or a reservation.",
                    starving.len(),
                    group.target_size,
                    zones.iter().copied().collect::<Vec<_>>().join(", "),
                    lines.join("\n- ")
                ),
            });
        }
        return Ok(Readiness::Progressing(format!(
            "{} instance(s) waiting for capacity (tried so far: {})",
            starving.len(),
            tried.iter().copied().collect::<Vec<_>>().join(", ")
        )));
    }
    let running = members.iter().filter(|m| m.is_running()).count();
    let all_current = members.iter().all(|m| m.template == group.template);
    Ok(
        if running == members.len()
            && members.len() == group.target_size as usize
            && all_current
            && group.version_target_reached
        {
            Readiness::Ready
        } else if !all_current || !group.version_target_reached {
            Readiness::Progressing(format!(
                "rolling out template {}: {running} of {} instances running",
                group.template, group.target_size
            ))
        } else {
            Readiness::Progressing(format!(
                "{running} of {} instances running",
                group.target_size
            ))
        },
    )
}

fn observed_state(
    ctx: &Context,
    state: &Value,
    group: &Group,
    members: &[ManagedInstance],
) -> Value {
    let spec = PoolSpec::from_value(state);
    let accel = spec.accelerator.as_ref().map(|a| a.0.clone());
    let default_type = spec.instance_types.first().cloned().unwrap_or_default();
    let live: Vec<&ManagedInstance> = members.iter().filter(|m| is_live(m)).collect();
    let type_of = |m: &ManagedInstance| m.machine_type.clone().unwrap_or(default_type.clone());
    let mut ids: Vec<String> = live.iter().map(|m| m.name.clone()).collect();
    ids.sort();
    let mut by_type: BTreeMap<String, usize> = BTreeMap::new();
    for m in &live {
        *by_type.entry(type_of(m)).or_default() += 1;
    }
    let rank = |t: &str| {
        spec.instance_types
            .iter()
            .position(|p| p == t)
            .unwrap_or(usize::MAX)
    };
    let majority = by_type
        .iter()
        .max_by(|a, b| a.1.cmp(b.1).then(rank(b.0).cmp(&rank(a.0))))
        .map(|(t, _)| t.clone())
        .unwrap_or(default_type.clone());
    let gpus: i64 = live
        .iter()
        .map(|m| catalog::gpus_per_node("gcp", &type_of(m), accel.as_deref()).unwrap_or(0))
        .sum();
    let cost: f64 = live
        .iter()
        .map(|m| {
            catalog::gce_hourly_price(
                &type_of(m),
                accel.as_deref(),
                spec.spot(),
                &ctx.defaults.price_overrides,
            )
            .unwrap_or(0.0)
        })
        .sum();
    let vanished = members
        .iter()
        .filter(|m| !counts(m) && m.current_action != "DELETING")
        .count();
    let desired = (group.target_size as i64 - vanished as i64).max(0);
    let mut out = state.clone();
    out.set_attr("instance_ids", Value::string_list(ids));
    out.set_attr("instance_type", Value::string(majority));
    out.set_attr("gpus_total", Value::int(gpus));
    out.set_attr("hourly_cost_usd", Value::float(spec::round_cents(cost)));
    out.set_attr("instance_template", Value::string(&group.template));
    out.set_attr("launch_template_id", Value::Null);
    if let Some(n) = out.get_mut("nodes") {
        n.set_attr("desired", Value::int(desired));
    }
    out
}

/// Starts deleting the group (which deletes its instances); once the group is gone, deletes
/// the pool's templates and says `Gone`.
pub async fn delete(ctx: &Context, prior: &Value) -> Result<Deletion, ResourceError> {
    let api = client(ctx, prior)?;
    let pool_id = prior.get("id").as_str().unwrap_or_default().to_string();
    let gname = group_name(&pool_id);
    if let Some(g) = api.get_group(&gname).await? {
        let rid = gce::request_id(&pool_id, "deleteGroup", &[&gname, &g.id]);
        match api.delete_group(&gname, &rid).await {
            Ok(_) => {}
            // Already being deleted: Compute refuses a second delete until the first is done.
            Err(e) if e.is_transient() => {}
            Err(e) => return Err(e.into()),
        }
        return Ok(Deletion::InProgress(format!(
            "deleting group {gname} and its {} instance(s)",
            g.target_size
                .max(g.actions.none + g.actions.deleting + g.actions.creating)
        )));
    }
    let left = api.list_templates(&template_prefix(&pool_id)).await?;
    if left.is_empty() {
        return Ok(Deletion::Gone);
    }
    for t in &left {
        let rid = gce::request_id(&pool_id, "deleteTemplate", &[&t.name, &t.id]);
        if let Some(op) = api.delete_template(&t.name, &rid).await? {
            let op = api.wait_operation(&op, ACCEPT).await?;
            match op.result() {
                Ok(()) => {}
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    Ok(
        if api
            .list_templates(&template_prefix(&pool_id))
            .await?
            .is_empty()
        {
            Deletion::Gone
        } else {
            Deletion::InProgress("deleting instance templates".into())
        },
    )
}

/// After read reported that no zone had capacity: with nothing running, remove the pool (a
/// failed create leaves nothing behind); otherwise shrink the group to the instances that run,
/// so the state says what exists and the next plan shows the rest as a change.
pub async fn recover(ctx: &Context, observed: &Value) -> Result<Recovery, ApplyError> {
    let running = observed
        .get("instance_ids")
        .as_string_vec()
        .unwrap_or_default()
        .len() as i64;
    if running == 0 {
        return Ok(Recovery::Removed {
            note: "No instance could start, so the group and its template were deleted; nothing is left running.".into(),
        });
    }
    let api = client(ctx, observed)?;
    let pool_id = observed.get("id").as_str().unwrap_or_default().to_string();
    let gname = group_name(&pool_id);
    let group = api
        .get_group(&gname)
        .await
        .map_err(ResourceError::from)?
        .ok_or_else(|| {
            ResourceError::NotFound(format!("instance group {gname} of GPU pool {pool_id}"))
        })?;
    let size = running.to_string();
    let rid = gce::request_id(&pool_id, "resize", &[&gname, &group.fingerprint, &size]);
    let op = api
        .resize_group(&gname, running as u32, &rid)
        .await
        .map_err(ResourceError::from)?;
    let op = api
        .wait_operation(&op, ACCEPT)
        .await
        .map_err(ResourceError::from)?;
    accepted(op)?;
    let mut to = observed.clone();
    if let Some(n) = to.get_mut("nodes") {
        n.set_attr("desired", Value::int(running));
    }
    Ok(Recovery::RolledBack {
        to,
        note: format!(
            "The group was resized to the {running} instance(s) that run; apply again when capacity returns."
        ),
    })
}

/// Import by `PROJECT/REGION/NAME`: the group and its template hold every argument (the
/// template's metadata the bootstrap spec and tags, the group's description the node bounds);
/// `read` then adds the instances.
pub async fn import(ctx: &Context, id: &str, stub: Value) -> Result<Value, ResourceError> {
    let parts: Vec<&str> = id.split('/').collect();
    let [project, region, name] = parts.as_slice() else {
        return Err(ResourceError::invalid(
            AttrPath::root(),
            "Invalid import ID",
            format!("{id:?}: import a GCP pool with PROJECT/REGION/NAME, e.g. ml-prod/us-central1/train-l4."),
        ));
    };
    let pool_id = pool_id(project, region, name);
    import_group(ctx, project, region, &pool_id, Some(name), stub).await
}

/// Import by a bare pool ID (`gp-…`) in the provider's default project and region: what the
/// Crossplane front end does with an external name and no kept state.
pub async fn import_by_id(ctx: &Context, id: &str, stub: Value) -> Result<Value, ResourceError> {
    let (Some(project), Some(region)) = (ctx.default_gcp_project(), ctx.default_gcp_region())
    else {
        return Err(ResourceError::invalid(
            AttrPath::root(),
            "Project or region unknown",
            "Import a GCP pool with PROJECT/REGION/NAME, or set project and region in the provider's gcp block.",
        ));
    };
    import_group(ctx, &project, &region, id, None, stub).await
}

async fn import_group(
    ctx: &Context,
    project: &str,
    region: &str,
    pool_id: &str,
    name: Option<&str>,
    mut stub: Value,
) -> Result<Value, ResourceError> {
    let api = ctx.gce(project, region)?;
    let gname = group_name(pool_id);
    let group = api.get_group(&gname).await?.ok_or_else(|| {
        ResourceError::NotFound(format!(
            "GPU pool {} (group {gname}) in {project}/{region}",
            name.unwrap_or(pool_id)
        ))
    })?;
    let template = api.get_template(&group.template).await?.ok_or_else(|| {
        ResourceError::unreadable(
            format!("group {gname}"),
            format!("its instance template {} does not exist", group.template),
            None,
        )
    })?;
    let spec = template
        .metadata
        .get(META_STARTUP)
        .and_then(|s| bootstrap::parse(s))
        .ok_or_else(|| {
            ResourceError::unreadable(
                format!("instance template {} of GPU pool {pool_id}", template.name),
                "it carries no paved bootstrap data in its startup-script (was it created by paved?)",
                None,
            )
        })?;
    let tags_all: BTreeMap<String, String> = template
        .metadata
        .get(META_TAGS)
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or_default();
    spec.write_into(&mut stub);
    let (min, max) = parse_description(&group.description).unzip();
    stub.set_attr("id", Value::string(pool_id));
    stub.set_attr("cloud", Value::string("gcp"));
    stub.set_attr("gcp_project", Value::string(project));
    stub.set_attr("region", Value::string(region));
    super::attribution_from_tags(ctx, &mut stub, tags_all);
    stub.set_attr(
        "availability_zones",
        if group.zones.is_empty() {
            Value::Null
        } else {
            Value::string_list(group.zones.clone())
        },
    );
    stub.set_attr("instance_template", Value::string(&template.name));
    stub.set_attr(
        "instance_group",
        Value::string(group_link(project, region, pool_id)),
    );
    stub.set_attr(
        "nodes",
        Value::object([
            ("min", min.map_or(Value::Null, Value::int)),
            ("max", max.map_or(Value::Null, Value::int)),
            ("desired", Value::Null),
        ]),
    );
    Ok(stub)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_gcp_safe() {
        assert_eq!(label_key("paved:team"), "paved-team");
        assert_eq!(label_key("Cost-Center"), "cost-center");
        assert_eq!(label_key("9lives"), "t-9lives");
        assert_eq!(label_value("Alice Smith"), "alice_smith");
        assert_eq!(label_key(&"k".repeat(80)).len(), 63);
    }

    #[test]
    fn ids_and_names_are_deterministic_and_valid() {
        let id = pool_id("ml-prod", "us-central1", "train-l4");
        assert_eq!(id, pool_id("ml-prod", "us-central1", "train-l4"));
        assert_ne!(id, pool_id("ml-dev", "us-central1", "train-l4"));
        assert_ne!(
            id,
            super::super::aws::derived_pool_id("us-central1", "train-l4")
        );
        let g = group_name(&id);
        assert!(g.len() <= 63 && g.starts_with("paved-gp-"), "{g}");
        assert_eq!(
            parse_description("paved GPU pool; nodes 1..4"),
            Some((1, 4))
        );
        assert_eq!(parse_description("something else"), None);
    }

    #[test]
    fn template_names_follow_content() {
        let mut v = super::super::schema::schema().block.null_object();
        v.set_attr("name", Value::string("train-l4"));
        v.set_attr("team", Value::string("ml"));
        v.set_attr("gcp_project", Value::string("p"));
        v.set_attr("region", Value::string("us-central1"));
        v.set_attr(
            "image_id",
            Value::string("projects/x/global/images/family/y"),
        );
        v.set_attr("capacity_type", Value::string("on_demand"));
        v.set_attr("instance_types", Value::string_list(["n1-standard-4"]));
        v.set_attr(
            "accelerator",
            Value::object([
                ("type", Value::string("nvidia-t4")),
                ("count", Value::int(1)),
            ]),
        );
        v.set_attr("tags_all", Value::string_map([("paved:team", "ml")]));
        let a = template_spec("gp-1", &v).unwrap();
        assert!(
            a.name.starts_with("paved-gp-1-") && a.name.len() <= 63,
            "{}",
            a.name
        );
        assert_eq!(a.accelerator, Some(("nvidia-tesla-t4".to_string(), 1)));
        assert_eq!(a.labels.get("paved-team").map(String::as_str), Some("ml"));
        assert_eq!(a.labels.get(POOL_LABEL).map(String::as_str), Some("gp-1"));
        assert_eq!(template_spec("gp-1", &v).unwrap().name, a.name, "stable");
        v.set_attr("tags_all", Value::string_map([("paved:team", "search")]));
        assert_ne!(template_spec("gp-1", &v).unwrap().name, a.name);
        v.set_attr("tags_all", Value::Unknown);
        assert!(template_spec("gp-1", &v).is_none());
    }
}
