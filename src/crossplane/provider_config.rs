//! `ProviderConfig`: where managed resources get their credentials and platform defaults. One
//! [`Context`] is built per ProviderConfig and cached; it is rebuilt when the ProviderConfig's
//! resourceVersion or a referenced Secret's resourceVersion changes, so rotating a key takes
//! effect without restarting the controller.

use super::names::{GROUP, VERSION};
use crate::cloud::aws::AwsSettings;
use crate::cloud::gce::GcpSettings;
use crate::cloud::kube::{KubeApi, KubeClient};
use crate::context::{Context, Defaults, RestGceFactory, SdkEc2Factory};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DynamicObject};
use kube::discovery::ApiResource;
use serde_json::Value as J;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("ProviderConfig {0:?} not found")]
    NotFound(String),
    #[error("cannot get {what}: {source}")]
    Kube {
        what: String,
        #[source]
        source: kube::Error,
    },
    #[error("Secret {namespace}/{name} referenced by ProviderConfig {config:?} not found")]
    SecretMissing {
        config: String,
        namespace: String,
        name: String,
    },
    #[error("Secret {namespace}/{name} has no key {key:?}")]
    KeyMissing {
        namespace: String,
        name: String,
        key: String,
    },
    #[error("ProviderConfig {config:?}: {message}")]
    Invalid { config: String, message: String },
}

pub fn api_resource() -> ApiResource {
    ApiResource {
        group: GROUP.into(),
        version: VERSION.into(),
        api_version: format!("{GROUP}/{VERSION}"),
        kind: "ProviderConfig".into(),
        plural: "providerconfigs".into(),
    }
}

/// A reference to one key of a Secret.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SecretKeyRef {
    namespace: String,
    name: String,
    key: String,
}

fn secret_ref(v: &J) -> Option<SecretKeyRef> {
    Some(SecretKeyRef {
        namespace: v["namespace"].as_str()?.to_string(),
        name: v["name"].as_str()?.to_string(),
        key: v["key"].as_str()?.to_string(),
    })
}

/// AWS static credentials from a Secret value: an AWS shared-credentials file (the `[default]`
/// profile, else the first one) or a JSON document `{access_key_id, secret_access_key}`.
pub fn parse_aws_credentials(doc: &str) -> Result<(String, String), String> {
    let doc = doc.trim();
    if doc.starts_with('{') {
        let j: J = serde_json::from_str(doc).map_err(|e| format!("credentials JSON: {e}"))?;
        let pick = |keys: &[&str]| {
            keys.iter()
                .find_map(|k| j.get(*k).and_then(J::as_str))
                .map(String::from)
        };
        let ak = pick(&[
            "access_key_id",
            "aws_access_key_id",
            "AccessKeyId",
            "accessKeyId",
        ]);
        let sk = pick(&[
            "secret_access_key",
            "aws_secret_access_key",
            "SecretAccessKey",
            "secretAccessKey",
        ]);
        return match (ak, sk) {
            (Some(a), Some(s)) => Ok((a, s)),
            _ => Err("credentials JSON needs access_key_id and secret_access_key".into()),
        };
    }
    let mut profiles: Vec<(String, BTreeMap<String, String>)> = vec![];
    for line in doc.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(p) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            profiles.push((p.trim().to_string(), BTreeMap::new()));
        } else if let Some((k, v)) = line.split_once('=') {
            if profiles.is_empty() {
                profiles.push(("default".into(), BTreeMap::new()));
            }
            if let Some(last) = profiles.last_mut() {
                last.1
                    .insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
    }
    let profile = profiles
        .iter()
        .find(|(n, _)| n == "default")
        .or_else(|| profiles.first())
        .ok_or("credentials file has no profile")?;
    match (
        profile.1.get("aws_access_key_id"),
        profile.1.get("aws_secret_access_key"),
    ) {
        (Some(a), Some(s)) => Ok((a.clone(), s.clone())),
        _ => Err(format!(
            "profile [{}] needs aws_access_key_id and aws_secret_access_key",
            profile.0
        )),
    }
}

/// The platform defaults of a ProviderConfig spec.
pub fn defaults(spec: &J) -> Defaults {
    let s = |k: &str| spec[k].as_str().filter(|v| !v.is_empty()).map(String::from);
    Defaults {
        team: s("defaultTeam"),
        project: s("defaultProject"),
        tags: spec["defaultTags"]
            .as_object()
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default(),
        price_overrides: BTreeMap::new(),
        limits: limits(spec),
    }
}

