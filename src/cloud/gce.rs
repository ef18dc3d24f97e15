//! Google Compute Engine behind [`GceApi`], with the operations a GPU pool needs (instance
//! templates, one regional managed instance group, the catalog lists, operation waits) rather
//! than the API's whole surface. Resources and the Crossplane front end see only the types
//! here, never an SDK's.
//!
//! [`GceClient`] is a small REST client over the HTTP stack paved already links (hyper 1,
//! hyper-util, hyper-rustls with aws-lc-rs): the official `google-cloud-compute-v1` crate was
//! measured and judged out of proportion for ~15 endpoints (see the pool's GCP notes in
//! CHANGELOG). The wire format is Compute's v1 REST API: JSON bodies, `requestId` on every
//! write, long-running operations waited on through `operations/{name}/wait`.

use async_trait::async_trait;
use serde_json::{json, Value as Json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;

/// The default API root; paths are `/compute/v1/...` below it.
pub const DEFAULT_ENDPOINT: &str = "https://compute.googleapis.com";

/// Label keys that tie GCP objects to a pool (GCP label keys allow only lowercase letters,
/// digits, `_` and `-`: the GCP-safe form of the AWS tag `paved:pool-id`).
pub const POOL_LABEL: &str = "paved-pool-id";

/// Provider-level GCP settings (the provider's `gcp` block).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcpSettings {
    pub project: Option<String>,
    pub region: Option<String>,
    /// Sensitive: a service-account key or other Google credentials JSON (or a path to one),
    /// or an OAuth 2 access token. None: the environment and application default
    /// credentials, see [`super::gcp_auth`].
    pub credentials: Option<String>,
    /// API root, e.g. `http://127.0.0.1:18090` for the local Compute API.
    pub endpoint: Option<String>,
}

/// What kind of failure an error is, so callers decide without string matching.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GceErrorKind {
    /// The zone has no room for this shape now (`ZONE_RESOURCE_POOL_EXHAUSTED[_WITH_DETAILS]`).
    Stockout,
    /// A quota would be exceeded (`QUOTA_EXCEEDED`, `quotaExceeded`).
    Quota,
    NotFound,
    AlreadyExists,
    /// A template still used by a group (`resourceInUseByAnotherResource`).
    InUse,
    /// The object is busy (being deleted, an operation in flight): try again later.
    NotReady,
    /// Worth retrying: 429, 5xx, a transport error or a timeout.
    Transient,
    /// The request is wrong (400 `invalid`, 412, unsupported shape, …).
    Invalid,
    /// No credentials for a non-loopback endpoint, or 401/403.
    Unauthenticated,
    Other,
}

/// A Compute API error: the HTTP status (0 for transport errors and failed operations), the
/// Google error reason or operation error code, and the message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{operation}: {code}: {message}")]
pub struct GceError {
    pub operation: &'static str,
    pub status: u16,
    pub code: String,
    pub message: String,
    pub kind: GceErrorKind,
}

impl GceError {
    pub fn new(operation: &'static str, status: u16, code: &str, message: &str) -> GceError {
        GceError {
            operation,
            status,
            code: code.to_string(),
            message: message.to_string(),
            kind: classify(status, code),
        }
    }
    /// Errors that mean "this zone or machine type has no room now": try the next option.
    pub fn is_capacity(&self) -> bool {
        matches!(self.kind, GceErrorKind::Stockout | GceErrorKind::Quota)
    }
    pub fn is_not_found(&self) -> bool {
        self.kind == GceErrorKind::NotFound
    }
    pub fn is_transient(&self) -> bool {
        matches!(self.kind, GceErrorKind::Transient | GceErrorKind::NotReady)
    }
}

/// Classifies an HTTP error reason (camelCase, e.g. `notFound`) or an operation error code
/// (UPPER_SNAKE, e.g. `ZONE_RESOURCE_POOL_EXHAUSTED`).
pub fn classify(status: u16, code: &str) -> GceErrorKind {
    // A 401 is always about the credentials, whatever its reason (Google sends `required`
    // for a missing one, which would otherwise read as a bad request).
    if status == 401 {
        return GceErrorKind::Unauthenticated;
    }
    match code {
        "ZONE_RESOURCE_POOL_EXHAUSTED" | "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS" => {
            GceErrorKind::Stockout
        }
        "QUOTA_EXCEEDED" | "quotaExceeded" => GceErrorKind::Quota,
        "notFound" | "RESOURCE_NOT_FOUND" => GceErrorKind::NotFound,
        "alreadyExists" | "RESOURCE_ALREADY_EXISTS" => GceErrorKind::AlreadyExists,
        "resourceInUseByAnotherResource" | "RESOURCE_IN_USE_BY_ANOTHER_RESOURCE" => {
            GceErrorKind::InUse
        }
        "resourceNotReady" | "RESOURCE_NOT_READY" => GceErrorKind::NotReady,
        "rateLimitExceeded" | "userRateLimitExceeded" | "backendError" | "internalError" => {
            GceErrorKind::Transient
        }
        "UNSUPPORTED_OPERATION"
        | "INVALID_FIELD_VALUE"
        | "invalid"
        | "conditionNotMet"
        | "badRequest"
        | "required"
        | "parseError" => GceErrorKind::Invalid,
        _ => match status {
            0 => GceErrorKind::Other,
            401 | 403 => GceErrorKind::Unauthenticated,
            404 => GceErrorKind::NotFound,
            409 => GceErrorKind::AlreadyExists,
            429 | 500..=599 => GceErrorKind::Transient,
            400 | 412 => GceErrorKind::Invalid,
            _ => GceErrorKind::Other,
        },
    }
}

impl From<GceError> for crate::error::ResourceError {
    fn from(e: GceError) -> Self {
        if e.kind == GceErrorKind::Unauthenticated {
            return crate::error::ResourceError::failed(
                "Google Cloud refused the credentials",
                format!("Compute Engine {}: {}", e.operation, e.message),
            );
        }
        crate::error::ResourceError::Cloud {
            service: "Compute Engine",
            operation: e.operation,
            code: e.code,
            message: e.message,
            source: None,
        }
    }
}

