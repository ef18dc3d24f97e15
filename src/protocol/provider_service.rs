//! The `tfplugin6.Provider` gRPC service: decodes requests with the resource's schema, runs the
//! generic rules and the resource's verbs, and encodes the answers. It never names a resource.
//!
//! User-level failures are diagnostics, never gRPC errors: Terraform renders diagnostics with
//! the attribute path, but turns a gRPC error into an opaque "plugin error".

use super::convert;
use super::pb;
use crate::cty::{self, Type, Value};
use crate::diag::{Diagnostic, Diagnostics};
use crate::plan;
use crate::provider::Provider;
use crate::resource::{PlanInputs, Resource};
use crate::schema::Schema;
use std::collections::HashMap;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tracing::Instrument;

pub struct ProviderService {
    provider: Arc<Provider>,
    provider_schema: Schema,
    schemas: HashMap<String, (Schema, Type)>,
    data_schemas: HashMap<String, (Schema, Type)>,
}

impl ProviderService {
    pub fn new(provider: Arc<Provider>) -> ProviderService {
        let schemas = provider
            .resources()
            .map(|r| {
                let s = r.schema();
                let t = s.implied_type();
                (r.type_name().to_string(), (s, t))
            })
            .collect();
        let data_schemas = provider
            .data_sources()
            .map(|d| {
                let s = d.schema();
                let t = s.implied_type();
                (d.type_name().to_string(), (s, t))
            })
            .collect();
        ProviderService {
            provider,
            provider_schema: crate::provider::config::schema(),
            schemas,
            data_schemas,
        }
    }

    fn resource(
        &self,
        type_name: &str,
    ) -> Result<(&Arc<dyn Resource>, &Schema, &Type), Diagnostic> {
        match (self.provider.resource(type_name), self.schemas.get(type_name)) {
            (Some(r), Some((s, t))) => Ok((r, s, t)),
            _ => Err(Diagnostic::error(
                "Unknown resource type",
                format!("This provider has no resource type {type_name:?}; check the spelling and the provider version."),
            )),
        }
    }
}

fn diags(d: &Diagnostics) -> Vec<pb::Diagnostic> {
    convert::diagnostics(d)
}

fn one(d: Diagnostic) -> Vec<pb::Diagnostic> {
    vec![convert::diagnostic(&d)]
}

/// Logs every diagnostic once, at the edge, without values (they may be secrets).
fn log_diags(d: &Diagnostics) {
    for x in d.iter() {
        let path = x.path.as_ref().map(|p| p.to_string()).unwrap_or_default();
        tracing::warn!(summary = %x.summary, attribute = %path, "diagnostic");
    }
}

macro_rules! rpc_span {
    ($name:expr, $type_name:expr) => {
        tracing::info_span!("rpc", rpc = $name, tf_resource_type = %$type_name)
    };
}

