//! Driving the two-phase verbs of [`Resource`] to their end, for a front end that must block
//! until a change is done: Terraform's ApplyResourceChange returns the final state, so the
//! provider observes after starting a change until the object is ready, failed, or out of
//! time (the resource's `timeouts`), and runs the automatic recovery (rollback) on failure.
//! The Crossplane controller does none of this: it requeues and observes on the next
//! reconcile, so a slow rollout holds no worker.
//!
//! Waits end on the first of: ready, failed, the deadline, or `ctx.cancel` (StopProvider).
//! Between observations they block in [`Resource::await_change`] (a watch for the Kubernetes
//! resources), so there is no fixed poll interval.

use crate::context::Context;
use crate::cty::Value;
use crate::error::{ApplyError, ResourceError};
use crate::resource::{Deletion, Operation, Readiness, Recovery, Resource};
use crate::resources::common::deadline;
use std::time::{Duration, Instant};

/// Longest single block between two observations: a lost watch event costs at most this.
const MAX_BLOCK: Duration = Duration::from_secs(30);

/// Creates and waits until ready. A failure that recovery removed returns no state; any other
/// failure returns the state of what exists.
pub async fn create(r: &dyn Resource, ctx: &Context, planned: &Value) -> Result<Value, ApplyError> {
    let until = deadline(r.timeout(planned, Operation::Create));
    crate::budget::admit(r, ctx, None, planned).await?;
    let started = r.create(ctx, planned).await?;
    settle(r, ctx, &started, until).await
}

/// Updates and waits until ready; a failed rollout is rolled back as the resource's
/// [`Resource::recover`] decides and reported as an error with the state after the rollback.
pub async fn update(
    r: &dyn Resource,
    ctx: &Context,
    prior: &Value,
    planned: &Value,
) -> Result<Value, ApplyError> {
    let until = deadline(r.timeout(planned, Operation::Update));
    crate::budget::admit(r, ctx, Some(prior), planned).await?;
    let started = r.update(ctx, prior, planned).await?;
    settle(r, ctx, &started, until).await
}

/// Deletes and waits until nothing is left (calling `delete` again after each change, as its
/// contract allows).
pub async fn delete(r: &dyn Resource, ctx: &Context, prior: &Value) -> Result<(), ResourceError> {
    let timeout = r.timeout(prior, Operation::Delete);
    let until = deadline(timeout);
    let begun = Instant::now();
    loop {
        let left = match r.delete(ctx, prior).await? {
            Deletion::Gone => return Ok(()),
            Deletion::InProgress(left) => left,
        };
        block(r, ctx, prior, until).await.map_err(|e| match e {
            Stop::Cancelled => ResourceError::Cancelled,
            Stop::Deadline => ResourceError::Timeout {
                what: format!("{} to be deleted ({left})", describe(r, prior)),
                after: begun.elapsed().min(timeout),
            },
        })?;
    }
}

fn describe(r: &dyn Resource, v: &Value) -> String {
    match v.get("id").as_str() {
        Some(id) => format!("{} {id}", r.type_name()),
        None => r.type_name().to_string(),
    }
}

enum Stop {
    Cancelled,
    Deadline,
}

/// Waits for the next change, bounded by the deadline; says why it must stop instead.
async fn block(r: &dyn Resource, ctx: &Context, state: &Value, until: Instant) -> Result<(), Stop> {
    if ctx.cancel.is_cancelled() {
        return Err(Stop::Cancelled);
    }
    let now = Instant::now();
    if now >= until {
        return Err(Stop::Deadline);
    }
    r.await_change(ctx, state, (until - now).min(MAX_BLOCK))
        .await;
    if ctx.cancel.is_cancelled() {
        return Err(Stop::Cancelled);
    }
    Ok(())
}

/// How a wait for readiness ended, short of an error.
enum Waited {
    Ready(Value),
    Failed {
        summary: String,
        detail: String,
        state: Value,
    },
}

