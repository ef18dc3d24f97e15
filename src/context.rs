//! What a configured provider hands to every resource call: platform defaults, cloud clients and
//! the cancellation signal. Both front ends build one from the provider configuration.

use crate::cloud::aws::{AwsSettings, Ec2Api};
use crate::cloud::gce::{GceApi, GcpSettings};
use crate::cloud::kube::KubeApi;
use crate::cty::Value;
use crate::error::ResourceError;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;

/// Platform-wide defaults applied to everything the provider creates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Defaults {
    pub team: Option<String>,
    pub project: Option<String>,
    pub tags: BTreeMap<String, String>,
    /// Hourly USD price overrides keyed by `instance_type` (on-demand) or `instance_type:spot`.
    pub price_overrides: BTreeMap<String, f64>,
    /// Team budgets and GPU quotas ([`crate::budget`]).
    pub limits: crate::budget::Limits,
}

/// Builds EC2 clients for a region. A trait so tests can wrap the real client (fault injection)
/// and the Crossplane front end can build clients from its own credentials.
pub trait Ec2Factory: Send + Sync {
    fn ec2(&self, region: &str) -> Result<Arc<dyn Ec2Api>, ResourceError>;
    /// The provider-level default region, if any.
    fn default_region(&self) -> Option<String>;
    /// Whether to skip the one-time credential check before the first change.
    fn skip_credentials_validation(&self) -> bool {
        false
    }
}

/// Builds Compute Engine clients for a project and region: the GCP counterpart of
/// [`Ec2Factory`], so tests and the Crossplane front end can supply their own.
pub trait GceFactory: Send + Sync {
    fn gce(&self, project: &str, region: &str) -> Result<Arc<dyn GceApi>, ResourceError>;
    /// The provider-level default project and region (the `gcp` block), if any.
    fn default_project(&self) -> Option<String>;
    fn default_region(&self) -> Option<String>;
}

/// Cancellation raised by StopProvider; long waits check it.
#[derive(Default)]
pub struct Cancel {
    flag: AtomicBool,
    notify: Notify,
}

impl Cancel {
    pub fn cancel(&self) {
        self.flag.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
    pub fn is_cancelled(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }
    /// Sleeps for `d` or until cancelled; Err when cancelled.
    pub async fn sleep(&self, d: std::time::Duration) -> Result<(), ResourceError> {
        if self.is_cancelled() {
            return Err(ResourceError::Cancelled);
        }
        tokio::select! {
            _ = tokio::time::sleep(d) => Ok(()),
            _ = self.notify.notified() => Err(ResourceError::Cancelled),
        }
    }
}

#[derive(Clone)]
pub struct Context {
    pub defaults: Defaults,
    aws: Option<Arc<dyn Ec2Factory>>,
    pub cancel: Arc<Cancel>,
    /// Regions whose credentials passed the check (shared by clones of this context).
    checked: Arc<Mutex<HashSet<String>>>,
    kube: Option<Arc<dyn KubeApi>>,
    gce: Option<Arc<dyn GceFactory>>,
    /// States of objects this provider process has seen, by (type name, id): how one resource
    /// learns facts about another in the same configuration (e.g. a pool's driver version)
    /// without a cloud call.
    known: Arc<Mutex<HashMap<(String, String), Value>>>,
    /// The audit trail changes are recorded in (the provider's `audit` block).
    pub audit: Option<Arc<crate::audit::Trail>>,
    /// Whether the Kubernetes writes of a change impersonate its requester (ProviderConfig
    /// `kubernetes.impersonateRequester`; see [`crate::cloud::kube::OnBehalf::impersonate`]).
    pub impersonate_requester: bool,
    /// Where OpenLineage events go (the provider's `lineage` block).
    pub lineage: Option<Arc<crate::lineage::Emitter>>,
    /// The cloud identities paved has acted as, by cloud (`aws`: the caller ARN from the
    /// credential check), for the audit records.
    identities: Arc<Mutex<BTreeMap<String, String>>>,
}

impl Context {
    pub fn new(defaults: Defaults, aws: Option<Arc<dyn Ec2Factory>>) -> Context {
        Context {
            defaults,
            aws,
            cancel: Arc::new(Cancel::default()),
            checked: Arc::new(Mutex::new(HashSet::new())),
            kube: None,
            gce: None,
            known: Arc::new(Mutex::new(HashMap::new())),
            audit: None,
            lineage: None,
            impersonate_requester: false,
            identities: Arc::new(Mutex::new(BTreeMap::new())),
        }
    }

    /// The cloud identities seen so far (see `identities`).
    pub fn identities(&self) -> BTreeMap<String, String> {
        let mut ids = self
            .identities
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if let Some(user) = self.kube.as_ref().and_then(|k| k.identity()) {
            ids.insert("kubernetes".into(), user);
        }
        ids
    }

    pub fn with_audit(mut self, audit: Arc<crate::audit::Trail>) -> Context {
        self.audit = Some(audit);
        self
    }

    pub fn with_lineage(mut self, lineage: Arc<crate::lineage::Emitter>) -> Context {
        self.lineage = Some(lineage);
        self
    }

    pub fn with_kube(mut self, kube: Arc<dyn KubeApi>) -> Context {
        self.kube = Some(kube);
        self
    }

    pub fn with_gce(mut self, gce: Arc<dyn GceFactory>) -> Context {
        self.gce = Some(gce);
        self
    }

