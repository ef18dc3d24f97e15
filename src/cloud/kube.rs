//! Kubernetes behind [`KubeApi`]: server-side apply with paved's field manager, get, delete,
//! list and watch, on JSON objects. Resources build their manifests as JSON (they read like the
//! YAML a platform engineer would write) and never touch client types.

use async_trait::async_trait;
use futures::{StreamExt, TryStreamExt};
use kube::api::{
    Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, WatchEvent, WatchParams,
};
use kube::discovery::ApiResource;
use serde_json::Value as Json;
use std::time::Duration;

/// The field manager every paved write uses, so ownership of fields is visible and stable.
pub const FIELD_MANAGER: &str = "paved";

/// The kinds paved manages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Namespace,
    ServiceAccount,
    Service,
    ConfigMap,
    Secret,
    Deployment,
    ReplicaSet,
    StatefulSet,
    PersistentVolumeClaim,
    Pod,
    HorizontalPodAutoscaler,
    PodDisruptionBudget,
    NetworkPolicy,
    Job,
    CronJob,
}

impl Kind {
    pub fn resource(self) -> ApiResource {
        use k8s_openapi::api as k;
        match self {
            Kind::Namespace => ApiResource::erase::<k::core::v1::Namespace>(&()),
            Kind::ServiceAccount => ApiResource::erase::<k::core::v1::ServiceAccount>(&()),
            Kind::Service => ApiResource::erase::<k::core::v1::Service>(&()),
            Kind::ConfigMap => ApiResource::erase::<k::core::v1::ConfigMap>(&()),
            Kind::Secret => ApiResource::erase::<k::core::v1::Secret>(&()),
            Kind::Deployment => ApiResource::erase::<k::apps::v1::Deployment>(&()),
            Kind::ReplicaSet => ApiResource::erase::<k::apps::v1::ReplicaSet>(&()),
            Kind::StatefulSet => ApiResource::erase::<k::apps::v1::StatefulSet>(&()),
            Kind::PersistentVolumeClaim => {
                ApiResource::erase::<k::core::v1::PersistentVolumeClaim>(&())
            }
            Kind::Pod => ApiResource::erase::<k::core::v1::Pod>(&()),
            Kind::HorizontalPodAutoscaler => {
                ApiResource::erase::<k::autoscaling::v2::HorizontalPodAutoscaler>(&())
            }
            Kind::PodDisruptionBudget => {
                ApiResource::erase::<k::policy::v1::PodDisruptionBudget>(&())
            }
            Kind::NetworkPolicy => ApiResource::erase::<k::networking::v1::NetworkPolicy>(&()),
            Kind::Job => ApiResource::erase::<k::batch::v1::Job>(&()),
            Kind::CronJob => ApiResource::erase::<k::batch::v1::CronJob>(&()),
        }
    }

    /// The API group (empty for the core group), as RBAC rules name it.
    pub fn group(self) -> String {
        self.resource().group
    }

    /// The plural resource name, as RBAC rules name it.
    pub fn plural(self) -> String {
        self.resource().plural
    }

    pub fn name(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::ServiceAccount => "ServiceAccount",
            Kind::Service => "Service",
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
            Kind::Deployment => "Deployment",
            Kind::ReplicaSet => "ReplicaSet",
            Kind::StatefulSet => "StatefulSet",
            Kind::PersistentVolumeClaim => "PersistentVolumeClaim",
            Kind::Pod => "Pod",
            Kind::HorizontalPodAutoscaler => "HorizontalPodAutoscaler",
            Kind::PodDisruptionBudget => "PodDisruptionBudget",
            Kind::NetworkPolicy => "NetworkPolicy",
            Kind::Job => "Job",
            Kind::CronJob => "CronJob",
        }
    }
}

/// The Kubernetes API verbs each [`KubeApi`] operation is authorized as: `apply` is a
/// server-side-apply PATCH, which the API server authorizes as `patch` and, when the object
/// does not exist yet, also as `create` (proven by acceptance-tests/test_rbac.py); `watch_next`
/// is a WATCH. Used to generate the controller's RBAC from what resources declare
/// ([`crate::resource::Resource::managed_kinds`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Verb {
    Get,
    List,
    Watch,
    Create,
    Update,
    Patch,
    Delete,
    /// Acting as another user (`Impersonate-User`).
    Impersonate,
}