/// `spec.budgets: [{team, monthlyUSD}]` and `spec.gpuQuotas: [{team, maxGPUs}]`.
pub fn limits(spec: &J) -> crate::budget::Limits {
    let pairs = |list: &str, key: &str| -> Vec<(String, f64)> {
        spec[list]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|b| Some((b["team"].as_str()?.to_string(), b[key].as_f64()?)))
                    .collect()
            })
            .unwrap_or_default()
    };
    crate::budget::Limits {
        monthly_usd: pairs("budgets", "monthlyUSD").into_iter().collect(),
        max_gpus: pairs("gpuQuotas", "maxGPUs")
            .into_iter()
            .map(|(t, n)| (t, n as i64))
            .collect(),
    }
}

struct Entry {
    fingerprint: String,
    ctx: Context,
    checked: Instant,
}

/// Builds and caches one [`Context`] per ProviderConfig.
pub struct ProviderConfigs {
    client: kube::Client,
    /// The controller's own cluster access, shared by every `InjectedIdentity` context.
    injected: Arc<dyn KubeApi>,
    cache: Mutex<HashMap<String, Entry>>,
    /// How long a cached context is used before the ProviderConfig and its Secrets are looked at
    /// again: bounds both API traffic (one check per interval, not per reconcile) and how long a
    /// rotated credential takes to apply.
    recheck: Duration,
}

impl ProviderConfigs {
    pub fn new(client: kube::Client, recheck: Duration) -> ProviderConfigs {
        ProviderConfigs {
            injected: Arc::new(KubeClient::with_client(client.clone())),
            client,
            cache: Mutex::new(HashMap::new()),
            recheck,
        }
    }

