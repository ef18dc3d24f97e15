//! Kubernetes helpers shared by every resource that runs a workload (model endpoint, vector
//! database, feature store): the labels that make objects attributable and visible in the
//! portal, the argument annotation that makes import possible from the cluster alone, and
//! watch-based waits that end as soon as Kubernetes reports success or failure.

use crate::cloud::kube::{Kind, KubeApi};
use crate::context::Cancel;
use crate::cty::{self, Value};
use crate::diag::AttrPath;
use crate::error::ResourceError;
use crate::schema::Schema;
use serde_json::{json, Map, Value as Json};
use std::time::{Duration, Instant};

/// Annotation holding the configured arguments (JSON), written on each resource's main object.
pub const SPEC_ANNOTATION: &str = "paved.dev/spec";

/// A label value Kubernetes accepts, or None (versions and URIs may contain characters it
/// refuses).
pub fn label_value(v: &str) -> Option<String> {
    let ok = v.len() <= 63
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && v.chars().next().is_none_or(|c| c.is_ascii_alphanumeric())
        && v.chars().last().is_none_or(|c| c.is_ascii_alphanumeric());
    ok.then(|| v.to_string())
}

/// Labels on every object paved creates: Kubernetes' recommended labels, cost attribution and
/// `backstage.io/kubernetes-id`, which the Backstage Kubernetes plugin uses to show an entity's
/// objects. Attribution uses the platform's one key family, `team` and `project`, the same keys
/// EC2 tags and GCP labels carry (see [`crate::resources::common::ATTRIBUTION_KEYS`]); `team` is
/// also OpenCost's default team label, so OpenCost attributes pods without configuration. The
/// `paved.dev/` keys stay for selectors and network policies that already use them.
pub fn labels(component: &str, name: &str, team: &str, project: Option<&str>) -> Map<String, Json> {
    let mut m = Map::new();
    m.insert("app.kubernetes.io/name".into(), json!(name));
    m.insert("app.kubernetes.io/instance".into(), json!(name));
    m.insert("app.kubernetes.io/component".into(), json!(component));
    m.insert("app.kubernetes.io/part-of".into(), json!("paved"));
    m.insert("app.kubernetes.io/managed-by".into(), json!("paved"));
    m.insert("backstage.io/kubernetes-id".into(), json!(name));
    if let Some(t) = label_value(team) {
        m.insert("team".into(), json!(t));
        m.insert("paved.dev/team".into(), json!(t));
        m.insert("paved.dev/owner".into(), json!(t));
    }
    if let Some(p) = project.and_then(label_value) {
        m.insert("project".into(), json!(p));
        m.insert("paved.dev/project".into(), json!(p));
    }
    m
}

/// Labels for a StatefulSet's `volumeClaimTemplates`: [`labels`] without the plain `team` and
/// `project` keys. Kubernetes refuses any change to a StatefulSet's claim templates, so adding
/// keys there would make every later apply of a database created before them fail; the claims
/// keep `paved.dev/team` / `paved.dev/project` instead.
pub fn claim_template_labels(mut labels: Map<String, Json>) -> Map<String, Json> {
    for k in crate::resources::common::ATTRIBUTION_KEYS {
        labels.remove(k);
    }
    labels
}

/// The configured arguments as JSON (computed attributes blanked), for [`SPEC_ANNOTATION`].
pub fn encode_args(
    schema: &Schema,
    planned: &Value,
    computed: &[&str],
) -> Result<String, ResourceError> {
    let mut args = planned.clone();
    for k in computed {
        args.set_attr(k, Value::Null);
    }
    cty::json::encode(&args, &schema.implied_type())
        .map(|j| j.to_string())
        .map_err(|e| {
            ResourceError::invalid(
                AttrPath::root(),
                "Value not known at apply time",
                e.to_string(),
            )
        })
}

/// Rebuilds the arguments from a [`SPEC_ANNOTATION`] read off `obj` (import).
pub fn decode_args(schema: &Schema, obj: &Json, what: &str) -> Result<Value, ResourceError> {
    let raw = obj["metadata"]["annotations"][SPEC_ANNOTATION]
        .as_str()
        .ok_or_else(|| {
            // The object exists: without paved's annotation it is unreadable, not gone.
            ResourceError::unreadable(
                what,
                format!("it has no {SPEC_ANNOTATION} annotation (was it created by paved?)"),
                None,
            )
        })?;
    decode_args_text(schema, raw, what)
}