impl Verb {
    /// The verb as RBAC spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::Impersonate => "impersonate",
        }
    }
}

/// What a resource does to one kind: the verbs of the [`KubeApi`] calls it makes on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KubeAccess {
    pub kind: Kind,
    pub verbs: &'static [Verb],
}

/// The verbs behind `apply` (create + patch), `get`, `delete` and the waits that follow them
/// ([`crate::resources::workload::await_objects`], `wait_gone`: get, then watch).
pub const MANAGE: &[Verb] = &[
    Verb::Get,
    Verb::Watch,
    Verb::Create,
    Verb::Patch,
    Verb::Delete,
];
/// [`MANAGE`] plus `list` (objects found by label, e.g. old Jobs or leftover claims).
pub const MANAGE_LISTED: &[Verb] = &[
    Verb::Get,
    Verb::List,
    Verb::Watch,
    Verb::Create,
    Verb::Patch,
    Verb::Delete,
];
/// Only read (another resource's object checked by reference).
pub const READ: &[Verb] = &[Verb::Get];

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{operation} {kind} {name}: {code} {message}")]
pub struct KubeError {
    pub operation: &'static str,
    pub kind: &'static str,
    pub name: String,
    /// HTTP status from the API server, 0 for transport errors.
    pub code: u16,
    /// The message, with the transport error's whole source chain ("client error (Connect):
    /// tcp connect error: Connection refused (os error 111)").
    pub message: String,
    pub source: Option<crate::error::Cause>,
}

impl From<KubeError> for crate::error::ResourceError {
    fn from(e: KubeError) -> Self {
        crate::error::ResourceError::Cloud {
            service: "Kubernetes",
            operation: e.operation,
            code: if e.code == 0 {
                "Unreachable".into()
            } else {
                e.code.to_string()
            },
            message: format!("{} {}: {}", e.kind, e.name, e.message),
            source: e.source,
        }
    }
}

/// Kubernetes operations. `ns` is ignored for cluster-scoped kinds; an empty `ns` in `list`
/// lists every namespace (one call, for reports across teams). Contracts: `apply` is
/// idempotent (server-side apply, forced, paved's field manager); `delete` of a missing object
/// succeeds; `watch_next` returns the object at its next change after `resource_version`, or
/// `None` when `timeout` passes or the watch must be restarted (the caller re-reads).
#[async_trait]
pub trait KubeApi: Send + Sync {
    async fn apply(&self, kind: Kind, ns: &str, obj: &Json) -> Result<Json, KubeError>;
    async fn get(&self, kind: Kind, ns: &str, name: &str) -> Result<Option<Json>, KubeError>;
    async fn delete(&self, kind: Kind, ns: &str, name: &str) -> Result<(), KubeError>;
    async fn list(
        &self,
        kind: Kind,
        ns: &str,
        label_selector: &str,
    ) -> Result<Vec<Json>, KubeError>;
    async fn watch_next(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        resource_version: &str,
        timeout: Duration,
    ) -> Result<Option<Json>, KubeError>;

    /// The user the API server authenticates this client as (from a SelfSubjectReview, once
    /// a call has connected), for the audit records' actor. None until known, or for fakes.
    fn identity(&self) -> Option<String> {
        None
    }
}

/// On whose behalf the change in progress runs, set by the front end around a verb: every
/// object paved applies during it carries these annotations, so `kubectl get -o yaml` on
/// anything paved made names who asked for it and the audit record of the change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OnBehalf {
    pub requested_by: Option<String>,
    /// The portal's request (the claim's `paved.dev/request-id`).
    pub request_id: Option<String>,
    pub change_url: Option<String>,
    /// The audit record's request id.
    pub audit_request_id: Option<String>,
    /// Send the change's API calls as this user (`Impersonate-User`): the kube-apiserver then
    /// authorizes them as the requester and logs both users. Not an annotation.
    pub impersonate: Option<String>,
}

tokio::task_local! {
    pub static ON_BEHALF: OnBehalf;
}

pub const REQUESTED_BY: &str = "paved.dev/requested-by";
pub const REQUEST_ID: &str = "paved.dev/request-id";
pub const CHANGE_URL: &str = "paved.dev/change-url";
pub const AUDIT_REQUEST_ID: &str = "paved.dev/audit-request-id";