/// A deterministic `requestId` (Google wants a non-zero UUID): SHA-256 of the pool ID, the
/// operation and its content, shaped as an RFC 4122 UUID (version 5 style, name-based). The
/// same intent retried after a crash or a lost answer gets the same ID, so Google applies it
/// once. Callers put in the content whatever makes a *new* intent differ from an old one
/// (e.g. the group's fingerprint before a resize), since Google remembers IDs for a while.
pub fn request_id(pool_id: &str, operation: &str, content: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in std::iter::once(pool_id)
        .chain(std::iter::once(operation))
        .chain(content.iter().copied())
    {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let d = h.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    crate::ids::uuid(b, 5)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpScope {
    Global,
    Region(String),
    Zone(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpStatus {
    Pending,
    Running,
    Done,
}

/// A long-running operation as Compute reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    pub name: String,
    pub scope: OpScope,
    pub status: OpStatus,
    pub operation_type: String,
    pub target_link: String,
    /// The first error of a failed (DONE) operation, classified.
    pub error: Option<GceError>,
}

impl Operation {
    pub fn is_done(&self) -> bool {
        self.status == OpStatus::Done
    }
    /// Ok when DONE without error; the error when DONE with one; NotReady while running.
    pub fn result(&self) -> Result<(), GceError> {
        match (&self.error, self.status) {
            (Some(e), _) => Err(e.clone()),
            (None, OpStatus::Done) => Ok(()),
            (None, _) => Err(GceError::new(
                "Operation",
                0,
                "RESOURCE_NOT_READY",
                &format!("operation {} is not done yet", self.name),
            )),
        }
    }
}

/// What an instance template holds (paved writes exactly these fields).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TemplateSpec {
    pub name: String,
    pub description: String,
    pub machine_type: String,
    /// `guestAccelerators` (N1 + T4/V100); empty for machine types with built-in GPUs.
    pub accelerator: Option<(String, u32)>,
    pub spot: bool,
    /// Boot image link, e.g. `projects/deeplearning-platform-release/global/images/family/...`.
    pub image: String,
    pub boot_disk_gb: u32,
    /// Instance labels (GCP-safe keys and values).
    pub labels: BTreeMap<String, String>,
    /// Instance metadata (e.g. `startup-script`).
    pub metadata: BTreeMap<String, String>,
    /// Network link; `global/networks/default` when None.
    pub network: Option<String>,
}

/// An instance template as read back.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InstanceTemplate {
    pub name: String,
    pub id: String,
    pub self_link: String,
    pub machine_type: String,
    pub accelerator: Option<(String, u32)>,
    pub spot: bool,
    pub on_host_maintenance: String,
    pub image: String,
    pub boot_disk_gb: Option<u32>,
    pub labels: BTreeMap<String, String>,
    pub metadata: BTreeMap<String, String>,
}

/// What paved writes into a regional managed instance group.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupSpec {
    pub name: String,
    pub base_instance_name: String,
    /// Template name (global template of the same project).
    pub template: String,
    pub target_size: u32,
    pub zones: Vec<String>,
    /// `distributionPolicy.targetShape`: EVEN, BALANCED, ANY or ANY_SINGLE_ZONE.
    pub target_shape: String,
    /// Machine types by preference for `instanceFlexibilityPolicy` (empty: the template's).
    pub machine_types: Vec<String>,
    pub description: String,
}

/// `currentActions` counters of a group.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct GroupActions {
    pub creating: u32,
    pub deleting: u32,
    pub recreating: u32,
    pub none: u32,
    pub other: u32,
}

/// A regional managed instance group as read back.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Group {
    pub name: String,
    pub id: String,
    pub self_link: String,
    /// Name of the template of the group's (first) version.
    pub template: String,
    pub target_size: u32,
    pub zones: Vec<String>,
    pub target_shape: String,
    pub machine_types: Vec<String>,
    pub base_instance_name: String,
    pub is_stable: bool,
    pub version_target_reached: bool,
    pub actions: GroupActions,
    pub fingerprint: String,
    pub description: String,
}

/// One instance of a group (`listManagedInstances`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManagedInstance {
    pub name: String,
    pub zone: String,
    /// Instance status (RUNNING, PROVISIONING, …); None while the VM does not exist yet.
    pub status: Option<String>,
    /// CREATING, DELETING, RECREATING, NONE, …
    pub current_action: String,
    /// Template name of the instance's version.
    pub template: String,
    pub machine_type: Option<String>,
    /// Errors of the last creation attempt (e.g. a stockout), classified.
    pub last_errors: Vec<GceError>,
}

impl ManagedInstance {
    pub fn is_running(&self) -> bool {
        self.status.as_deref() == Some("RUNNING") && self.current_action == "NONE"
    }
}

/// A VM paved's pools run, as the cost report reads it (`instances.aggregatedList`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Vm {
    pub name: String,
    pub zone: String,
    pub machine_type: String,
    /// RUNNING, PROVISIONING, STAGING, STOPPING, TERMINATED, …
    pub status: String,
    pub labels: BTreeMap<String, String>,
    /// `scheduling.provisioningModel` SPOT (or the older `preemptible`).
    pub spot: bool,
    /// Guest accelerator type and count (N1 + T4/V100); None for machine types with built-in GPUs.
    pub accelerator: Option<(String, u32)>,
}

impl Vm {
    /// Billed: not stopped, terminated or on its way there.
    pub fn is_billed(&self) -> bool {
        !matches!(
            self.status.as_str(),
            "TERMINATED" | "STOPPED" | "STOPPING" | "SUSPENDED"
        )
    }
}