/// Rebuilds arguments from their JSON text (as [`encode_args`] wrote it).
pub fn decode_args_text(schema: &Schema, raw: &str, what: &str) -> Result<Value, ResourceError> {
    let unreadable = |e: crate::error::Cause| {
        ResourceError::unreadable(
            what,
            format!("its {SPEC_ANNOTATION} annotation does not parse"),
            Some(e),
        )
    };
    let json: Json =
        serde_json::from_str(raw).map_err(|e| unreadable(crate::error::Cause::new(e)))?;
    cty::json::decode_lenient_unknown_attrs(&json, &schema.implied_type())
        .map_err(|e| unreadable(crate::error::Cause::new(e)))
}

/// Splits an import ID `namespace/name`.
pub fn split_id(id: &str) -> Result<(&str, &str), ResourceError> {
    id.split_once('/')
        .filter(|(ns, n)| !ns.is_empty() && !n.is_empty() && !n.contains('/'))
        .ok_or_else(|| {
            ResourceError::invalid(
                AttrPath::root(),
                "Invalid import ID",
                format!("{id:?} is not NAMESPACE/NAME."),
            )
        })
}

/// The text of one key of a Secret read through [`KubeApi`] (base64 `data`), if present.
pub fn secret_value(secret: &Json, key: &str) -> Option<String> {
    use base64::Engine;
    let raw = secret["data"][key].as_str()?;
    let bytes = base64::engine::general_purpose::STANDARD.decode(raw).ok()?;
    String::from_utf8(bytes).ok()
}

/// A random credential: 32 characters from [A-Za-z0-9], ~190 bits.
pub fn random_secret() -> String {
    use rand::distributions::{Alphanumeric, DistString};
    Alphanumeric.sample_string(&mut rand::thread_rng(), 32)
}

/// Rollout state of a workload object, from its status alone.
#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Every replica runs the current template and is ready (or the Job completed).
    Complete,
    Waiting(String),
    /// Kubernetes gave up (Progressing=False, Job Failed).
    Failed {
        condition: String,
        message: String,
    },
}

fn n(v: &Json) -> i64 {
    v.as_i64().unwrap_or(0)
}

/// Conditions still describe the previous spec until the controller observes the new one.
fn observed(obj: &Json) -> bool {
    n(&obj["status"]["observedGeneration"]) >= n(&obj["metadata"]["generation"])
}

pub fn deployment_progress(dep: &Json) -> Progress {
    let want = dep["spec"]["replicas"].as_i64().unwrap_or(1);
    let st = &dep["status"];
    if !observed(dep) {
        return Progress::Waiting("controller has not observed the new spec yet".into());
    }
    for c in st["conditions"].as_array().into_iter().flatten() {
        if c["type"] == "Progressing" && c["status"] == "False" {
            return Progress::Failed {
                condition: format!(
                    "Progressing=False ({})",
                    c["reason"].as_str().unwrap_or("unknown")
                ),
                message: c["message"].as_str().unwrap_or_default().to_string(),
            };
        }
    }
    let (updated, total, available) = (
        n(&st["updatedReplicas"]),
        n(&st["replicas"]),
        n(&st["availableReplicas"]),
    );
    if updated < want {
        return Progress::Waiting(format!("{updated} of {want} replicas updated"));
    }
    if total > updated {
        return Progress::Waiting(format!(
            "{} old replicas pending termination",
            total - updated
        ));
    }
    // A scale-down (a canary taking a stable replica's place) is done only when the surplus
    // pods are gone: until then they still count as ready and hold GPUs.
    if total > want {
        return Progress::Waiting(format!("{} replicas pending termination", total - want));
    }
    if available < want {
        return Progress::Waiting(format!("{available} of {want} replicas available"));
    }
    Progress::Complete
}