impl OnBehalf {
    pub fn is_empty(&self) -> bool {
        *self == OnBehalf::default()
    }

    /// Adds the annotations to an object about to be applied.
    pub fn stamp(&self, obj: &mut Json) {
        let pairs = [
            (REQUESTED_BY, &self.requested_by),
            (REQUEST_ID, &self.request_id),
            (CHANGE_URL, &self.change_url),
            (AUDIT_REQUEST_ID, &self.audit_request_id),
        ];
        for (k, v) in pairs {
            if let (Some(v), Some(meta)) = (v, obj.get_mut("metadata")) {
                if !meta["annotations"].is_object() {
                    meta["annotations"] = Json::Object(Default::default());
                }
                meta["annotations"][k] = Json::String(v.clone());
            }
        }
    }

    /// The annotations of the change running in this task, if the front end set them.
    pub fn current() -> Option<OnBehalf> {
        ON_BEHALF
            .try_with(|b| b.clone())
            .ok()
            .filter(|b| !b.is_empty())
    }
}

/// Provider-level Kubernetes settings (the provider's `kubernetes` block).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct KubeSettings {
    pub config_path: Option<String>,
    pub config_context: Option<String>,
    pub host: Option<String>,
    pub token: Option<String>,
    pub cluster_ca_certificate: Option<String>,
    pub insecure: bool,
}

/// The real client (kube-rs), created on first use so plans never need a cluster.
pub struct KubeClient {
    settings: KubeSettings,
    client: tokio::sync::OnceCell<Result<kube::Client, KubeError>>,
    /// Who the API server says this client is (SelfSubjectReview), asked once.
    identity: tokio::sync::OnceCell<Option<String>>,
    /// Clients that impersonate a requester, by user, over the same connection pool.
    impersonating: std::sync::Mutex<std::collections::HashMap<String, kube::Client>>,
}

impl KubeClient {
    pub fn new(settings: KubeSettings) -> KubeClient {
        KubeClient {
            settings,
            client: tokio::sync::OnceCell::new(),
            identity: tokio::sync::OnceCell::new(),
            impersonating: Default::default(),
        }
    }

    /// A client over an existing connection: the Crossplane controller hands its own (or one
    /// built from a ProviderConfig's kubeconfig secret) to every resource it reconciles.
    pub fn with_client(client: kube::Client) -> KubeClient {
        KubeClient {
            settings: KubeSettings::default(),
            client: tokio::sync::OnceCell::new_with(Some(Ok(client))),
            identity: tokio::sync::OnceCell::new(),
            impersonating: Default::default(),
        }
    }

    async fn config(&self) -> Result<kube::Config, String> {
        let s = &self.settings;
        let mut cfg = if let Some(host) = &s.host {
            let mut c = kube::Config::new(host.parse().map_err(|e| format!("host {host:?}: {e}"))?);
            if let Some(ca) = &s.cluster_ca_certificate {
                let mut rd = std::io::BufReader::new(ca.as_bytes());
                let certs: Vec<Vec<u8>> = rustls_pemfile::certs(&mut rd)
                    .filter_map(|c| c.ok().map(|c| c.to_vec()))
                    .collect();
                if certs.is_empty() {
                    return Err("cluster_ca_certificate holds no PEM certificate".into());
                }
                c.root_cert = Some(certs);
            }
            c
        } else if s.config_path.is_some() || s.config_context.is_some() {
            let opts = kube::config::KubeConfigOptions {
                context: s.config_context.clone(),
                ..Default::default()
            };
            let kc = match &s.config_path {
                Some(p) => kube::config::Kubeconfig::read_from(p)
                    .map_err(|e| format!("kubeconfig {p}: {e}"))?,
                None => kube::config::Kubeconfig::read().map_err(|e| e.to_string())?,
            };
            kube::Config::from_custom_kubeconfig(kc, &opts)
                .await
                .map_err(|e| e.to_string())?
        } else {
            kube::Config::infer().await.map_err(|e| e.to_string())?
        };
        if let Some(t) = &s.token {
            cfg.auth_info.token = Some(t.clone().into());
        }
        if s.insecure {
            cfg.accept_invalid_certs = true;
        }
        cfg.read_timeout = Some(Duration::from_secs(330));
        Ok(cfg)
    }