    /// A Compute Engine client for `project`/`region`.
    pub fn gce(&self, project: &str, region: &str) -> Result<Arc<dyn GceApi>, ResourceError> {
        self.gce
            .as_ref()
            .ok_or_else(|| {
                ResourceError::NotConfigured(
                    "the gcp block is required to manage GCP resources".into(),
                )
            })?
            .gce(project, region)
    }

    pub fn default_gcp_project(&self) -> Option<String> {
        self.gce.as_ref().and_then(|f| f.default_project())
    }

    pub fn default_gcp_region(&self) -> Option<String> {
        self.gce.as_ref().and_then(|f| f.default_region())
    }

    pub fn kube(&self) -> Result<&Arc<dyn KubeApi>, ResourceError> {
        self.kube.as_ref().ok_or_else(|| {
            ResourceError::NotConfigured("no Kubernetes access is configured".into())
        })
    }

    /// Records an object's state (called by the front ends after every successful read/apply).
    pub fn remember(&self, type_name: &str, state: &Value) {
        if let Some(id) = state.get("id").as_str() {
            self.known
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert((type_name.to_string(), id.to_string()), state.clone());
        }
    }

    /// The last state seen of another object, if this process has seen it.
    pub fn recall(&self, type_name: &str, id: &str) -> Option<Value> {
        self.known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(type_name.to_string(), id.to_string()))
            .cloned()
    }

    /// A context for plan and validation before ConfigureProvider (no clouds).
    pub fn unconfigured() -> Context {
        Context::new(Defaults::default(), None)
    }

    pub fn aws(&self) -> Result<&Arc<dyn Ec2Factory>, ResourceError> {
        self.aws.as_ref().ok_or_else(|| {
            ResourceError::NotConfigured("the aws block is required to manage AWS resources".into())
        })
    }

    /// An EC2 client for a change (create/update/delete): checks the credentials once per region
    /// first, so a bad key fails with a clear message before anything is created.
    pub async fn ec2_for_change(&self, region: &str) -> Result<Arc<dyn Ec2Api>, ResourceError> {
        let factory = self.aws()?;
        let ec2 = factory.ec2(region)?;
        let done = self
            .checked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(region);
        if !done && !factory.skip_credentials_validation() {
            let arn = ec2.caller_identity().await.map_err(|e| ResourceError::Cloud {
                service: "STS",
                operation: "GetCallerIdentity",
                code: e.code,
                message: format!("{} (the AWS credentials were rejected; check aws.access_key/secret_key, aws.profile or the environment)", e.message),
                source: None,
            })?;
            self.checked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(region.to_string());
            if !arn.is_empty() {
                self.identities
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert("aws".into(), arn);
            }
        }
        Ok(ec2)
    }

    pub fn default_aws_region(&self) -> Option<String> {
        self.aws.as_ref().and_then(|f| f.default_region())
    }
}

/// Caches one real SDK client per region for the life of the provider process.
pub struct SdkEc2Factory {
    settings: AwsSettings,
    clients: Mutex<HashMap<String, Arc<dyn Ec2Api>>>,
}

impl SdkEc2Factory {
    pub fn new(settings: AwsSettings) -> SdkEc2Factory {
        SdkEc2Factory {
            settings,
            clients: Mutex::new(HashMap::new()),
        }
    }
}

impl Ec2Factory for SdkEc2Factory {
    fn ec2(&self, region: &str) -> Result<Arc<dyn Ec2Api>, ResourceError> {
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(region) {
            return Ok(c.clone());
        }
        let c: Arc<dyn Ec2Api> = Arc::new(crate::cloud::aws::SdkEc2::new(&self.settings, region));
        clients.insert(region.to_string(), c.clone());
        Ok(c)
    }
    fn default_region(&self) -> Option<String> {
        self.settings
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
            .filter(|r| !r.is_empty())
    }
    fn skip_credentials_validation(&self) -> bool {
        self.settings.skip_credentials_validation
    }
}

/// Caches one REST client per (project, region) for the life of the provider process.
pub struct RestGceFactory {
    settings: GcpSettings,
    clients: Mutex<HashMap<(String, String), Arc<dyn GceApi>>>,
}

impl RestGceFactory {
    pub fn new(settings: GcpSettings) -> RestGceFactory {
        RestGceFactory {
            settings,
            clients: Mutex::new(HashMap::new()),
        }
    }
}

impl GceFactory for RestGceFactory {
    fn gce(&self, project: &str, region: &str) -> Result<Arc<dyn GceApi>, ResourceError> {
        let key = (project.to_string(), region.to_string());
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(&key) {
            return Ok(c.clone());
        }
        let c: Arc<dyn GceApi> = Arc::new(
            crate::cloud::gce::GceClient::new(&self.settings, project, region)
                .map_err(|e| ResourceError::NotConfigured(e.message))?,
        );
        clients.insert(key, c.clone());
        Ok(c)
    }
    fn default_project(&self) -> Option<String> {
        self.settings
            .project
            .clone()
            .or_else(|| std::env::var("GOOGLE_CLOUD_PROJECT").ok())
            .filter(|p| !p.is_empty())
    }
    fn default_region(&self) -> Option<String> {
        self.settings
            .region
            .clone()
            .or_else(|| std::env::var("GOOGLE_REGION").ok())
            .filter(|r| !r.is_empty())
    }
}
