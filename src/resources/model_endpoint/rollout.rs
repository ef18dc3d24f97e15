//! Rollout progress from a Deployment's status, and waiting for it with watches: apply returns
//! as soon as the Deployment is Available, and a rollout that cannot progress fails as soon as
//! Kubernetes says so (Progressing=False), not at a timeout.

use crate::cloud::kube::{Kind, KubeApi};
use crate::context::Cancel;
use crate::error::ResourceError;
use serde_json::Value as Json;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, PartialEq)]
pub enum Progress {
    /// Every replica runs the current template and is available.
    Complete,
    Waiting(String),
    /// Kubernetes gave up on the rollout.
    Failed {
        condition: String,
        message: String,
    },
}

fn n(v: &Json) -> i64 {
    v.as_i64().unwrap_or(0)
}

pub fn progress(dep: &Json) -> Progress {
    let want = dep["spec"]["replicas"].as_i64().unwrap_or(1);
    let st = &dep["status"];
    let generation = n(&dep["metadata"]["generation"]);
    if n(&st["observedGeneration"]) < generation {
        // Conditions still describe the previous spec (e.g. the failed one just rolled back).
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
    if available < want {
        return Progress::Waiting(format!("{available} of {want} replicas available"));
    }
    Progress::Complete
}

/// Why a wait ended without an Available rollout.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitError {
    Failed {
        deployment: String,
        condition: String,
        message: String,
    },
    Other(ResourceError),
}

/// Waits until the Deployment's rollout is complete. Each step re-reads the object and then
/// blocks on a watch from its resourceVersion, so there is no fixed poll interval.
pub async fn wait_available(
    kube: &dyn KubeApi,
    ns: &str,
    name: &str,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<Json, WaitError> {
    let started = Instant::now();
    loop {
        let dep = kube
            .get(Kind::Deployment, ns, name)
            .await
            .map_err(|e| WaitError::Other(e.into()))?
            .ok_or_else(|| {
                WaitError::Other(ResourceError::NotFound(format!("Deployment {ns}/{name}")))
            })?;
        let waiting = match progress(&dep) {
            Progress::Complete => return Ok(dep),
            Progress::Failed { condition, message } => {
                return Err(WaitError::Failed {
                    deployment: format!("{ns}/{name}"),
                    condition,
                    message,
                })
            }
            Progress::Waiting(w) => w,
        };
        let now = Instant::now();
        if now >= deadline {
            return Err(WaitError::Other(ResourceError::Timeout {
                what: format!("Deployment {ns}/{name} to become Available ({waiting}); the limit is the smaller of rollout.timeout and the timeouts block"),
                after: started.elapsed(),
            }));
        }
        if cancel.is_cancelled() {
            return Err(WaitError::Other(ResourceError::Cancelled));
        }
        let rv = dep["metadata"]["resourceVersion"]
            .as_str()
            .unwrap_or("0")
            .to_string();
        let remaining = (deadline - now).min(Duration::from_secs(60));
        tokio::select! {
            r = kube.watch_next(Kind::Deployment, ns, name, &rv, remaining) => {
                r.map_err(|e| WaitError::Other(e.into()))?;
            }
            _ = cancel.sleep(remaining) => {}
        }
    }
}

/// Waits until an object is gone (watching for its deletion).
pub async fn wait_gone(
    kube: &dyn KubeApi,
    kind: Kind,
    ns: &str,
    name: &str,
    deadline: Instant,
) -> Result<(), ResourceError> {
    let started = Instant::now();
    loop {
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
        if let Some(Json::Null) = kube
            .watch_next(
                kind,
                ns,
                name,
                &rv,
                (deadline - now).min(Duration::from_secs(30)),
            )
            .await?
        {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn dep(gen: i64, obs: i64, want: i64, updated: i64, total: i64, avail: i64) -> Json {
        json!({"metadata": {"generation": gen}, "spec": {"replicas": want},
               "status": {"observedGeneration": obs, "updatedReplicas": updated, "replicas": total, "availableReplicas": avail}})
    }

    #[test]
    fn complete_only_when_every_replica_is_new_and_available() {
        assert_eq!(progress(&dep(2, 2, 3, 3, 3, 3)), Progress::Complete);
        assert!(matches!(
            progress(&dep(2, 1, 3, 3, 3, 3)),
            Progress::Waiting(_)
        ));
        assert!(matches!(
            progress(&dep(2, 2, 3, 2, 3, 3)),
            Progress::Waiting(_)
        ));
        assert!(matches!(
            progress(&dep(2, 2, 3, 3, 4, 3)),
            Progress::Waiting(_)
        ));
        assert!(matches!(
            progress(&dep(2, 2, 3, 3, 3, 2)),
            Progress::Waiting(_)
        ));
    }

    #[test]
    fn progress_deadline_is_a_failure_with_its_reason() {
        let mut d = dep(2, 2, 3, 1, 3, 2);
        d["status"]["conditions"] = json!([{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
                                             "message": "ReplicaSet \"m-7f\" has timed out progressing."}]);
        let Progress::Failed { condition, message } = progress(&d) else {
            panic!()
        };
        assert_eq!(condition, "Progressing=False (ProgressDeadlineExceeded)");
        assert!(message.contains("timed out"));
    }
}