    async fn client(&self) -> Result<kube::Client, KubeError> {
        self.client
            .get_or_init(|| async {
                let cfg = self.config().await.map_err(|m| KubeError {
                    operation: "connect",
                    kind: "cluster",
                    name: String::new(),
                    code: 0,
                    message: format!("cannot build a Kubernetes client: {m}"),
                    source: None,
                })?;
                kube::Client::try_from(cfg).map_err(|e| KubeError {
                    operation: "connect",
                    kind: "cluster",
                    name: String::new(),
                    code: 0,
                    message: crate::error::chain(&e),
                    source: Some(crate::error::Cause::new(e)),
                })
            })
            .await
            .clone()
    }

    async fn api(&self, kind: Kind, ns: &str) -> Result<Api<DynamicObject>, KubeError> {
        let mut c = self.client().await?;
        self.identity.get_or_init(|| who_am_i(c.clone())).await;
        if let Some(user) = OnBehalf::current().and_then(|b| b.impersonate) {
            c = self.impersonating(c, &user)?;
        }
        let ar = kind.resource();
        Ok(if kind == Kind::Namespace || ns.is_empty() {
            Api::all_with(c, &ar)
        } else {
            Api::namespaced_with(c, ns, &ar)
        })
    }
}

impl KubeClient {
    /// A client whose every request carries `Impersonate-User: user`.
    fn impersonating(&self, base: kube::Client, user: &str) -> Result<kube::Client, KubeError> {
        let mut cache = self.impersonating.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cache.get(user) {
            return Ok(c.clone());
        }
        let value = http::HeaderValue::from_str(user).map_err(|e| KubeError {
            operation: "impersonate",
            kind: "user",
            name: user.to_string(),
            code: 0,
            message: format!("{user:?} cannot be sent as Impersonate-User: {e}"),
            source: None,
        })?;
        let ns = base.default_namespace().to_string();
        let svc = tower::service_fn(move |mut req: http::Request<kube::client::Body>| {
            let (base, value) = (base.clone(), value.clone());
            async move {
                req.headers_mut().insert("impersonate-user", value);
                base.send(req).await
            }
        });
        let c = kube::Client::new(svc, ns);
        cache.insert(user.to_string(), c.clone());
        Ok(c)
    }
}

/// The authenticated user, from a SelfSubjectReview (GA in Kubernetes 1.28). Older clusters
/// or a forbidden review leave the actor unnamed rather than failing the change.
async fn who_am_i(c: kube::Client) -> Option<String> {
    let body = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "authentication.k8s.io/v1",
        "kind": "SelfSubjectReview",
    }))
    .ok()?;
    let req = http::Request::post("/apis/authentication.k8s.io/v1/selfsubjectreviews")
        .header("content-type", "application/json")
        .body(body)
        .ok()?;
    match c.request::<Json>(req).await {
        Ok(r) => r["status"]["userInfo"]["username"]
            .as_str()
            .map(String::from),
        Err(e) => {
            tracing::debug!(error = %e, "SelfSubjectReview failed; the audit actor omits the Kubernetes user");
            None
        }
    }
}

fn kerr(operation: &'static str, kind: Kind, name: &str, e: kube::Error) -> KubeError {
    // Transport errors carry their cause in the source chain ("client error (Connect)" alone
    // says nothing), so walk it, as the EC2 client does.
    let (code, message) = match &e {
        kube::Error::Api(s) => (s.code, s.message.clone()),
        other => (0, crate::error::chain(other)),
    };
    KubeError {
        operation,
        kind: kind.name(),
        name: name.to_string(),
        code,
        message,
        source: Some(crate::error::Cause::new(e)),
    }
}

fn to_json(o: DynamicObject) -> Json {
    serde_json::to_value(o).unwrap_or(Json::Null)
}

#[async_trait]
impl KubeApi for KubeClient {
    fn identity(&self) -> Option<String> {
        self.identity.get().cloned().flatten()
    }