    /// The context for ProviderConfig `name`.
    pub async fn get(&self, name: &str) -> Result<Context, ConfigError> {
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = cache.get(name) {
                if e.checked.elapsed() < self.recheck {
                    return Ok(e.ctx.clone());
                }
            }
        }
        let pcs: Api<DynamicObject> = Api::all_with(self.client.clone(), &api_resource());
        let pc = pcs
            .get_opt(name)
            .await
            .map_err(|source| ConfigError::Kube {
                what: format!("ProviderConfig {name:?}"),
                source,
            })?
            .ok_or_else(|| ConfigError::NotFound(name.to_string()))?;
        let spec = pc.data["spec"].clone();
        let mut refs = vec![];
        if spec["credentials"]["source"].as_str() == Some("Secret") {
            refs.push(
                secret_ref(&spec["credentials"]["secretRef"]).ok_or_else(|| {
                    ConfigError::Invalid {
                        config: name.into(),
                        message:
                            "credentials.source is Secret but credentials.secretRef is incomplete"
                                .into(),
                    }
                })?,
            );
        }
        if spec["kubernetes"]["source"].as_str() == Some("Secret") {
            refs.push(secret_ref(&spec["kubernetes"]["secretRef"]).ok_or_else(|| {
                ConfigError::Invalid {
                    config: name.into(),
                    message: "kubernetes.source is Secret but kubernetes.secretRef is incomplete"
                        .into(),
                }
            })?);
        }
        if spec["gcp"]["credentials"]["source"].as_str() == Some("Secret") {
            refs.push(
                secret_ref(&spec["gcp"]["credentials"]["secretRef"]).ok_or_else(|| {
                    ConfigError::Invalid {
                        config: name.into(),
                        message: "gcp.credentials.source is Secret but gcp.credentials.secretRef is incomplete".into(),
                    }
                })?,
            );
        }
        let mut secrets: HashMap<SecretKeyRef, (String, String)> = HashMap::new();
        let mut fingerprint = pc.metadata.resource_version.clone().unwrap_or_default();
        for r in &refs {
            let api: Api<Secret> = Api::namespaced(self.client.clone(), &r.namespace);
            let s = api
                .get_opt(&r.name)
                .await
                .map_err(|source| ConfigError::Kube {
                    what: format!("Secret {}/{}", r.namespace, r.name),
                    source,
                })?
                .ok_or_else(|| ConfigError::SecretMissing {
                    config: name.into(),
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                })?;
            let rv = s.metadata.resource_version.clone().unwrap_or_default();
            fingerprint.push('/');
            fingerprint.push_str(&rv);
            let value = s
                .data
                .as_ref()
                .and_then(|d| d.get(&r.key))
                .map(|b| String::from_utf8_lossy(&b.0).to_string())
                .or_else(|| s.string_data.as_ref().and_then(|d| d.get(&r.key)).cloned())
                .ok_or_else(|| ConfigError::KeyMissing {
                    namespace: r.namespace.clone(),
                    name: r.name.clone(),
                    key: r.key.clone(),
                })?;
            secrets.insert(r.clone(), (rv, value));
        }
        {
            let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(e) = cache.get_mut(name) {
                if e.fingerprint == fingerprint {
                    e.checked = Instant::now();
                    return Ok(e.ctx.clone());
                }
            }
        }
        let ctx = self.build(name, &spec, &refs, &secrets).await?;
        tracing::info!(provider_config = name, "built context from ProviderConfig");
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(
            name.to_string(),
            Entry {
                fingerprint,
                ctx: ctx.clone(),
                checked: Instant::now(),
            },
        );
        Ok(ctx)
    }

    async fn build(
        &self,
        name: &str,
        spec: &J,
        refs: &[SecretKeyRef],
        secrets: &HashMap<SecretKeyRef, (String, String)>,
    ) -> Result<Context, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            config: name.to_string(),
            message,
        };
        let mut aws = AwsSettings {
            region: spec["aws"]["region"].as_str().map(String::from),
            ec2_endpoint: spec["aws"]["endpoints"]["ec2"].as_str().map(String::from),
            sts_endpoint: spec["aws"]["endpoints"]["sts"].as_str().map(String::from),
            skip_credentials_validation: spec["aws"]["skipCredentialsValidation"]
                .as_bool()
                .unwrap_or(false),
            ..AwsSettings::default()
        };
        let mut next = refs.iter();
        if spec["credentials"]["source"].as_str() == Some("Secret") {
            let r = next
                .next()
                .ok_or_else(|| invalid("credentials secret missing".into()))?;
            let doc = &secrets[r].1;
            let (ak, sk) = parse_aws_credentials(doc).map_err(|m| {
                invalid(format!(
                    "Secret {}/{} key {}: {m}",
                    r.namespace, r.name, r.key
                ))
            })?;
            aws.access_key = Some(ak);
            aws.secret_key = Some(sk);
        }
        let kube: Arc<dyn KubeApi> = if spec["kubernetes"]["source"].as_str() == Some("Secret") {
            let r = next
                .next()
                .ok_or_else(|| invalid("kubeconfig secret missing".into()))?;
            let text = &secrets[r].1;
            let kc = kube::config::Kubeconfig::from_yaml(text).map_err(|e| {
                invalid(format!(
                    "kubeconfig in Secret {}/{}: {e}",
                    r.namespace, r.name
                ))
            })?;
            let cfg = kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| {
                    invalid(format!(
                        "kubeconfig in Secret {}/{}: {e}",
                        r.namespace, r.name
                    ))
                })?;
            let client = kube::Client::try_from(cfg).map_err(|e| {
                invalid(format!(
                    "kubeconfig in Secret {}/{}: {e}",
                    r.namespace, r.name
                ))
            })?;
            Arc::new(KubeClient::with_client(client))
        } else {
            self.injected.clone()
        };
        let factory = Arc::new(SdkEc2Factory::new(aws));
        let mut ctx = Context::new(defaults(spec), Some(factory)).with_kube(kube);
        ctx.impersonate_requester = spec["kubernetes"]["impersonateRequester"]
            .as_bool()
            .unwrap_or(false);
        let g = &spec["gcp"];
        if g.is_object() {
            let mut gcp = GcpSettings {
                project: g["project"].as_str().map(String::from),
                region: g["region"].as_str().map(String::from),
                endpoint: g["endpoint"].as_str().map(String::from),
                credentials: None,
            };
            if g["credentials"]["source"].as_str() == Some("Secret") {
                let r = next
                    .next()
                    .ok_or_else(|| invalid("gcp credentials secret missing".into()))?;
                let doc = secrets[r].1.trim();
                crate::cloud::gcp_auth::parse_value(doc, "the gcp.credentials secret")
                    .map_err(invalid)?;
                gcp.credentials = Some(doc.to_string());
            }
            ctx = ctx.with_gce(Arc::new(RestGceFactory::new(gcp)));
        }
        Ok(ctx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn credentials_documents() {
        let ini = "# comment\n[other]\naws_access_key_id=X\naws_secret_access_key=Y\n[default]\naws_access_key_id = AK\naws_secret_access_key = SK\n";
        assert_eq!(
            parse_aws_credentials(ini).unwrap(),
            ("AK".into(), "SK".into())
        );
        let only = "[ci]\nAWS_ACCESS_KEY_ID=a\nAWS_SECRET_ACCESS_KEY=b";
        assert_eq!(
            parse_aws_credentials(only).unwrap(),
            ("a".into(), "b".into())
        );
        let j = r#"{"access_key_id": "test", "secret_access_key": "test2"}"#;
        assert_eq!(
            parse_aws_credentials(j).unwrap(),
            ("test".into(), "test2".into())
        );
        assert!(parse_aws_credentials("[default]\naws_access_key_id=a").is_err());
        assert!(parse_aws_credentials("{\"access_key_id\": 1}").is_err());
    }

    #[test]
    fn defaults_come_from_the_spec() {
        let d = defaults(&json!({"defaultTeam": "ml", "defaultTags": {"env": "dev"}}));
        assert_eq!(d.team.as_deref(), Some("ml"));
        assert_eq!(d.project, None);
        assert_eq!(d.tags.get("env").map(String::as_str), Some("dev"));
    }
}
