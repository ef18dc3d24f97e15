//! A scripted, in-memory Kubernetes API for the reconciler's unit tests: a `kube::Client` whose
//! requests are answered by a map of objects instead of an API server. It models the parts of
//! the API the reconciler relies on — GET / POST / DELETE, JSON merge patches with the
//! `resourceVersion` precondition (409 on a stale copy), server-side apply of the status
//! subresource, `metadata.generation` bumped by spec changes only, and an object with a
//! deletion timestamp disappearing once its last finalizer is removed — and records every
//! request, so a test can say which writes a reconcile made. What it leaves out (field
//! ownership, admission, watches, label selectors) is what the acceptance tests run against
//! the real control plane for.

use http::{Request, Response, StatusCode};
use kube::client::Body;
use serde_json::{json, Value as J};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(Default)]
struct Store {
    objects: BTreeMap<String, J>,
    requests: Vec<String>,
    events: Vec<J>,
    version: u64,
}

#[derive(Clone, Default)]
pub struct FakeApi {
    store: Arc<Mutex<Store>>,
}

/// RFC 7386 JSON merge patch.
fn merge(target: &mut J, patch: &J) {
    match patch {
        J::Object(p) => {
            if !target.is_object() {
                *target = json!({});
            }
            let t = target.as_object_mut().expect("made an object above");
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge(t.entry(k.clone()).or_insert(J::Null), v);
                }
            }
        }
        other => *target = other.clone(),
    }
}

fn status(code: StatusCode, reason: &str, message: String) -> Response<Body> {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string().into_bytes()))
        .expect("static response parts")
}

fn ok(code: StatusCode, obj: &J) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(obj.to_string().into_bytes()))
        .expect("static response parts")
}

impl Store {
    fn stamp(&mut self, obj: &mut J, spec_before: Option<&J>) {
        self.version += 1;
        obj["metadata"]["resourceVersion"] = json!(self.version.to_string());
        let generation = obj["metadata"]["generation"].as_i64().unwrap_or(0);
        if generation == 0 || spec_before.is_some_and(|s| *s != obj["spec"]) {
            obj["metadata"]["generation"] = json!(generation + 1);
        }
        if obj["metadata"]["uid"].is_null() {
            obj["metadata"]["uid"] = json!(format!("uid-{}", self.version));
        }
    }

    /// Stores `obj` at `path`, unless it is being deleted and has no finalizer left (then it
    /// is gone, as with the API server).
    fn keep(&mut self, path: &str, obj: J) {
        let finalizers = obj["metadata"]["finalizers"]
            .as_array()
            .is_some_and(|f| !f.is_empty());
        if obj["metadata"]["deletionTimestamp"].is_string() && !finalizers {
            self.objects.remove(path);
        } else {
            self.objects.insert(path.to_string(), obj);
        }
    }

    fn handle(&mut self, method: &str, path: &str, content_type: &str, body: J) -> Response<Body> {
        self.requests.push(format!("{method} {path}"));
        let (object_path, subresource) = match path.strip_suffix("/status") {
            Some(p) => (p.to_string(), true),
            None => (path.to_string(), false),
        };
        if path.contains("/events") {
            if method == "POST" {
                self.events.push(body.clone());
                return ok(StatusCode::CREATED, &body);
            }
            return status(
                StatusCode::NOT_FOUND,
                "NotFound",
                "events are not kept".into(),
            );
        }
        match method {
            "GET" => match self.objects.get(&object_path) {
                Some(o) => ok(StatusCode::OK, o),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{object_path} not found"),
                ),
            },
            "DELETE" => match self.objects.remove(&object_path) {
                Some(o) => ok(StatusCode::OK, &o),
                None => status(
                    StatusCode::NOT_FOUND,
                    "NotFound",
                    format!("{object_path} not found"),
                ),
            },
            "POST" => {
                let name = body["metadata"]["name"].as_str().unwrap_or_default();
                let full = format!("{object_path}/{name}");
                if self.objects.contains_key(&full) {
                    return status(
                        StatusCode::CONFLICT,
                        "AlreadyExists",
                        format!("{full} exists"),
                    );
                }
                let mut obj = body;
                self.stamp(&mut obj, None);
                self.objects.insert(full, obj.clone());
                ok(StatusCode::CREATED, &obj)
            }
            "PATCH" if content_type.starts_with("application/apply-patch") => {
                let existing = self.objects.get(&object_path).cloned();
                let mut obj = existing.clone().unwrap_or_else(|| {
                    let mut o = body.clone();
                    o["status"] = J::Null;
                    o
                });
                if subresource {
                    // One field manager applies the whole status: what it leaves out is gone.
                    obj["status"] = body["status"].clone();
                } else {
                    let keep_status = obj["status"].clone();
                    let meta = obj["metadata"].clone();
                    obj = body.clone();
                    obj["status"] = keep_status;
                    for k in ["resourceVersion", "generation", "uid", "finalizers"] {
                        if !meta[k].is_null() {
                            obj["metadata"][k] = meta[k].clone();
                        }
                    }
                }
                let spec_before = existing.as_ref().map(|e| e["spec"].clone());
                self.stamp(&mut obj, spec_before.as_ref());
                self.keep(&object_path, obj.clone());
                ok(StatusCode::OK, &obj)
            }
            "PATCH" => {
                let Some(mut obj) = self.objects.get(&object_path).cloned() else {
                    return status(
                        StatusCode::NOT_FOUND,
                        "NotFound",
                        format!("{object_path} not found"),
                    );
                };
                let want = &body["metadata"]["resourceVersion"];
                if !want.is_null() && *want != obj["metadata"]["resourceVersion"] {
                    return status(
                        StatusCode::CONFLICT,
                        "Conflict",
                        "the object has been modified; please apply your changes to the latest version".into(),
                    );
                }
                let spec_before = obj["spec"].clone();
                let mut patch = body;
                if let Some(m) = patch.get_mut("metadata").and_then(J::as_object_mut) {
                    m.remove("resourceVersion");
                }
                merge(&mut obj, &patch);
                self.stamp(&mut obj, Some(&spec_before));
                self.keep(&object_path, obj.clone());
                ok(StatusCode::OK, &obj)
            }
            other => status(
                StatusCode::METHOD_NOT_ALLOWED,
                "MethodNotAllowed",
                format!("{other} is not modelled"),
            ),
        }
    }
}