    async fn apply(&self, kind: Kind, ns: &str, obj: &Json) -> Result<Json, KubeError> {
        let name = obj["metadata"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let api = self.api(kind, ns).await?;
        let pp = PatchParams::apply(FIELD_MANAGER).force();
        let stamped;
        let obj = match OnBehalf::current() {
            Some(b) => {
                let mut o = obj.clone();
                b.stamp(&mut o);
                stamped = o;
                &stamped
            }
            None => obj,
        };
        api.patch(&name, &pp, &Patch::Apply(obj))
            .await
            .map(to_json)
            .map_err(|e| kerr("apply", kind, &name, e))
    }

    async fn get(&self, kind: Kind, ns: &str, name: &str) -> Result<Option<Json>, KubeError> {
        let api = self.api(kind, ns).await?;
        api.get_opt(name)
            .await
            .map(|o| o.map(to_json))
            .map_err(|e| kerr("get", kind, name, e))
    }

    async fn delete(&self, kind: Kind, ns: &str, name: &str) -> Result<(), KubeError> {
        let api = self.api(kind, ns).await?;
        // Foreground: dependants (ReplicaSets, Pods) go first, so "gone" means really gone.
        match api.delete(name, &DeleteParams::foreground()).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
            Err(e) => Err(kerr("delete", kind, name, e)),
        }
    }

    async fn list(
        &self,
        kind: Kind,
        ns: &str,
        label_selector: &str,
    ) -> Result<Vec<Json>, KubeError> {
        let api = self.api(kind, ns).await?;
        api.list(&ListParams::default().labels(label_selector))
            .await
            .map(|l| l.items.into_iter().map(to_json).collect())
            .map_err(|e| kerr("list", kind, label_selector, e))
    }

    async fn watch_next(
        &self,
        kind: Kind,
        ns: &str,
        name: &str,
        resource_version: &str,
        timeout: Duration,
    ) -> Result<Option<Json>, KubeError> {
        let api = self.api(kind, ns).await?;
        let secs = timeout.as_secs().clamp(1, 290) as u32;
        let wp = WatchParams::default()
            .fields(&format!("metadata.name={name}"))
            .timeout(secs);
        let stream = api
            .watch(&wp, resource_version)
            .await
            .map_err(|e| kerr("watch", kind, name, e))?;
        let mut stream = stream.boxed();
        let next = tokio::time::timeout(timeout, stream.try_next()).await;
        match next {
            Err(_) | Ok(Ok(None)) => Ok(None),
            Ok(Err(e)) => Err(kerr("watch", kind, name, e)),
            Ok(Ok(Some(ev))) => Ok(match ev {
                WatchEvent::Added(o) | WatchEvent::Modified(o) => Some(to_json(o)),
                WatchEvent::Deleted(_) => Some(Json::Null),
                // Bookmarks and expired resource versions: the caller re-reads and re-watches.
                WatchEvent::Bookmark(_) | WatchEvent::Error(_) => None,
            }),
        }
    }
}

#[cfg(test)]
mod on_behalf_tests {
    use super::*;

    #[tokio::test]
    async fn a_change_stamps_who_asked_on_every_object_it_applies() {
        let b = OnBehalf {
            requested_by: Some("user:default/ada".into()),
            request_id: None,
            change_url: Some("https://git.example.com/pr/1".into()),
            audit_request_id: Some("r-1".into()),
            impersonate: None,
        };
        let mut o = serde_json::json!({"metadata": {"name": "x", "annotations": {"keep": "1"}}});
        b.stamp(&mut o);
        let a = &o["metadata"]["annotations"];
        assert_eq!(
            (a["keep"].as_str(), a[REQUESTED_BY].as_str()),
            (Some("1"), Some("user:default/ada"))
        );
        assert_eq!(a[AUDIT_REQUEST_ID], "r-1");
        assert!(a.get(REQUEST_ID).is_none(), "unset keys are not written");
        let mut bare = serde_json::json!({"metadata": {"name": "y"}});
        b.stamp(&mut bare);
        assert_eq!(
            bare["metadata"]["annotations"][CHANGE_URL],
            "https://git.example.com/pr/1"
        );
        assert!(
            OnBehalf::current().is_none(),
            "outside a change nothing is stamped"
        );
        let inside = ON_BEHALF
            .scope(b.clone(), async { OnBehalf::current() })
            .await;
        assert_eq!(inside, Some(b));
    }
}