/// A StatefulSet is rolled out when every replica is ready and on the update revision.
/// StatefulSets have no progress deadline, so their failures end at the caller's timeout.
pub fn statefulset_progress(sts: &Json) -> Progress {
    let want = sts["spec"]["replicas"].as_i64().unwrap_or(1);
    let st = &sts["status"];
    if !observed(sts) {
        return Progress::Waiting("controller has not observed the new spec yet".into());
    }
    let (ready, updated, total) = (
        n(&st["readyReplicas"]),
        n(&st["updatedReplicas"]),
        n(&st["replicas"]),
    );
    if st["updateRevision"].is_string() && st["currentRevision"] != st["updateRevision"]
        || updated < want
    {
        return Progress::Waiting(format!("{updated} of {want} replicas updated"));
    }
    if total > want {
        return Progress::Waiting(format!("{} replicas pending termination", total - want));
    }
    if ready < want {
        return Progress::Waiting(format!("{ready} of {want} replicas ready"));
    }
    Progress::Complete
}

pub fn job_progress(job: &Json) -> Progress {
    for c in job["status"]["conditions"].as_array().into_iter().flatten() {
        if c["status"] != "True" {
            continue;
        }
        if c["type"] == "Complete" {
            return Progress::Complete;
        }
        if c["type"] == "Failed" {
            return Progress::Failed {
                condition: format!("Failed ({})", c["reason"].as_str().unwrap_or("unknown")),
                message: c["message"].as_str().unwrap_or_default().to_string(),
            };
        }
    }
    Progress::Waiting(format!("{} pods active", n(&job["status"]["active"])))
}

/// The `status` attribute of a resource made of several objects: `Degraded: …` when companion
/// objects are missing or broken (the next plan repairs it) or a workload failed, `Progressing:
/// …` while one rolls out, else `Ready`.
pub fn status_text(problems: &[String], progress: &[Progress]) -> String {
    if !problems.is_empty() {
        return format!("Degraded: {}", problems.join("; "));
    }
    if let Some(Progress::Failed { condition, .. }) = progress
        .iter()
        .find(|p| matches!(p, Progress::Failed { .. }))
    {
        return format!("Degraded: {condition}");
    }
    if let Some(Progress::Waiting(w)) = progress.iter().find(|p| matches!(p, Progress::Waiting(_)))
    {
        return format!("Progressing: {w}");
    }
    "Ready".to_string()
}

/// The readiness of a resource made of several objects: failed when Kubernetes gave up on one
/// of them (`failed` is the summary), progressing while one rolls out or a companion object is
/// missing (the next plan repairs it), else ready.
pub fn readiness(
    problems: &[String],
    progress: &[(String, Progress)],
    failed: &str,
) -> crate::resource::Readiness {
    use crate::resource::Readiness;
    if let Some((what, Progress::Failed { condition, message })) = progress
        .iter()
        .find(|(_, p)| matches!(p, Progress::Failed { .. }))
    {
        return Readiness::Failed {
            summary: failed.to_string(),
            detail: format!("{what} failed: condition {condition}: {message}"),
        };
    }
    if !problems.is_empty() {
        return Readiness::Progressing(problems.join("; "));
    }
    match progress
        .iter()
        .find(|(_, p)| matches!(p, Progress::Waiting(_)))
    {
        Some((what, Progress::Waiting(w))) => Readiness::Progressing(format!("{what}: {w}")),
        _ => Readiness::Ready,
    }
}

/// [`crate::resource::Resource::await_change`] for a resource whose progress shows on
/// `watched` (namespace, objects): blocks on a watch of each.
pub async fn await_change(
    ctx: &crate::context::Context,
    watched: (String, ObjectRefs),
    within: Duration,
) {
    let Ok(kube) = ctx.kube() else { return };
    await_objects(kube.as_ref(), &watched.0, &watched.1, within, &ctx.cancel).await;
}

/// The Kubernetes resources' time limits: the `timeouts` block, else 15 minutes for a create
/// or update and 10 for a delete.
pub fn timeout(v: &Value, op: crate::resource::Operation) -> Duration {
    let default = match op {
        crate::resource::Operation::Delete => Duration::from_secs(600),
        _ => Duration::from_secs(15 * 60),
    };
    crate::resources::common::timeout(v, op.as_str(), default)
}

/// Objects as (kind, name) — or, for the labelled ones, (kind, label selector).
pub type ObjectRefs = Vec<(Kind, String)>;