/// An entry of a group's `listErrors`.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupError {
    pub error: GceError,
    pub action: String,
    pub zone: Option<String>,
    pub instance: Option<String>,
    pub timestamp: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct MachineType {
    pub name: String,
    pub zone: String,
    pub guest_cpus: u32,
    pub memory_mb: u64,
    /// Built-in GPUs (A2/A3/G2).
    pub accelerators: Vec<(String, u32)>,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct AcceleratorType {
    pub name: String,
    pub zone: String,
    pub max_cards_per_instance: u32,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Zone {
    pub name: String,
    pub region: String,
    pub status: String,
}

/// The Compute operations paved uses, for one project and region. Contracts: every call is
/// one API request (plus pagination for lists, plus bounded retries of transient failures);
/// writes return the operation without waiting (use [`GceApi::wait_operation`]); `get_*`
/// return None for "not found"; deletes return None when the object is already gone.
#[async_trait]
pub trait GceApi: Send + Sync {
    fn project(&self) -> &str;
    fn region(&self) -> &str;

    async fn insert_template(
        &self,
        spec: &TemplateSpec,
        request_id: &str,
    ) -> Result<Operation, GceError>;
    async fn get_template(&self, name: &str) -> Result<Option<InstanceTemplate>, GceError>;
    /// Global templates whose name starts with `prefix` (one filtered list call per page).
    async fn list_templates(&self, prefix: &str) -> Result<Vec<InstanceTemplate>, GceError>;
    async fn delete_template(
        &self,
        name: &str,
        request_id: &str,
    ) -> Result<Option<Operation>, GceError>;

    async fn insert_group(&self, spec: &GroupSpec, request_id: &str)
        -> Result<Operation, GceError>;
    async fn get_group(&self, name: &str) -> Result<Option<Group>, GceError>;
    async fn delete_group(
        &self,
        name: &str,
        request_id: &str,
    ) -> Result<Option<Operation>, GceError>;
    async fn resize_group(
        &self,
        name: &str,
        size: u32,
        request_id: &str,
    ) -> Result<Operation, GceError>;
    /// Patches the group's version to `template` (a rolling replacement, in place).
    async fn set_group_template(
        &self,
        name: &str,
        template: &str,
        request_id: &str,
    ) -> Result<Operation, GceError>;
    /// Patches the group's description (where paved keeps the pool's node bounds).
    async fn set_group_description(
        &self,
        name: &str,
        description: &str,
        request_id: &str,
    ) -> Result<Operation, GceError>;
    async fn list_managed_instances(&self, name: &str) -> Result<Vec<ManagedInstance>, GceError>;
    /// The newest `max` entries of the group's `listErrors`.
    async fn list_group_errors(&self, name: &str, max: u32) -> Result<Vec<GroupError>, GceError>;

    /// Every VM of the project carrying paved's pool label, in every zone: one paginated
    /// `instances.aggregatedList` (the live cost report's read, O(1) calls per project).
    async fn pool_instances(&self) -> Result<Vec<Vm>, GceError>;

    /// Zones of this client's region.
    async fn list_zones(&self) -> Result<Vec<Zone>, GceError>;
    async fn list_machine_types(&self, zone: &str) -> Result<Vec<MachineType>, GceError>;
    async fn list_accelerator_types(&self, zone: &str) -> Result<Vec<AcceleratorType>, GceError>;

    /// Waits for `op` (through `operations/{name}/wait`) until DONE or `timeout`; returns the
    /// operation as last seen, DONE or not.
    async fn wait_operation(
        &self,
        op: &Operation,
        timeout: Duration,
    ) -> Result<Operation, GceError>;
}

// ---- the REST client -------------------------------------------------------------------

use crate::delivery::HttpClient;

/// The real client: Compute's REST API for one project and region.
pub struct GceClient {
    base: String,
    project: String,
    region: String,
    auth: super::gcp_auth::Authenticator,
    http: HttpClient,
    request_timeout: Duration,
    retries: u32,
}

/// Whether `endpoint` names this machine (127.0.0.0/8, localhost, [::1]).
pub fn is_loopback(endpoint: &str) -> bool {
    let rest = endpoint
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(endpoint);
    let authority = rest.split('/').next().unwrap_or("");
    let host = if let Some(h) = authority.strip_prefix('[') {
        h.split(']').next().unwrap_or("")
    } else {
        authority
            .rsplit_once(':')
            .map(|(h, _)| h)
            .unwrap_or(authority)
    };
    host == "localhost"
        || host == "::1"
        || host
            .parse::<std::net::Ipv4Addr>()
            .map(|ip| ip.is_loopback())
            .unwrap_or(false)
}

fn transport(operation: &'static str, e: impl std::fmt::Display) -> GceError {
    GceError::new(operation, 0, "transport", &e.to_string()).with_kind(GceErrorKind::Transient)
}

impl GceError {
    pub(crate) fn with_kind(mut self, kind: GceErrorKind) -> GceError {
        self.kind = kind;
        self
    }
}

impl GceClient {
    /// A client for `project`/`region`. Credentials are chosen as [`super::gcp_auth`]
    /// describes (a loopback endpoint without any goes unauthenticated, as the local Compute
    /// API expects); a malformed credentials document is an error here, before any request.
    pub fn new(settings: &GcpSettings, project: &str, region: &str) -> Result<GceClient, GceError> {
        let endpoint = settings
            .endpoint
            .clone()
            .filter(|e| !e.is_empty())
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_string());
        let source = super::gcp_auth::resolve(settings.credentials.as_deref(), &endpoint, |k| {
            std::env::var(k).ok()
        })?;
        tracing::debug!(project, region, credentials = %source.describe(), "Compute Engine client");
        let auth = super::gcp_auth::Authenticator::new(source);
        let http = crate::delivery::https_client();
        Ok(GceClient {
            base: format!("{}/compute/v1/", endpoint.trim_end_matches('/')),
            project: project.to_string(),
            region: region.to_string(),
            auth,
            http,
            request_timeout: Duration::from_secs(60),
            retries: 4,
        })
    }

    /// Retries of transient failures per call (default 4; 0 for fault-injection tests).
    pub fn with_retries(mut self, retries: u32) -> GceClient {
        self.retries = retries;
        self
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut u = format!("{}projects/{}/{}", self.base, self.project, path);
        for (i, (k, v)) in query.iter().enumerate() {
            u.push(if i == 0 { '?' } else { '&' });
            u.push_str(k);
            u.push('=');
            u.push_str(&encode(v));
        }
        u
    }

    async fn once(
        &self,
        operation: &'static str,
        method: &hyper::Method,
        url: &str,
        body: Option<&Json>,
        timeout: Duration,
    ) -> Result<Json, GceError> {
        use http_body_util::BodyExt;
        let mut req = hyper::Request::builder()
            .method(method.clone())
            .uri(url)
            .header("accept", "application/json")
            .header("user-agent", concat!("paved/", env!("CARGO_PKG_VERSION")));
        for (k, v) in self.auth.headers().await.map_err(|mut e| {
            e.operation = operation;
            e
        })? {
            req = req.header(k, v);
        }
        let data = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                bytes::Bytes::from(serde_json::to_vec(b).expect("JSON serializes"))
            }
            None => bytes::Bytes::new(),
        };
        let req = req
            .body(http_body_util::Full::new(data))
            .map_err(|e| transport(operation, e))?;
        let resp = tokio::time::timeout(timeout, self.http.request(req))
            .await
            .map_err(|_| transport(operation, format!("no answer within {timeout:?}")))?
            .map_err(|e| transport(operation, crate::error::chain(&e)))?;
        let status = resp.status().as_u16();
        let bytes = tokio::time::timeout(timeout, resp.into_body().collect())
            .await
            .map_err(|_| transport(operation, "body timed out"))?
            .map_err(|e| transport(operation, e))?
            .to_bytes();
        let parsed: Json = if bytes.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                GceError::new(
                    operation,
                    status,
                    "badResponse",
                    &format!(
                        "answer is not JSON ({e}): {}",
                        String::from_utf8_lossy(&bytes[..bytes.len().min(200)])
                    ),
                )
            })?
        };
        if (200..300).contains(&status) {
            return Ok(parsed);
        }
        let err = &parsed["error"];
        let reason = err["errors"][0]["reason"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("http{status}"));
        let message = err["message"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| String::from_utf8_lossy(&bytes).into_owned());
        let e = GceError::new(operation, status, &reason, &message);
        Err(if e.kind == GceErrorKind::Unauthenticated {
            let sent = self.auth.source().describe();
            let message = if status == 403 {
                format!("{message} (paved signed in with {sent}; grant it roles/compute.instanceAdmin.v1 on project {}, or give gcp.credentials another identity)", self.project)
            } else {
                format!("{message} (paved sent {sent}; set gcp.credentials to a service-account key, e.g. file(\"key.json\"), or set GOOGLE_APPLICATION_CREDENTIALS, or run `gcloud auth application-default login`)")
            };
            GceError { message, ..e }
        } else {
            e
        })
    }

    /// One call with bounded retries of transient failures (writes carry a requestId, so a
    /// retry of one whose answer was lost is applied once).
    async fn call(
        &self,
        operation: &'static str,
        method: hyper::Method,
        path: &str,
        query: &[(&str, String)],
        body: Option<&Json>,
    ) -> Result<Json, GceError> {
        let url = self.url(path, query);
        let mut attempt = 0;
        loop {
            match self
                .once(operation, &method, &url, body, self.request_timeout)
                .await
            {
                Err(e) if e.kind == GceErrorKind::Transient && attempt < self.retries => {
                    attempt += 1;
                    tokio::time::sleep(Duration::from_millis(200 * (1 << attempt.min(5)))).await;
                }
                r => return r,
            }
        }
    }

    async fn list_all(&self, operation: &'static str, path: &str) -> Result<Vec<Json>, GceError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("maxResults", "500".to_string())];
            if let Some(t) = &token {
                q.push(("pageToken", t.clone()));
            }
            let page = self
                .call(operation, hyper::Method::GET, path, &q, None)
                .await?;
            if let Some(items) = page["items"].as_array() {
                out.extend(items.iter().cloned());
            }
            match page["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    fn igm_path(&self, name: &str) -> String {
        format!("regions/{}/instanceGroupManagers/{}", self.region, name)
    }
}

fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The last path segment of a link (`.../zones/us-central1-a` → `us-central1-a`).
pub fn last_segment(link: &str) -> String {
    link.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

fn str_of(v: &Json) -> String {
    v.as_str().unwrap_or_default().to_string()
}

fn u32_of(v: &Json) -> u32 {
    v.as_u64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0) as u32
}

fn op_error(v: &Json) -> Option<GceError> {
    let e = v["error"]["errors"].as_array()?.first()?;
    Some(GceError::new(
        "Operation",
        v["httpErrorStatusCode"].as_u64().unwrap_or(0) as u16,
        e["code"].as_str().unwrap_or("UNKNOWN"),
        e["message"].as_str().unwrap_or_default(),
    ))
}

/// Parses a Compute `Operation`.
pub fn parse_operation(v: &Json) -> Operation {
    let self_link = str_of(&v["selfLink"]);
    let scope = if let Some(z) = v["zone"].as_str() {
        OpScope::Zone(last_segment(z))
    } else if let Some(r) = v["region"].as_str() {
        OpScope::Region(last_segment(r))
    } else if let Some(rest) = self_link.split("/zones/").nth(1) {
        OpScope::Zone(rest.split('/').next().unwrap_or_default().to_string())
    } else if let Some(rest) = self_link.split("/regions/").nth(1) {
        OpScope::Region(rest.split('/').next().unwrap_or_default().to_string())
    } else {
        OpScope::Global
    };
    Operation {
        name: str_of(&v["name"]),
        scope,
        status: match v["status"].as_str() {
            Some("DONE") => OpStatus::Done,
            Some("RUNNING") => OpStatus::Running,
            _ => OpStatus::Pending,
        },
        operation_type: str_of(&v["operationType"]),
        target_link: str_of(&v["targetLink"]),
        error: op_error(v),
    }
}