/// Observes `state` until it is ready or failed. Running out of time counts as failed (so the
/// rollback runs, as it did when a rollout timed out); a cancel or a failed read is an error
/// carrying the last state seen.
async fn wait_ready(
    r: &dyn Resource,
    ctx: &Context,
    state: &Value,
    until: Instant,
) -> Result<Waited, ApplyError> {
    let begun = Instant::now();
    let mut last_seen = state.clone();
    loop {
        let seen = match r.read(ctx, state).await {
            Ok(Some(o)) => o,
            Ok(None) => {
                return Err(ResourceError::NotFound(format!(
                    "{} right after it was applied",
                    describe(r, state)
                ))
                .into())
            }
            Err(e) => return Err(ApplyError::with_state(e, last_seen)),
        };
        last_seen = seen.state.clone();
        let waiting = match seen.readiness {
            Readiness::Ready => return Ok(Waited::Ready(seen.state)),
            Readiness::Failed { summary, detail } => {
                return Ok(Waited::Failed {
                    summary,
                    detail,
                    state: seen.state,
                })
            }
            Readiness::Progressing(what) => what,
        };
        match block(r, ctx, &seen.state, until).await {
            Ok(()) => {}
            Err(Stop::Cancelled) => {
                return Err(ApplyError::with_state(ResourceError::Cancelled, seen.state))
            }
            Err(Stop::Deadline) => {
                return Ok(Waited::Failed {
                    summary: "Not ready in time".into(),
                    detail: format!(
                        "{} was not ready after {:?} ({waiting}); raise the resource's timeout if this is expected",
                        describe(r, state),
                        begun.elapsed()
                    ),
                    state: seen.state,
                })
            }
        }
    }
}