impl FakeApi {
    pub fn new() -> FakeApi {
        FakeApi::default()
    }

    /// A client whose every request this fake answers.
    pub fn client(&self) -> kube::Client {
        let store = self.store.clone();
        let svc = tower::service_fn(move |req: Request<Body>| {
            let store = store.clone();
            async move {
                let method = req.method().as_str().to_string();
                let path = req.uri().path().to_string();
                let content_type = req
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let bytes = req.into_body().collect_bytes().await.unwrap_or_default();
                let body: J = serde_json::from_slice(&bytes).unwrap_or(J::Null);
                let resp = store.lock().unwrap_or_else(|e| e.into_inner()).handle(
                    &method,
                    &path,
                    &content_type,
                    body,
                );
                Ok::<_, std::convert::Infallible>(resp)
            }
        });
        kube::Client::new(svc, "default")
    }

    /// Puts an object at its API path (as a test's starting point), stamped like a create.
    pub fn put(&self, path: &str, mut obj: J) -> J {
        let mut s = self.store.lock().unwrap_or_else(|e| e.into_inner());
        s.stamp(&mut obj, None);
        s.objects.insert(path.to_string(), obj.clone());
        obj
    }

    /// Changes an object in place (a user's edit), bumping its version like the API server.
    pub fn edit(&self, path: &str, f: impl FnOnce(&mut J)) -> J {
        let mut s = self.store.lock().unwrap_or_else(|e| e.into_inner());
        let mut obj = s
            .objects
            .get(path)
            .cloned()
            .expect("edit of a missing object");
        let before = obj["spec"].clone();
        f(&mut obj);
        s.stamp(&mut obj, Some(&before));
        s.keep(path, obj.clone());
        obj
    }

    pub fn get(&self, path: &str) -> Option<J> {
        let s = self.store.lock().unwrap_or_else(|e| e.into_inner());
        s.objects.get(path).cloned()
    }

    /// Every request so far, as `METHOD /path`; cleared by [`FakeApi::take_requests`].
    pub fn take_requests(&self) -> Vec<String> {
        std::mem::take(
            &mut self
                .store
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .requests,
        )
    }

    /// The `reason` of every event recorded so far.
    pub fn event_reasons(&self) -> Vec<String> {
        let s = self.store.lock().unwrap_or_else(|e| e.into_inner());
        s.events
            .iter()
            .map(|e| e["reason"].as_str().unwrap_or_default().to_string())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::api::{Api, DynamicObject, Patch, PatchParams};
    use kube::ResourceExt;

    #[tokio::test]
    async fn merge_patches_honour_the_resource_version_and_generation_follows_the_spec() {
        let fake = FakeApi::new();
        let ar = super::super::provider_config::api_resource();
        let path = "/apis/paved.dev/v1alpha1/providerconfigs/default";
        let put = fake.put(
            path,
            json!({"apiVersion": "paved.dev/v1alpha1", "kind": "ProviderConfig",
                   "metadata": {"name": "default"}, "spec": {"a": 1}}),
        );
        let api: Api<DynamicObject> = Api::all_with(fake.client(), &ar);
        let o = api.get("default").await.unwrap();
        assert_eq!(o.metadata.generation, Some(1));
        let stale = json!({"metadata": {"resourceVersion": "0", "annotations": {"x": "1"}}});
        let e = api
            .patch("default", &PatchParams::default(), &Patch::Merge(&stale))
            .await
            .unwrap_err();
        assert!(matches!(e, kube::Error::Api(s) if s.code == 409));
        let fresh = json!({"metadata": {"resourceVersion": put["metadata"]["resourceVersion"], "annotations": {"x": "1"}}});
        let o = api
            .patch("default", &PatchParams::default(), &Patch::Merge(&fresh))
            .await
            .unwrap();
        assert_eq!(o.metadata.generation, Some(1), "metadata only");
        let o = api
            .patch(
                "default",
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": {"a": 2}})),
            )
            .await
            .unwrap();
        assert_eq!(o.metadata.generation, Some(2), "{:?}", fake.get(path));
        assert_eq!(o.annotations()["x"], "1");
        assert!(api.get_opt("other").await.unwrap().is_none());
    }
}