fn parse_template(v: &Json) -> InstanceTemplate {
    let p = &v["properties"];
    let accel = p["guestAccelerators"]
        .as_array()
        .and_then(|a| a.first())
        .map(|a| {
            (
                last_segment(a["acceleratorType"].as_str().unwrap_or_default()),
                u32_of(&a["acceleratorCount"]),
            )
        });
    let sched = &p["scheduling"];
    let boot = p["disks"]
        .as_array()
        .and_then(|d| d.iter().find(|d| d["boot"].as_bool() == Some(true)));
    InstanceTemplate {
        name: str_of(&v["name"]),
        id: str_of(&v["id"]),
        self_link: str_of(&v["selfLink"]),
        machine_type: last_segment(p["machineType"].as_str().unwrap_or_default()),
        accelerator: accel,
        spot: sched["provisioningModel"].as_str() == Some("SPOT")
            || sched["preemptible"].as_bool() == Some(true),
        on_host_maintenance: str_of(&sched["onHostMaintenance"]),
        image: boot
            .map(|d| str_of(&d["initializeParams"]["sourceImage"]))
            .unwrap_or_default(),
        boot_disk_gb: boot.and_then(|d| {
            let g = u32_of(&d["initializeParams"]["diskSizeGb"]);
            (g > 0).then_some(g)
        }),
        labels: p["labels"]
            .as_object()
            .map(|m| m.iter().map(|(k, v)| (k.clone(), str_of(v))).collect())
            .unwrap_or_default(),
        metadata: p["metadata"]["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| (str_of(&i["key"]), str_of(&i["value"])))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn parse_group(v: &Json) -> Group {
    let template = v["versions"]
        .as_array()
        .and_then(|vs| vs.first())
        .and_then(|x| x["instanceTemplate"].as_str())
        .or_else(|| v["instanceTemplate"].as_str())
        .map(last_segment)
        .unwrap_or_default();
    let a = &v["currentActions"];
    let known = ["creating", "deleting", "recreating", "none"];
    let other = a
        .as_object()
        .map(|m| {
            m.iter()
                .filter(|(k, _)| !known.contains(&k.as_str()))
                .map(|(_, n)| u32_of(n))
                .sum()
        })
        .unwrap_or(0);
    let mut machine_types: Vec<(i64, String)> = v["instanceFlexibilityPolicy"]
        ["instanceSelections"]
        .as_object()
        .map(|m| {
            m.values()
                .flat_map(|s| {
                    let rank = s["rank"].as_i64().unwrap_or(0);
                    s["machineTypes"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default()
                        .into_iter()
                        .map(move |t| (rank, last_segment(t.as_str().unwrap_or_default())))
                })
                .collect()
        })
        .unwrap_or_default();
    machine_types.sort();
    Group {
        name: str_of(&v["name"]),
        id: str_of(&v["id"]),
        self_link: str_of(&v["selfLink"]),
        template,
        target_size: u32_of(&v["targetSize"]),
        zones: v["distributionPolicy"]["zones"]
            .as_array()
            .map(|zs| {
                zs.iter()
                    .map(|z| last_segment(z["zone"].as_str().unwrap_or_default()))
                    .collect()
            })
            .unwrap_or_default(),
        target_shape: str_of(&v["distributionPolicy"]["targetShape"]),
        machine_types: machine_types.into_iter().map(|(_, t)| t).collect(),
        base_instance_name: str_of(&v["baseInstanceName"]),
        is_stable: v["status"]["isStable"].as_bool().unwrap_or(false),
        version_target_reached: v["status"]["versionTarget"]["isReached"]
            .as_bool()
            .unwrap_or(false),
        actions: GroupActions {
            creating: u32_of(&a["creating"]),
            deleting: u32_of(&a["deleting"]),
            recreating: u32_of(&a["recreating"]),
            none: u32_of(&a["none"]),
            other,
        },
        fingerprint: str_of(&v["fingerprint"]),
        description: str_of(&v["description"]),
    }
}

fn parse_member(v: &Json) -> ManagedInstance {
    let link = str_of(&v["instance"]);
    let zone = link
        .split("/zones/")
        .nth(1)
        .and_then(|r| r.split('/').next())
        .unwrap_or_default()
        .to_string();
    ManagedInstance {
        name: v["name"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| last_segment(&link)),
        zone,
        status: v["instanceStatus"].as_str().map(String::from),
        current_action: str_of(&v["currentAction"]),
        template: last_segment(
            v["version"]["instanceTemplate"]
                .as_str()
                .unwrap_or_default(),
        ),
        machine_type: v["propertiesFromFlexibilityPolicy"]["machineType"]
            .as_str()
            .map(last_segment),
        last_errors: v["lastAttempt"]["errors"]["errors"]
            .as_array()
            .map(|es| {
                es.iter()
                    .map(|e| {
                        GceError::new(
                            "CreateInstance",
                            0,
                            e["code"].as_str().unwrap_or("UNKNOWN"),
                            e["message"].as_str().unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
    }
}

pub fn parse_vm(v: &Json) -> Vm {
    let sched = &v["scheduling"];
    Vm {
        name: str_of(&v["name"]),
        zone: last_segment(v["zone"].as_str().unwrap_or_default()),
        machine_type: last_segment(v["machineType"].as_str().unwrap_or_default()),
        status: str_of(&v["status"]),
        labels: v["labels"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, x)| Some((k.clone(), x.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        spot: sched["provisioningModel"].as_str() == Some("SPOT")
            || sched["preemptible"].as_bool() == Some(true),
        accelerator: v["guestAccelerators"].as_array().and_then(|a| {
            a.first().map(|g| {
                (
                    last_segment(g["acceleratorType"].as_str().unwrap_or_default()),
                    u32_of(&g["acceleratorCount"]),
                )
            })
        }),
    }
}

/// The JSON body of an instance template insert.
pub fn template_body(project: &str, spec: &TemplateSpec) -> Json {
    let mut sched = json!({
        "onHostMaintenance": "TERMINATE",
        "automaticRestart": !spec.spot,
        "provisioningModel": if spec.spot { "SPOT" } else { "STANDARD" },
    });
    if spec.spot {
        sched["instanceTerminationAction"] = json!("DELETE");
    }
    let mut disk_params = json!({ "sourceImage": spec.image });
    if spec.boot_disk_gb > 0 {
        disk_params["diskSizeGb"] = json!(spec.boot_disk_gb.to_string());
    }
    let mut props = json!({
        "machineType": spec.machine_type,
        "scheduling": sched,
        "disks": [{ "boot": true, "autoDelete": true, "type": "PERSISTENT", "initializeParams": disk_params }],
        "networkInterfaces": [{ "network": spec.network.clone().unwrap_or_else(|| format!("projects/{project}/global/networks/default")) }],
        "labels": spec.labels,
        "metadata": { "items": spec.metadata.iter().map(|(k, v)| json!({"key": k, "value": v})).collect::<Vec<_>>() },
    });
    if let Some((t, n)) = &spec.accelerator {
        props["guestAccelerators"] = json!([{ "acceleratorType": t, "acceleratorCount": n }]);
    }
    let mut body = json!({ "name": spec.name, "properties": props });
    if !spec.description.is_empty() {
        body["description"] = json!(spec.description);
    }
    body
}

/// The JSON body of a regional group insert.
pub fn group_body(project: &str, spec: &GroupSpec) -> Json {
    let n = spec.zones.len().max(1);
    let mut body = json!({
        "name": spec.name,
        "baseInstanceName": spec.base_instance_name,
        "targetSize": spec.target_size,
        "versions": [{ "instanceTemplate": format!("projects/{project}/global/instanceTemplates/{}", spec.template), "name": spec.template }],
        "distributionPolicy": {
            "targetShape": if spec.target_shape.is_empty() { "EVEN" } else { spec.target_shape.as_str() },
            "zones": spec.zones.iter().map(|z| json!({"zone": format!("zones/{z}")})).collect::<Vec<_>>(),
        },
        "updatePolicy": {
            "type": "PROACTIVE", "minimalAction": "REPLACE", "replacementMethod": "SUBSTITUTE",
            "maxSurge": {"fixed": n}, "maxUnavailable": {"fixed": n},
        },
    });
    if !spec.machine_types.is_empty() {
        let sel: serde_json::Map<String, Json> = spec
            .machine_types
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    format!("rank-{}", i + 1),
                    json!({"rank": i + 1, "machineTypes": [t]}),
                )
            })
            .collect();
        body["instanceFlexibilityPolicy"] = json!({ "instanceSelections": sel });
    }
    if !spec.description.is_empty() {
        body["description"] = json!(spec.description);
    }
    body
}

#[async_trait]
impl GceApi for GceClient {
    fn project(&self) -> &str {
        &self.project
    }
    fn region(&self) -> &str {
        &self.region
    }

    async fn insert_template(
        &self,
        spec: &TemplateSpec,
        request_id: &str,
    ) -> Result<Operation, GceError> {
        let body = template_body(&self.project, spec);
        let v = self
            .call(
                "InsertInstanceTemplate",
                hyper::Method::POST,
                "global/instanceTemplates",
                &[("requestId", request_id.to_string())],
                Some(&body),
            )
            .await?;
        Ok(parse_operation(&v))
    }

    async fn get_template(&self, name: &str) -> Result<Option<InstanceTemplate>, GceError> {
        match self
            .call(
                "GetInstanceTemplate",
                hyper::Method::GET,
                &format!("global/instanceTemplates/{name}"),
                &[],
                None,
            )
            .await
        {
            Ok(v) => Ok(Some(parse_template(&v))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn pool_instances(&self) -> Result<Vec<Vm>, GceError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![
                ("maxResults", "500".to_string()),
                ("filter", format!("labels.{POOL_LABEL} eq \".+\"")),
            ];
            if let Some(t) = &token {
                q.push(("pageToken", t.clone()));
            }
            let page = self
                .call(
                    "AggregatedListInstances",
                    hyper::Method::GET,
                    "aggregated/instances",
                    &q,
                    None,
                )
                .await?;
            if let Some(scopes) = page["items"].as_object() {
                for scoped in scopes.values() {
                    if let Some(items) = scoped["instances"].as_array() {
                        out.extend(items.iter().map(parse_vm));
                    }
                }
            }
            match page["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn list_templates(&self, prefix: &str) -> Result<Vec<InstanceTemplate>, GceError> {
        // Compute's `eq` takes an RE2 regular expression matched against the whole name;
        // resource names hold only [a-z0-9-], none of them special, so the prefix is used as is
        // once checked.
        if !prefix
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        {
            return Err(GceError::new(
                "ListInstanceTemplates",
                0,
                "invalid",
                &format!("{prefix:?} is not a resource name prefix"),
            ));
        }
        let re = prefix;
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![
                ("maxResults", "500".to_string()),
                ("filter", format!("name eq \"{re}.*\"")),
            ];
            if let Some(t) = &token {
                q.push(("pageToken", t.clone()));
            }
            let page = self
                .call(
                    "ListInstanceTemplates",
                    hyper::Method::GET,
                    "global/instanceTemplates",
                    &q,
                    None,
                )
                .await?;
            if let Some(items) = page["items"].as_array() {
                out.extend(items.iter().map(parse_template));
            }
            match page["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn delete_template(
        &self,
        name: &str,
        request_id: &str,
    ) -> Result<Option<Operation>, GceError> {
        match self
            .call(
                "DeleteInstanceTemplate",
                hyper::Method::DELETE,
                &format!("global/instanceTemplates/{name}"),
                &[("requestId", request_id.to_string())],
                None,
            )
            .await
        {
            Ok(v) => Ok(Some(parse_operation(&v))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn insert_group(
        &self,
        spec: &GroupSpec,
        request_id: &str,
    ) -> Result<Operation, GceError> {
        let body = group_body(&self.project, spec);
        let v = self
            .call(
                "InsertRegionInstanceGroupManager",
                hyper::Method::POST,
                &format!("regions/{}/instanceGroupManagers", self.region),
                &[("requestId", request_id.to_string())],
                Some(&body),
            )
            .await?;
        Ok(parse_operation(&v))
    }

    async fn get_group(&self, name: &str) -> Result<Option<Group>, GceError> {
        match self
            .call(
                "GetRegionInstanceGroupManager",
                hyper::Method::GET,
                &self.igm_path(name),
                &[],
                None,
            )
            .await
        {
            Ok(v) => Ok(Some(parse_group(&v))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn delete_group(
        &self,
        name: &str,
        request_id: &str,
    ) -> Result<Option<Operation>, GceError> {
        match self
            .call(
                "DeleteRegionInstanceGroupManager",
                hyper::Method::DELETE,
                &self.igm_path(name),
                &[("requestId", request_id.to_string())],
                None,
            )
            .await
        {
            Ok(v) => Ok(Some(parse_operation(&v))),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    async fn resize_group(
        &self,
        name: &str,
        size: u32,
        request_id: &str,
    ) -> Result<Operation, GceError> {
        let v = self
            .call(
                "ResizeRegionInstanceGroupManager",
                hyper::Method::POST,
                &format!("{}/resize", self.igm_path(name)),
                &[
                    ("size", size.to_string()),
                    ("requestId", request_id.to_string()),
                ],
                None,
            )
            .await?;
        Ok(parse_operation(&v))
    }

    async fn set_group_template(
        &self,
        name: &str,
        template: &str,
        request_id: &str,
    ) -> Result<Operation, GceError> {
        let body = json!({
            "versions": [{
                "instanceTemplate": format!("projects/{}/global/instanceTemplates/{template}", self.project),
                "name": template,
            }],
        });
        let v = self
            .call(
                "PatchRegionInstanceGroupManager",
                hyper::Method::PATCH,
                &self.igm_path(name),
                &[("requestId", request_id.to_string())],
                Some(&body),
            )
            .await?;
        Ok(parse_operation(&v))
    }

    async fn set_group_description(
        &self,
        name: &str,
        description: &str,
        request_id: &str,
    ) -> Result<Operation, GceError> {
        let v = self
            .call(
                "PatchRegionInstanceGroupManager",
                hyper::Method::PATCH,
                &self.igm_path(name),
                &[("requestId", request_id.to_string())],
                Some(&json!({ "description": description })),
            )
            .await?;
        Ok(parse_operation(&v))
    }

    async fn list_managed_instances(&self, name: &str) -> Result<Vec<ManagedInstance>, GceError> {
        let mut out = Vec::new();
        let mut token: Option<String> = None;
        loop {
            let mut q = vec![("maxResults", "500".to_string())];
            if let Some(t) = &token {
                q.push(("pageToken", t.clone()));
            }
            let v = self
                .call(
                    "ListManagedInstances",
                    hyper::Method::POST,
                    &format!("{}/listManagedInstances", self.igm_path(name)),
                    &q,
                    None,
                )
                .await?;
            if let Some(ms) = v["managedInstances"].as_array() {
                out.extend(ms.iter().map(parse_member));
            }
            match v["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => token = Some(t.to_string()),
                _ => return Ok(out),
            }
        }
    }

    async fn list_group_errors(&self, name: &str, max: u32) -> Result<Vec<GroupError>, GceError> {
        let v = self
            .call(
                "ListManagedInstanceErrors",
                hyper::Method::GET,
                &format!("{}/listErrors", self.igm_path(name)),
                &[("maxResults", max.clamp(1, 500).to_string())],
                None,
            )
            .await?;
        Ok(v["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|i| {
                        let inst = i["instanceActionDetails"]["instance"].as_str();
                        GroupError {
                            error: GceError::new(
                                "CreateInstance",
                                0,
                                i["error"]["code"].as_str().unwrap_or("UNKNOWN"),
                                i["error"]["message"].as_str().unwrap_or_default(),
                            ),
                            action: str_of(&i["instanceActionDetails"]["action"]),
                            zone: inst.and_then(|l| {
                                l.split("/zones/")
                                    .nth(1)
                                    .and_then(|r| r.split('/').next())
                                    .map(String::from)
                            }),
                            instance: inst.map(last_segment),
                            timestamp: str_of(&i["timestamp"]),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    async fn list_zones(&self) -> Result<Vec<Zone>, GceError> {
        let items = self.list_all("ListZones", "zones").await?;
        Ok(items
            .iter()
            .map(|z| Zone {
                name: str_of(&z["name"]),
                region: last_segment(z["region"].as_str().unwrap_or_default()),
                status: str_of(&z["status"]),
            })
            .filter(|z| z.region == self.region)
            .collect())
    }

    async fn list_machine_types(&self, zone: &str) -> Result<Vec<MachineType>, GceError> {
        let items = self
            .list_all("ListMachineTypes", &format!("zones/{zone}/machineTypes"))
            .await?;
        Ok(items
            .iter()
            .map(|m| MachineType {
                name: str_of(&m["name"]),
                zone: last_segment(m["zone"].as_str().unwrap_or(zone)),
                guest_cpus: u32_of(&m["guestCpus"]),
                memory_mb: m["memoryMb"].as_u64().unwrap_or(0),
                accelerators: m["accelerators"]
                    .as_array()
                    .map(|a| {
                        a.iter()
                            .map(|x| {
                                (
                                    str_of(&x["guestAcceleratorType"]),
                                    u32_of(&x["guestAcceleratorCount"]),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            })
            .collect())
    }

    async fn list_accelerator_types(&self, zone: &str) -> Result<Vec<AcceleratorType>, GceError> {
        let items = self
            .list_all(
                "ListAcceleratorTypes",
                &format!("zones/{zone}/acceleratorTypes"),
            )
            .await?;
        Ok(items
            .iter()
            .map(|a| AcceleratorType {
                name: str_of(&a["name"]),
                zone: last_segment(a["zone"].as_str().unwrap_or(zone)),
                max_cards_per_instance: u32_of(&a["maximumCardsPerInstance"]),
            })
            .collect())
    }

    async fn wait_operation(
        &self,
        op: &Operation,
        timeout: Duration,
    ) -> Result<Operation, GceError> {
        let scope = match &op.scope {
            OpScope::Global => "global".to_string(),
            OpScope::Region(r) => format!("regions/{r}"),
            OpScope::Zone(z) => format!("zones/{z}"),
        };
        let deadline = tokio::time::Instant::now() + timeout;
        let mut cur = op.clone();
        let mut transient = 0;
        while !cur.is_done() {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                break;
            }
            let url = self.url(&format!("{scope}/operations/{}/wait", op.name), &[]);
            match self
                .once("WaitOperation", &hyper::Method::POST, &url, None, left)
                .await
            {
                Ok(v) => cur = parse_operation(&v),
                // The wait outlived the deadline: report the operation as last seen.
                Err(e)
                    if e.kind == GceErrorKind::Transient
                        && e.code == "transport"
                        && tokio::time::Instant::now() >= deadline =>
                {
                    break
                }
                Err(e) if e.kind == GceErrorKind::Transient && transient < self.retries => {
                    transient += 1;
                    tokio::time::sleep(Duration::from_millis(200 * (1 << transient.min(5)))).await;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(cur)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_vm_is_read_from_its_api_form() {
        let v = parse_vm(&json!({
            "name": "gp-1-x1",
            "zone": "https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a",
            "machineType": "https://www.googleapis.com/compute/v1/projects/p/zones/us-central1-a/machineTypes/n1-standard-8",
            "status": "RUNNING",
            "labels": {"team": "ml", "paved-pool-id": "gp-1"},
            "scheduling": {"provisioningModel": "SPOT"},
            "guestAccelerators": [{"acceleratorType": "projects/p/zones/us-central1-a/acceleratorTypes/nvidia-tesla-t4", "acceleratorCount": 1}]
        }));
        assert_eq!(
            (v.zone.as_str(), v.machine_type.as_str()),
            ("us-central1-a", "n1-standard-8")
        );
        assert_eq!(v.accelerator, Some(("nvidia-tesla-t4".to_string(), 1)));
        assert!(v.spot && v.is_billed());
        assert_eq!(v.labels["team"], "ml");
        let old = parse_vm(
            &json!({"name": "x", "status": "TERMINATED", "scheduling": {"preemptible": true}}),
        );
        assert!(old.spot && !old.is_billed() && old.accelerator.is_none());
    }

    #[test]
    fn request_ids_are_deterministic_uuids() {
        let a = request_id("gp-1", "insert-template", &["t-abc"]);
        let b = request_id("gp-1", "insert-template", &["t-abc"]);
        assert_eq!(a, b);
        assert_eq!(a.len(), 36);
        let parts: Vec<&str> = a.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('5'), "version nibble: {a}");
        assert!(
            matches!(&parts[3][..1], "8" | "9" | "a" | "b"),
            "variant: {a}"
        );
        assert_ne!(a, request_id("gp-1", "insert-template", &["t-abd"]));
        assert_ne!(a, request_id("gp-2", "insert-template", &["t-abc"]));
        assert_ne!(a, request_id("gp-1", "delete-template", &["t-abc"]));
        // Parts are separated: ("ab","c") is not ("a","bc").
        assert_ne!(
            request_id("gp", "op", &["ab", "c"]),
            request_id("gp", "op", &["a", "bc"])
        );
    }

    #[test]
    fn errors_are_classified() {
        for (status, code, kind) in [
            (0, "ZONE_RESOURCE_POOL_EXHAUSTED", GceErrorKind::Stockout),
            (
                0,
                "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS",
                GceErrorKind::Stockout,
            ),
            (0, "QUOTA_EXCEEDED", GceErrorKind::Quota),
            (403, "quotaExceeded", GceErrorKind::Quota),
            (404, "notFound", GceErrorKind::NotFound),
            (409, "alreadyExists", GceErrorKind::AlreadyExists),
            (400, "resourceInUseByAnotherResource", GceErrorKind::InUse),
            (400, "resourceNotReady", GceErrorKind::NotReady),
            (429, "rateLimitExceeded", GceErrorKind::Transient),
            (503, "backendError", GceErrorKind::Transient),
            (502, "http502", GceErrorKind::Transient),
            (400, "invalid", GceErrorKind::Invalid),
            (401, "authError", GceErrorKind::Unauthenticated),
        ] {
            assert_eq!(classify(status, code), kind, "{status} {code}");
        }
        assert!(GceError::new("x", 0, "QUOTA_EXCEEDED", "").is_capacity());
        assert!(!GceError::new("x", 404, "notFound", "").is_capacity());
    }

    #[test]
    fn loopback_endpoints() {
        for e in [
            "http://127.0.0.1:18090",
            "http://127.3.4.5",
            "http://localhost:1/",
            "http://[::1]:80",
        ] {
            assert!(is_loopback(e), "{e}");
        }
        for e in [
            "https://compute.googleapis.com",
            "http://10.0.0.1:80",
            "http://127.0.0.1.example.com",
        ] {
            assert!(!is_loopback(e), "{e}");
        }
    }

    #[test]
    fn credentials_are_checked_when_the_client_is_made() {
        let s = GcpSettings {
            endpoint: Some("https://compute.googleapis.com".into()),
            credentials: Some(r#"{"type": "service_account"}"#.into()),
            ..Default::default()
        };
        let e = GceClient::new(&s, "p", "us-central1")
            .err()
            .expect("an incomplete key is refused");
        assert_eq!(e.kind, GceErrorKind::Unauthenticated);
        assert!(e.message.contains("without client_email"), "{e}");
        let s = GcpSettings {
            endpoint: Some("http://127.0.0.1:18090".into()),
            ..Default::default()
        };
        assert!(GceClient::new(&s, "p", "us-central1").is_ok());
    }

    #[test]
    fn operations_parse_with_scope_and_error() {
        let op = parse_operation(&json!({
            "kind": "compute#operation", "name": "operation-1", "status": "DONE",
            "operationType": "compute.instanceGroupManagers.insert",
            "region": "https://x/compute/v1/projects/p/regions/us-central1",
            "selfLink": "https://x/compute/v1/projects/p/regions/us-central1/operations/operation-1",
            "httpErrorStatusCode": 503,
            "error": {"errors": [{"code": "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS", "message": "no room"}]}
        }));
        assert_eq!(op.scope, OpScope::Region("us-central1".into()));
        assert!(op.is_done());
        let e = op.result().unwrap_err();
        assert_eq!(e.kind, GceErrorKind::Stockout);
        assert_eq!(e.status, 503);
        let g = parse_operation(&json!({"name": "o", "status": "RUNNING",
            "selfLink": "http://h/compute/v1/projects/p/global/operations/o"}));
        assert_eq!(g.scope, OpScope::Global);
        assert_eq!(g.result().unwrap_err().kind, GceErrorKind::NotReady);
    }

    #[test]
    fn bodies_carry_the_gpu_shape() {
        let mut labels = BTreeMap::new();
        labels.insert("paved-team".to_string(), "ml".to_string());
        let t = template_body(
            "p",
            &TemplateSpec {
                name: "t".into(),
                machine_type: "n1-standard-8".into(),
                accelerator: Some(("nvidia-tesla-t4".into(), 2)),
                spot: true,
                image: "projects/x/global/images/family/y".into(),
                boot_disk_gb: 100,
                labels,
                ..Default::default()
            },
        );
        let p = &t["properties"];
        assert_eq!(p["scheduling"]["onHostMaintenance"], "TERMINATE");
        assert_eq!(p["scheduling"]["provisioningModel"], "SPOT");
        assert_eq!(p["scheduling"]["automaticRestart"], false);
        assert_eq!(p["guestAccelerators"][0]["acceleratorCount"], 2);
        assert_eq!(p["disks"][0]["initializeParams"]["diskSizeGb"], "100");
        let g = group_body(
            "p",
            &GroupSpec {
                name: "g".into(),
                base_instance_name: "g".into(),
                template: "t".into(),
                target_size: 3,
                zones: vec!["us-central1-a".into(), "us-central1-b".into()],
                machine_types: vec!["a2-highgpu-1g".into(), "g2-standard-8".into()],
                ..Default::default()
            },
        );
        assert_eq!(g["distributionPolicy"]["targetShape"], "EVEN");
        assert_eq!(g["updatePolicy"]["maxSurge"]["fixed"], 2);
        assert_eq!(
            g["instanceFlexibilityPolicy"]["instanceSelections"]["rank-2"]["machineTypes"][0],
            "g2-standard-8"
        );
        let parsed = parse_group(&json!({
            "name": "g", "targetSize": 3, "versions": [{"instanceTemplate": "http://h/compute/v1/projects/p/global/instanceTemplates/t"}],
            "instanceFlexibilityPolicy": g["instanceFlexibilityPolicy"].clone(),
            "currentActions": {"creating": 1, "none": 2, "verifying": 1},
            "status": {"isStable": false, "versionTarget": {"isReached": true}}
        }));
        assert_eq!(parsed.template, "t");
        assert_eq!(parsed.machine_types, ["a2-highgpu-1g", "g2-standard-8"]);
        assert_eq!(parsed.actions.creating, 1);
        assert_eq!(parsed.actions.other, 1);
    }
}