/// Waits for a started change and recovers from its failure.
async fn settle(
    r: &dyn Resource,
    ctx: &Context,
    started: &Value,
    until: Instant,
) -> Result<Value, ApplyError> {
    let (summary, detail, observed) = match wait_ready(r, ctx, started, until).await? {
        Waited::Ready(v) => return Ok(v),
        Waited::Failed {
            summary,
            detail,
            state,
        } => (summary, detail, state),
    };
    tracing::warn!(resource = %describe(r, started), %summary, %detail, "change failed; recovering");
    let recovery = match r.recover(ctx, &observed, &detail).await {
        Ok(x) => x,
        Err(mut e) => {
            e.state.get_or_insert(observed);
            return Err(e);
        }
    };
    match recovery {
        Recovery::None => Err(ApplyError::with_state(
            ResourceError::failed(&summary, detail),
            observed,
        )),
        Recovery::RolledBack { to, note } => {
            let back = deadline(r.timeout(&to, Operation::Update));
            match wait_ready(r, ctx, &to, back).await {
                Ok(Waited::Ready(v)) => Err(ApplyError::with_state(
                    ResourceError::failed(
                        &format!("{summary} and was rolled back"),
                        format!("{detail}\n{note}"),
                    ),
                    v,
                )),
                Ok(Waited::Failed {
                    detail: d2, state, ..
                }) => Err(ApplyError::with_state(
                    ResourceError::failed(
                        &format!("{summary} and so did the rollback"),
                        format!("{detail}\nRolling back also failed: {d2}"),
                    ),
                    state,
                )),
                Err(mut e) => {
                    e.state.get_or_insert(to);
                    Err(e)
                }
            }
        }
        Recovery::Removed { note } => match delete(r, ctx, &observed).await {
            Ok(()) => Err(ApplyError {
                error: ResourceError::failed(
                    &format!("{summary} and was rolled back"),
                    format!("{detail}\n{note}"),
                ),
                state: None,
            }),
            Err(e) => Err(ApplyError::with_state(
                ResourceError::failed(
                    &format!("{summary} and so did the cleanup"),
                    format!(
                        "{detail}\nRemoving what the create made also failed: {}",
                        e.report()
                    ),
                ),
                observed,
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Observed;
    use crate::schema::Schema;
    use async_trait::async_trait;
    use std::collections::VecDeque;
    use std::sync::Mutex;

    /// A resource that answers each call from a script and logs what was called.
    #[derive(Default)]
    struct Scripted {
        reads: Mutex<VecDeque<Readiness>>,
        deletes: Mutex<VecDeque<Deletion>>,
        recovery: Option<Recovery>,
        timeout: Option<Duration>,
        log: Mutex<Vec<String>>,
    }

    fn state(tag: &str) -> Value {
        let mut v = crate::resources::model_endpoint::schema::schema()
            .block
            .null_object();
        v.set_attr("id", Value::string(tag));
        v
    }

    impl Scripted {
        fn reads(r: impl IntoIterator<Item = Readiness>) -> Scripted {
            Scripted {
                reads: Mutex::new(r.into_iter().collect()),
                ..Default::default()
            }
        }
        fn log(&self) -> Vec<String> {
            self.log.lock().unwrap().clone()
        }
        fn note(&self, s: String) {
            self.log.lock().unwrap().push(s);
        }
    }

    #[async_trait]
    impl Resource for Scripted {
        fn type_name(&self) -> &'static str {
            "paved_scripted"
        }
        fn schema(&self) -> Schema {
            crate::resources::model_endpoint::schema::schema()
        }
        async fn read(
            &self,
            _ctx: &Context,
            state: &Value,
        ) -> Result<Option<Observed>, ResourceError> {
            let id = state.get("id").as_str().unwrap_or_default().to_string();
            self.note(format!("read {id}"));
            let r = self
                .reads
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Readiness::Progressing("still going".into()));
            let mut seen = state.clone();
            seen.set_attr("status", Value::string(format!("{r:?}")));
            Ok(Some(Observed {
                state: seen,
                readiness: r,
            }))
        }
        async fn create(&self, _ctx: &Context, _planned: &Value) -> Result<Value, ApplyError> {
            self.note("create".into());
            Ok(state("new"))
        }
        async fn update(
            &self,
            _ctx: &Context,
            _prior: &Value,
            _planned: &Value,
        ) -> Result<Value, ApplyError> {
            self.note("update".into());
            Ok(state("new"))
        }
        async fn delete(&self, _ctx: &Context, _prior: &Value) -> Result<Deletion, ResourceError> {
            self.note("delete".into());
            Ok(self
                .deletes
                .lock()
                .unwrap()
                .pop_front()
                .unwrap_or(Deletion::Gone))
        }
        async fn recover(
            &self,
            _ctx: &Context,
            _observed: &Value,
            failure: &str,
        ) -> Result<Recovery, ApplyError> {
            self.note(format!("recover: {failure}"));
            Ok(self.recovery.clone().unwrap_or(Recovery::None))
        }
        async fn await_change(&self, _ctx: &Context, _state: &Value, _within: Duration) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        fn timeout(&self, _v: &Value, _op: Operation) -> Duration {
            self.timeout.unwrap_or(Duration::from_secs(60))
        }
    }

    fn failed() -> Readiness {
        Readiness::Failed {
            summary: "Rollout failed".into(),
            detail: "ProgressDeadlineExceeded".into(),
        }
    }

    #[tokio::test]
    async fn create_observes_until_ready_and_returns_what_it_saw() {
        let r = Scripted::reads([Readiness::Progressing("0 of 1".into()), Readiness::Ready]);
        let ctx = Context::unconfigured();
        let v = create(&r, &ctx, &state("planned")).await.unwrap();
        assert_eq!(v.get("status").as_str(), Some("Ready"));
        assert_eq!(r.log(), ["create", "read new", "read new"]);
    }

    #[tokio::test]
    async fn a_failed_update_is_rolled_back_and_reported_with_the_restored_state() {
        let r = Scripted {
            recovery: Some(Recovery::RolledBack {
                to: state("previous"),
                note: "v1 serves again".into(),
            }),
            ..Scripted::reads([
                failed(),
                Readiness::Progressing("1 of 2".into()),
                Readiness::Ready,
            ])
        };
        let ctx = Context::unconfigured();
        let e = update(&r, &ctx, &state("prior"), &state("planned"))
            .await
            .unwrap_err();
        assert_eq!(
            e.error.to_string(),
            "Rollout failed and was rolled back: ProgressDeadlineExceeded\nv1 serves again"
        );
        let after = e.state.expect("the rolled-back state");
        assert_eq!(after.get("id").as_str(), Some("previous"));
        assert_eq!(after.get("status").as_str(), Some("Ready"));
        assert_eq!(
            r.log(),
            [
                "update",
                "read new",
                "recover: ProgressDeadlineExceeded",
                "read previous",
                "read previous"
            ]
        );
    }

    #[tokio::test]
    async fn a_failed_create_that_recovery_removes_is_deleted_and_leaves_no_state() {
        let r = Scripted {
            recovery: Some(Recovery::Removed {
                note: "removed".into(),
            }),
            deletes: Mutex::new(VecDeque::from([
                Deletion::InProgress("Deployment x".into()),
                Deletion::Gone,
            ])),
            ..Scripted::reads([failed()])
        };
        let ctx = Context::unconfigured();
        let e = create(&r, &ctx, &state("planned")).await.unwrap_err();
        assert!(e.state.is_none(), "{:?}", e.state);
        assert!(
            e.error.to_string().contains("and was rolled back"),
            "{}",
            e.error
        );
        assert_eq!(
            r.log(),
            [
                "create",
                "read new",
                "recover: ProgressDeadlineExceeded",
                "delete",
                "delete"
            ]
        );
    }

    #[tokio::test]
    async fn running_out_of_time_is_a_failure_with_the_last_progress() {
        let r = Scripted {
            timeout: Some(Duration::from_millis(30)),
            ..Default::default()
        };
        let ctx = Context::unconfigured();
        let e = create(&r, &ctx, &state("planned")).await.unwrap_err();
        let text = e.error.to_string();
        assert!(text.starts_with("Not ready in time"), "{text}");
        assert!(text.contains("(still going)"), "{text}");
        assert!(e.state.is_some(), "what exists is kept");
        assert!(r.log().iter().any(|l| l.starts_with("recover")));
    }

    #[tokio::test]
    async fn stop_provider_ends_a_wait_with_the_state_seen_so_far() {
        let r = Scripted::default();
        let ctx = Context::unconfigured();
        ctx.cancel.cancel();
        let e = create(&r, &ctx, &state("planned")).await.unwrap_err();
        assert_eq!(e.error, ResourceError::Cancelled);
        assert_eq!(e.state.unwrap().get("id").as_str(), Some("new"));
        let d = delete(
            &Scripted {
                deletes: Mutex::new(VecDeque::from([Deletion::InProgress("x".into())])),
                ..Default::default()
            },
            &ctx,
            &state("old"),
        )
        .await;
        assert_eq!(d, Err(ResourceError::Cancelled));
    }

    #[tokio::test]
    async fn a_delete_that_never_finishes_times_out_naming_what_is_left() {
        let r = Scripted {
            timeout: Some(Duration::from_millis(20)),
            deletes: Mutex::new(
                std::iter::repeat_n(Deletion::InProgress("still deleting Service a".into()), 100)
                    .collect(),
            ),
            ..Default::default()
        };
        let ctx = Context::unconfigured();
        let e = delete(&r, &ctx, &state("old")).await.unwrap_err();
        assert!(
            e.to_string()
                .contains("paved_scripted old to be deleted (still deleting Service a)"),
            "{e}"
        );
    }
}