#[tonic::async_trait]
impl pb::provider_server::Provider for ProviderService {
    async fn get_provider_schema(
        &self,
        _req: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        let _s = rpc_span!("GetProviderSchema", "").entered();
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(convert::schema(&self.provider_schema)),
            resource_schemas: self
                .schemas
                .iter()
                .map(|(k, (s, _))| (k.clone(), convert::schema(s)))
                .collect(),
            data_source_schemas: self
                .data_schemas
                .iter()
                .map(|(k, (s, _))| (k.clone(), convert::schema(s)))
                .collect(),
            diagnostics: vec![],
            provider_meta: None,
        }))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let _s = rpc_span!("ValidateProviderConfig", "").entered();
        let t = self.provider_schema.implied_type();
        let d = match convert::decode(req.get_ref().config.as_ref(), &t) {
            Ok(cfg) => crate::provider::config::validate(&cfg),
            Err(d) => d.into(),
        };
        log_diags(&d);
        Ok(Response::new(pb::validate_provider_config::Response {
            diagnostics: diags(&d),
        }))
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let _s = rpc_span!("ConfigureProvider", "").entered();
        let t = self.provider_schema.implied_type();
        let d = match convert::decode(req.get_ref().config.as_ref(), &t) {
            Ok(cfg) => self.provider.configure(&cfg),
            Err(d) => d.into(),
        };
        tracing::info!(terraform_version = %req.get_ref().terraform_version, "provider configured");
        log_diags(&d);
        Ok(Response::new(pb::configure_provider::Response {
            diagnostics: diags(&d),
        }))
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let req = req.into_inner();
        let _s = rpc_span!("ValidateResourceConfig", req.type_name).entered();
        let d = (|| {
            let (r, _, t) = self.resource(&req.type_name)?;
            let cfg = convert::decode(req.config.as_ref(), t)?;
            Ok::<_, Diagnostic>(r.validator().map(|v| v.validate(&cfg)).unwrap_or_default())
        })()
        .unwrap_or_else(Diagnostics::from);
        log_diags(&d);
        Ok(Response::new(pb::validate_resource_config::Response {
            diagnostics: diags(&d),
        }))
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let req = req.into_inner();
        let _s = rpc_span!("ValidateDataResourceConfig", req.type_name).entered();
        let d = (|| {
            let (ds, t) = self.data_source(&req.type_name)?;
            let cfg = convert::decode(req.config.as_ref(), t)?;
            Ok::<_, Diagnostic>(ds.validate(&cfg))
        })()
        .unwrap_or_else(Diagnostics::from);
        log_diags(&d);
        Ok(Response::new(pb::validate_data_resource_config::Response {
            diagnostics: diags(&d),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = req.into_inner();
        let _s = rpc_span!("UpgradeResourceState", req.type_name).entered();
        let result = (|| {
            let (r, s, t) = self.resource(&req.type_name)?;
            let raw = req.raw_state.unwrap_or_default();
            if raw.json.is_empty() {
                return Err(Diagnostic::error(
                    "Legacy state format",
                    "This state was written by Terraform 0.11 or older (flatmap); paved resources never had that format. Remove it with terraform state rm and import the object again.",
                ));
            }
            let json: serde_json::Value = serde_json::from_slice(&raw.json).map_err(|e| {
                Diagnostic::error(
                    "Corrupt state",
                    format!("The stored state is not valid JSON: {e}."),
                )
            })?;
            let v = if req.version < s.version {
                match r.state_upgrader() {
                    Some(u) => u
                        .upgrade(req.version, &json)
                        .map_err(|e| e.to_diagnostic())?,
                    None => lenient(&json, t)?,
                }
            } else if req.version > s.version {
                return Err(Diagnostic::error(
                    "State written by a newer provider",
                    format!("The state has schema version {} but this provider knows version {}. Upgrade the paved provider.", req.version, s.version),
                ));
            } else {
                lenient(&json, t)?
            };
            convert::encode(&v, t)
        })();
        Ok(Response::new(match result {
            Ok(v) => pb::upgrade_resource_state::Response {
                upgraded_state: Some(v),
                diagnostics: vec![],
            },
            Err(d) => pb::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics: one(d),
            },
        }))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("ReadResource", req.type_name);
        async move {
            let (r, _, t) = match self.resource(&req.type_name) {
                Ok(x) => x,
                Err(d) => {
                    return Ok(Response::new(read_response(
                        req.current_state,
                        req.private,
                        one(d),
                    )))
                }
            };
            let state = match convert::decode(req.current_state.as_ref(), t) {
                Ok(v) => v,
                Err(d) => {
                    return Ok(Response::new(read_response(
                        req.current_state,
                        req.private,
                        one(d),
                    )))
                }
            };
            if state.is_null() {
                return Ok(Response::new(read_response(
                    req.current_state,
                    req.private,
                    vec![],
                )));
            }
            let ctx = self.provider.context();
            match r.read(&ctx, &state).await {
                Ok(Some(v)) => match convert::encode(&v, t) {
                    Ok(dv) => {
                        ctx.remember(&req.type_name, &v);
                        Ok(Response::new(read_response(Some(dv), req.private, vec![])))
                    }
                    Err(d) => Ok(Response::new(read_response(
                        req.current_state,
                        req.private,
                        one(d),
                    ))),
                },
                Ok(None) => {
                    tracing::info!("object no longer exists; removing it from state");
                    let null = convert::encode(&Value::Null, t).ok();
                    Ok(Response::new(read_response(null, req.private, vec![])))
                }
                Err(e) => {
                    let d = e.to_diagnostic();
                    log_diags(&d.clone().into());
                    Ok(Response::new(read_response(
                        req.current_state,
                        req.private,
                        one(d),
                    )))
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = req.into_inner();
        let _s = rpc_span!("PlanResourceChange", req.type_name).entered();
        let result = (|| {
            let (r, s, t) = self.resource(&req.type_name)?;
            let prior = convert::decode(req.prior_state.as_ref(), t)?;
            let proposed = convert::decode(req.proposed_new_state.as_ref(), t)?;
            let config = convert::decode(req.config.as_ref(), t)?;
            if proposed.is_null() {
                // Destroy: the plan is null.
                return Ok((
                    convert::encode(&Value::Null, t)?,
                    vec![],
                    Diagnostics::new(),
                ));
            }
            let prior_opt = (!prior.is_null()).then_some(&prior);
            let mut p = plan::plan(s, prior_opt, &proposed, &config);
            let mut d = Diagnostics::new();
            if let Some(m) = r.plan_modifier() {
                let ctx = self.provider.context();
                let inputs = PlanInputs {
                    prior: prior_opt,
                    config: &config,
                };
                m.modify_plan(
                    &ctx,
                    &inputs,
                    &mut p.planned,
                    &mut p.requires_replace,
                    &mut d,
                );
            }
            Ok((convert::encode(&p.planned, t)?, p.requires_replace, d))
        })();
        Ok(Response::new(match result {
            Ok((planned, rr, d)) => {
                log_diags(&d);
                pb::plan_resource_change::Response {
                    planned_state: Some(planned),
                    requires_replace: rr.iter().map(convert::path).collect(),
                    planned_private: req.prior_private,
                    diagnostics: diags(&d),
                }
            }
            Err(d) => pb::plan_resource_change::Response {
                planned_state: None,
                requires_replace: vec![],
                planned_private: vec![],
                diagnostics: one(d),
            },
        }))
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("ApplyResourceChange", req.type_name);
        async move {
            let fail = |state: Option<pb::DynamicValue>, d: Diagnostic| {
                log_diags(&d.clone().into());
                Response::new(pb::apply_resource_change::Response {
                    new_state: state,
                    private: vec![],
                    diagnostics: one(d),
                })
            };
            let (r, _, t) = match self.resource(&req.type_name) {
                Ok(x) => x,
                Err(d) => return Ok(fail(req.prior_state, d)),
            };
            let (prior, planned) = match (
                convert::decode(req.prior_state.as_ref(), t),
                convert::decode(req.planned_state.as_ref(), t),
            ) {
                (Ok(a), Ok(b)) => (a, b),
                (Err(d), _) | (_, Err(d)) => return Ok(fail(req.prior_state, d)),
            };
            let ctx = self.provider.context();
            let outcome = if planned.is_null() {
                tracing::info!("deleting");
                match r.delete(&ctx, &prior).await {
                    Ok(()) => Ok(Value::Null),
                    // A failed delete leaves the object in state, as it still exists.
                    Err(e) => Err(crate::error::ApplyError::with_state(e, prior.clone())),
                }
            } else if prior.is_null() {
                tracing::info!("creating");
                r.create(&ctx, &planned).await
            } else {
                tracing::info!("updating");
                r.update(&ctx, &prior, &planned).await.map_err(|mut e| {
                    // An update that could not say what exists keeps the prior state.
                    e.state.get_or_insert_with(|| prior.clone());
                    e
                })
            };
            match outcome {
                Ok(v) if !v.is_wholly_known() => Ok(fail(
                    req.prior_state,
                    Diagnostic::error(
                        "Provider returned unknown values after apply",
                        "This is a bug in paved; please report it.",
                    ),
                )),
                Ok(v) => match convert::encode(&v, t) {
                    Ok(dv) => {
                        ctx.remember(&req.type_name, &v);
                        Ok(Response::new(pb::apply_resource_change::Response {
                            new_state: Some(dv),
                            private: req.planned_private,
                            diagnostics: vec![],
                        }))
                    }
                    Err(d) => Ok(fail(req.prior_state, d)),
                },
                Err(e) => {
                    let state = e.state.as_ref().and_then(|s| convert::encode(s, t).ok());
                    let state = state.or_else(|| convert::encode(&Value::Null, t).ok());
                    Ok(fail(state, e.error.to_diagnostic()))
                }
            }
        }
        .instrument(span)
        .await
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("ImportResourceState", req.type_name);
        async move {
            let result = async {
                let (r, _, t) = self.resource(&req.type_name)?;
                let importer = r.importer().ok_or_else(|| {
                    Diagnostic::error(
                        "Import not supported",
                        format!("{} cannot be imported.", req.type_name),
                    )
                })?;
                let ctx = self.provider.context();
                let v = importer
                    .import(&ctx, &req.id)
                    .await
                    .map_err(|e| e.to_diagnostic())?;
                convert::encode(&v, t)
            }
            .await;
            Ok(Response::new(match result {
                Ok(state) => pb::import_resource_state::Response {
                    imported_resources: vec![pb::import_resource_state::ImportedResource {
                        type_name: req.type_name.clone(),
                        state: Some(state),
                        private: vec![],
                    }],
                    diagnostics: vec![],
                },
                Err(d) => pb::import_resource_state::Response {
                    imported_resources: vec![],
                    diagnostics: one(d),
                },
            }))
        }
        .instrument(span)
        .await
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("ReadDataSource", req.type_name);
        async move {
            let result = async {
                let (ds, t) = self.data_source(&req.type_name)?;
                let cfg = convert::decode(req.config.as_ref(), t)?;
                let ctx = self.provider.context();
                let v = ds.read(&ctx, &cfg).await.map_err(|e| e.to_diagnostic())?;
                convert::encode(&v, t)
            }
            .await;
            Ok(Response::new(match result {
                Ok(state) => pb::read_data_source::Response {
                    state: Some(state),
                    diagnostics: vec![],
                },
                Err(d) => pb::read_data_source::Response {
                    state: None,
                    diagnostics: one(d),
                },
            }))
        }
        .instrument(span)
        .await
    }

    async fn stop_provider(
        &self,
        _req: Request<pb::stop_provider::Request>,
    ) -> Result<Response<pb::stop_provider::Response>, Status> {
        tracing::info!("StopProvider: cancelling in-flight operations");
        self.provider.stop();
        Ok(Response::new(pb::stop_provider::Response {
            error: String::new(),
        }))
    }
}

impl ProviderService {
    fn data_source(
        &self,
        type_name: &str,
    ) -> Result<(&Arc<dyn crate::data_source::DataSource>, &Type), Diagnostic> {
        match (
            self.provider.data_source(type_name),
            self.data_schemas.get(type_name),
        ) {
            (Some(d), Some((_, t))) => Ok((d, t)),
            _ => Err(unknown_data_source(type_name)),
        }
    }
}

fn unknown_data_source(name: &str) -> Diagnostic {
    Diagnostic::error(
        "Unknown data source",
        format!("This provider has no data source {name:?}."),
    )
}

fn lenient(json: &serde_json::Value, t: &Type) -> Result<Value, Diagnostic> {
    cty::json::decode_lenient_unknown_attrs(json, t).map_err(|e| {
        Diagnostic::error(
            "Corrupt state",
            format!("The stored state does not match the schema: {e}."),
        )
    })
}

fn read_response(
    state: Option<pb::DynamicValue>,
    private: Vec<u8>,
    diagnostics: Vec<pb::Diagnostic>,
) -> pb::read_resource::Response {
    pb::read_resource::Response {
        new_state: state,
        diagnostics,
        private,
    }
}
