//! The provider as both front ends see it: its schema, its configuration and the registered
//! resources. Holds no protocol types.

pub mod config;

use crate::context::{Context, RestGceFactory, SdkEc2Factory};
use crate::cty::Value;
use crate::data_source::DataSource;
use crate::diag::Diagnostics;
use crate::ephemeral::EphemeralResource;
use crate::function::Function;
use crate::resource::Resource;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

pub struct Provider {
    resources: BTreeMap<&'static str, Arc<dyn Resource>>,
    data_sources: BTreeMap<&'static str, Arc<dyn DataSource>>,
    ephemeral_resources: BTreeMap<&'static str, Arc<dyn EphemeralResource>>,
    functions: BTreeMap<&'static str, Arc<dyn Function>>,
    ctx: RwLock<Context>,
    cancel: Arc<crate::context::Cancel>,
}

impl Default for Provider {
    fn default() -> Self {
        Provider::new(crate::resources::all())
    }
}

impl Provider {
    pub fn new(resources: Vec<Arc<dyn Resource>>) -> Provider {
        let ctx = Context::unconfigured();
        Provider {
            cancel: ctx.cancel.clone(),
            resources: resources.into_iter().map(|r| (r.type_name(), r)).collect(),
            data_sources: crate::data_sources::all()
                .into_iter()
                .map(|d| (d.type_name(), d))
                .collect(),
            ephemeral_resources: crate::ephemeral_resources::all()
                .into_iter()
                .map(|e| (e.type_name(), e))
                .collect(),
            functions: crate::functions::all()
                .into_iter()
                .map(|f| (f.name(), f))
                .collect(),
            ctx: RwLock::new(ctx),
        }
    }

    pub fn resources(&self) -> impl Iterator<Item = &Arc<dyn Resource>> {
        self.resources.values()
    }

    pub fn resource(&self, type_name: &str) -> Option<&Arc<dyn Resource>> {
        self.resources.get(type_name)
    }

    pub fn data_sources(&self) -> impl Iterator<Item = &Arc<dyn DataSource>> {
        self.data_sources.values()
    }

    pub fn data_source(&self, type_name: &str) -> Option<&Arc<dyn DataSource>> {
        self.data_sources.get(type_name)
    }

    pub fn ephemeral_resources(&self) -> impl Iterator<Item = &Arc<dyn EphemeralResource>> {
        self.ephemeral_resources.values()
    }

    pub fn ephemeral_resource(&self, type_name: &str) -> Option<&Arc<dyn EphemeralResource>> {
        self.ephemeral_resources.get(type_name)
    }

    pub fn functions(&self) -> impl Iterator<Item = &Arc<dyn Function>> {
        self.functions.values()
    }

    pub fn function(&self, name: &str) -> Option<&Arc<dyn Function>> {
        self.functions.get(name)
    }

    /// Applies a provider configuration. Never contacts a cloud: credentials are checked lazily
    /// before the first change, so plans work offline.
    pub fn configure(&self, config: &Value) -> Diagnostics {
        let d = config::validate(config);
        if d.has_errors() {
            return d;
        }
        let (defaults, aws) = config::parse(config);
        let factory = aws.map(|s| Arc::new(SdkEc2Factory::new(s)) as _);
        let kube = Arc::new(crate::cloud::kube::KubeClient::new(config::parse_kube(
            config,
        )));
        let mut ctx = Context::new(defaults, factory)
            .with_kube(kube)
            .with_gce(Arc::new(RestGceFactory::new(config::parse_gcp(config))));
        let mut d = d;
        match config::parse_audit(config, |k| std::env::var(k).ok()) {
            Ok(Some(trail)) => {
                close_interrupted(&trail, &mut d);
                ctx = ctx.with_audit(Arc::new(trail));
            }
            Ok(None) => {}
            Err(e) => {
                d.push(e);
                return d;
            }
        }
        match config::parse_lineage(config, |k| std::env::var(k).ok()) {
            Ok(Some(l)) => ctx = ctx.with_lineage(l),
            Ok(None) => {}
            Err(e) => {
                d.push(e);
                return d;
            }
        }
        self.set_context(ctx);
        d
    }

    /// Installs a context directly (tests, Crossplane ProviderConfig).
    pub fn set_context(&self, mut ctx: Context) {
        ctx.cancel = self.cancel.clone();
        *self.ctx.write().unwrap_or_else(|e| e.into_inner()) = ctx;
    }

    pub fn context(&self) -> Context {
        self.ctx.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// StopProvider: cancels in-flight waits.
    pub fn stop(&self) {
        self.cancel.cancel();
    }
}

/// Reports and closes the changes an earlier provider process began and never finished. An
/// unwritable trail is only a warning here (plans stay possible); a change fails on it.
fn close_interrupted(trail: &crate::audit::Trail, d: &mut Diagnostics) {
    match trail.close_interrupted() {
        Ok(closed) if closed.is_empty() => {}
        Ok(closed) => {
            let list: Vec<String> = closed
                .iter()
                .map(|r| {
                    format!(
                        "{} {} {} (request {}, started {})",
                        r.action,
                        r.resource_type,
                        r.resource_id
                            .as_deref()
                            .or(r.name.as_deref())
                            .unwrap_or("-"),
                        r.request_id,
                        r.time
                    )
                })
                .collect();
            d.push(crate::diag::Diagnostic::warning(
                "Interrupted changes in the audit trail",
                format!(
                    "An earlier run ended before these changes finished: {}. Each is now closed with result \"interrupted\" in {}; this run's refresh reads what exists and adopts it.",
                    list.join("; "),
                    trail.log.path().display()
                ),
            ));
        }
        Err(e) => d.push(crate::diag::Diagnostic::warning(
            "Audit trail not readable",
            format!("{e}. Changes will fail until paved can write the trail."),
        )),
    }
}