/// Starts deleting `objects` (and every object of each `(kind, selector)` in `labelled`) and
/// says what is still there: the non-blocking half of a delete. Deleting what is already being
/// deleted, or gone, is fine, so a caller repeats this until [`crate::resource::Deletion::Gone`].
pub async fn start_delete(
    kube: &dyn KubeApi,
    ns: &str,
    objects: &[(Kind, String)],
    labelled: &[(Kind, String)],
) -> Result<crate::resource::Deletion, ResourceError> {
    let mut all: Vec<(Kind, String)> = objects.to_vec();
    for (kind, selector) in labelled {
        for o in kube.list(*kind, ns, selector).await? {
            if let Some(n) = o["metadata"]["name"].as_str() {
                all.push((*kind, n.to_string()));
            }
        }
    }
    let mut left = vec![];
    for (k, name) in &all {
        if kube.get(*k, ns, name).await?.is_some() {
            kube.delete(*k, ns, name).await?;
            left.push(format!("{} {name}", k.name()));
        }
    }
    Ok(if left.is_empty() {
        crate::resource::Deletion::Gone
    } else {
        crate::resource::Deletion::InProgress(format!("still deleting {}", left.join(", ")))
    })
}

/// Blocks until one of `objects` changes (a watch on each that exists), `within` passes, or
/// `cancel` fires: what [`crate::resource::Resource::await_change`] is for the Kubernetes
/// resources. Errors end the block early; the caller observes again anyway.
pub async fn await_objects(
    kube: &dyn KubeApi,
    ns: &str,
    objects: &[(Kind, String)],
    within: Duration,
    cancel: &Cancel,
) {
    let mut watches = vec![];
    for (k, name) in objects {
        match kube.get(*k, ns, name).await {
            Ok(Some(obj)) => {
                let rv = obj["metadata"]["resourceVersion"]
                    .as_str()
                    .unwrap_or("0")
                    .to_string();
                let (k, name) = (*k, name.clone());
                watches.push(Box::pin(async move {
                    let _ = kube.watch_next(k, ns, &name, &rv, within).await;
                }));
            }
            Ok(None) => {}
            Err(_) => return,
        }
    }
    if watches.is_empty() {
        let _ = cancel.sleep(within.min(Duration::from_secs(1))).await;
        return;
    }
    tokio::select! {
        _ = futures::future::select_all(watches) => {}
        _ = cancel.sleep(within) => {}
    }
}

/// Waits until an object is gone (watching for its deletion), the deadline passes, or `cancel`
/// fires (Terraform's StopProvider interrupts a destroy stuck on a finalizer).
pub async fn wait_gone(
    kube: &dyn KubeApi,
    kind: Kind,
    ns: &str,
    name: &str,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<(), ResourceError> {
    let started = Instant::now();
    loop {
        if cancel.is_cancelled() {
            return Err(ResourceError::Cancelled);
        }
        let Some(obj) = kube.get(kind, ns, name).await? else {
            return Ok(());
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(ResourceError::Timeout {
                what: format!("{} {ns}/{name} to be deleted", kind.name()),
                after: started.elapsed(),
            });
        }
        let rv = obj["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_string();
        let remaining = (deadline - now).min(Duration::from_secs(30));
        tokio::select! {
            r = kube.watch_next(kind, ns, name, &rv, remaining) => {
                if let Some(Json::Null) = r? {
                    return Ok(());
                }
            }
            r = cancel.sleep(remaining) => r?,
        }
    }
}

/// Import by `namespace/name`: reads the main object (`object_name` of the resource name) and
/// rebuilds the arguments from its [`SPEC_ANNOTATION`]; `read` then adds what the cluster says.
pub async fn import_by_annotation(
    ctx: &crate::context::Context,
    id: &str,
    kind: Kind,
    object_name: fn(&str) -> String,
    schema: &Schema,
) -> Result<Value, ResourceError> {
    let (ns, name) = split_id(id)?;
    let obj_name = object_name(name);
    let what = format!("{} {ns}/{obj_name}", kind.name());
    let obj = ctx
        .kube()?
        .get(kind, ns, &obj_name)
        .await?
        .ok_or_else(|| ResourceError::NotFound(what.clone()))?;
    let mut v = decode_args(schema, &obj, &what)?;
    v.set_attr("id", Value::string(format!("{ns}/{name}")));
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(gen: i64, obs: i64, want: i64, updated: i64, total: i64, avail: i64) -> Json {
        json!({"metadata": {"generation": gen}, "spec": {"replicas": want},
               "status": {"observedGeneration": obs, "updatedReplicas": updated, "replicas": total, "availableReplicas": avail}})
    }

    #[test]
    fn deployment_complete_only_when_every_replica_is_new_and_available() {
        assert_eq!(
            deployment_progress(&dep(2, 2, 3, 3, 3, 3)),
            Progress::Complete
        );
        for d in [
            dep(2, 1, 3, 3, 3, 3),
            dep(2, 2, 3, 2, 3, 3),
            dep(2, 2, 3, 3, 4, 3),
            dep(2, 2, 3, 3, 3, 2),
            // scaled from 5 to 4: the controller has seen it, the fifth pod is still there
            dep(2, 2, 4, 5, 5, 5),
        ] {
            assert!(
                matches!(deployment_progress(&d), Progress::Waiting(_)),
                "{d}"
            );
        }
    }

    #[test]
    fn progress_deadline_is_a_failure_with_its_reason() {
        let mut d = dep(2, 2, 3, 1, 3, 2);
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                             "message": "ReplicaSet \"m-7f\" has timed out progressing."}]);
        let Progress::Failed { condition, message } = deployment_progress(&d) else {
            panic!()
        };
        assert_eq!(condition, "Progressing=False (ProgressDeadlineExceeded)");
        assert!(message.contains("timed out"));
    }

    #[test]
    fn statefulset_waits_for_the_update_revision_and_readiness() {
        let sts = |cur: &str, upd: &str, ready: i64| {
            json!({"metadata": {"generation": 1}, "spec": {"replicas": 2},
                   "status": {"observedGeneration": 1, "replicas": 2, "readyReplicas": ready, "updatedReplicas": 2,
                              "currentRevision": cur, "updateRevision": upd}})
        };
        assert_eq!(statefulset_progress(&sts("a", "a", 2)), Progress::Complete);
        assert!(matches!(
            statefulset_progress(&sts("a", "b", 2)),
            Progress::Waiting(_)
        ));
        assert!(matches!(
            statefulset_progress(&sts("a", "a", 1)),
            Progress::Waiting(_)
        ));
    }

    #[test]
    fn jobs_complete_or_fail_by_condition() {
        assert_eq!(
            job_progress(
                &json!({"status": {"conditions": [{"type": "Complete", "status": "True"}]}})
            ),
            Progress::Complete
        );
        assert!(matches!(
            job_progress(
                &json!({"status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]}})
            ),
            Progress::Failed { .. }
        ));
        assert!(matches!(
            job_progress(&json!({"status": {"active": 1}})),
            Progress::Waiting(_)
        ));
    }

    #[test]
    fn status_names_what_is_wrong_first() {
        let failed = Progress::Failed {
            condition: "Progressing=False (X)".into(),
            message: String::new(),
        };
        let waiting = Progress::Waiting("1 of 2 replicas ready".into());
        assert_eq!(
            status_text(
                &["Secret s is missing".into()],
                std::slice::from_ref(&waiting)
            ),
            "Degraded: Secret s is missing"
        );
        assert_eq!(
            status_text(&[], &[waiting.clone(), failed]),
            "Degraded: Progressing=False (X)"
        );
        assert_eq!(
            status_text(&[], &[Progress::Complete, waiting]),
            "Progressing: 1 of 2 replicas ready"
        );
        assert_eq!(status_text(&[], &[Progress::Complete]), "Ready");
    }

    #[test]
    fn labels_attribute_cost_and_feed_the_portal() {
        let l = labels("vector-db", "docs", "search", Some("rag"));
        assert_eq!(l["backstage.io/kubernetes-id"], "docs");
        assert_eq!(l["paved.dev/team"], "search");
        assert_eq!(l["paved.dev/owner"], "search");
        assert_eq!(l["paved.dev/project"], "rag");
        // The platform's one attribution family, as on EC2 tags and GCP labels.
        for k in crate::resources::common::ATTRIBUTION_KEYS {
            assert!(l.contains_key(k), "{k}");
        }
        assert_eq!(
            (&l["team"], &l["project"]),
            (&json!("search"), &json!("rag"))
        );
        assert_eq!(label_value("sha256:abc"), None);
        assert_eq!(label_value(&"a".repeat(64)), None);
    }

    #[test]
    fn import_ids_are_namespace_slash_name() {
        assert_eq!(split_id("ml/docs").unwrap(), ("ml", "docs"));
        for bad in ["docs", "/docs", "ml/", "a/b/c"] {
            assert!(split_id(bad).is_err(), "{bad}");
        }
    }
}
