//! The `tfplugin6.Provider` gRPC service: decodes requests with the resource's schema, runs the
//! generic rules and the resource's verbs, and encodes the answers. It never names a resource.
//!
//! User-level failures are diagnostics, never gRPC errors: Terraform renders diagnostics with
//! the attribute path, but turns a gRPC error into an opaque "plugin error". The one gRPC status
//! paved sends is UNIMPLEMENTED, for the RPCs of protocol 6.9 it does not serve (resource
//! identity, moves): that is the only answer newer CLIs read as "not supported".
//!
//! Every handler runs under [`guarded`], so a panic anywhere below becomes a diagnostic for that
//! one request (and a log line) instead of a dropped connection the CLI reports as "Request
//! cancelled".

use super::convert;
use super::pb;
use crate::cty::{self, Type, Value};
use crate::diag::{Diagnostic, Diagnostics};
use crate::plan;
use crate::provider::Provider;
use crate::resource::{PlanInputs, Resource};
use crate::schema::Schema;
use futures::FutureExt;
use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tonic::{Request, Response, Status};
use tracing::Instrument;

pub struct ProviderService {
    provider: Arc<Provider>,
    provider_schema: Schema,
    schemas: HashMap<String, (Schema, Type)>,
    data_schemas: HashMap<String, (Schema, Type)>,
    ephemeral_schemas: HashMap<String, (Schema, Type)>,
}

/// What paved tells the CLI it supports beyond protocol 6.0.
fn server_capabilities() -> pb::ServerCapabilities {
    pb::ServerCapabilities {
        // Destroys are planned by paved too (deletion protection, data-loss warnings).
        plan_destroy: true,
        // The schema is the same in every process, so the CLI may cache one copy.
        get_provider_schema_optional: true,
        move_resource_state: false,
    }
}

/// Runs one RPC handler; a panic inside it becomes `on_panic(diagnostic)` for that request.
async fn guarded<R>(
    rpc: &'static str,
    span: tracing::Span,
    handler: impl Future<Output = R>,
    on_panic: impl FnOnce(pb::Diagnostic) -> R,
) -> Result<Response<R>, Status> {
    let panic_span = span.clone();
    match AssertUnwindSafe(handler.instrument(span))
        .catch_unwind()
        .await
    {
        Ok(r) => Ok(Response::new(r)),
        Err(payload) => {
            let what = crate::error::panic_message(payload.as_ref());
            let _g = panic_span.enter();
            tracing::error!(rpc, panic = %what, "handler panicked");
            Ok(Response::new(on_panic(convert::diagnostic(&Diagnostic::error(
                "Provider bug: the request failed unexpectedly",
                format!("paved hit an internal error while serving {rpc} ({what}). The state keeps what was recorded before this request, and the next refresh reads what exists. Please report it with the TF_LOG=debug output."),
            )))))
        }
    }
}

fn schemas_of<'a>(
    it: impl Iterator<Item = (&'static str, Schema)> + 'a,
) -> HashMap<String, (Schema, Type)> {
    it.map(|(name, s)| {
        let t = s.implied_type();
        (name.to_string(), (s, t))
    })
    .collect()
}

fn write_only_allowed(c: &Option<pb::ClientCapabilities>) -> bool {
    c.as_ref().is_some_and(|c| c.write_only_attributes_allowed)
}

impl ProviderService {
    pub fn new(provider: Arc<Provider>) -> ProviderService {
        let schemas = schemas_of(provider.resources().map(|r| (r.type_name(), r.schema())));
        let data_schemas = schemas_of(provider.data_sources().map(|d| (d.type_name(), d.schema())));
        let ephemeral_schemas = schemas_of(
            provider
                .ephemeral_resources()
                .map(|e| (e.type_name(), e.schema())),
        );
        ProviderService {
            provider,
            provider_schema: crate::provider::config::schema(),
            schemas,
            data_schemas,
            ephemeral_schemas,
        }
    }

    fn functions(&self) -> HashMap<String, pb::Function> {
        self.provider
            .functions()
            .map(|f| (f.name().to_string(), convert::function(f.as_ref())))
            .collect()
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

/// What the audit trail records of a Terraform change before it starts.
fn audit_subject(
    ctx: &crate::context::Context,
    type_name: &str,
    action: &'static str,
    prior: &Value,
    planned: &Value,
) -> crate::audit::Subject {
    crate::audit::Subject {
        front_end: "terraform",
        actor: ctx.identities(),
        requester: None,
        resource_type: type_name.to_string(),
        action,
        prior: prior.clone(),
        planned: planned.clone(),
    }
}

/// The diagnostic of a change refused because its intent could not be recorded.
fn audit_refused(e: &crate::audit::AuditError) -> Diagnostic {
    Diagnostic::error(
        "Audit record not written",
        format!("{e}. paved records every change before it starts, so nothing was changed. Make the file and its directory writable, or point the provider's audit.file (or PAVED_AUDIT_FILE) elsewhere."),
    )
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
    async fn get_metadata(
        &self,
        _req: Request<pb::get_metadata::Request>,
    ) -> Result<Response<pb::get_metadata::Response>, Status> {
        let _s = rpc_span!("GetMetadata", "").entered();
        use pb::get_metadata as m;
        let names = |it: Vec<&String>| -> Vec<String> { it.into_iter().cloned().collect() };
        Ok(Response::new(m::Response {
            server_capabilities: Some(server_capabilities()),
            diagnostics: vec![],
            data_sources: names(self.data_schemas.keys().collect())
                .into_iter()
                .map(|type_name| m::DataSourceMetadata { type_name })
                .collect(),
            resources: names(self.schemas.keys().collect())
                .into_iter()
                .map(|type_name| m::ResourceMetadata { type_name })
                .collect(),
            functions: self
                .provider
                .functions()
                .map(|f| m::FunctionMetadata {
                    name: f.name().to_string(),
                })
                .collect(),
            ephemeral_resources: names(self.ephemeral_schemas.keys().collect())
                .into_iter()
                .map(|type_name| m::EphemeralMetadata { type_name })
                .collect(),
        }))
    }

    async fn get_provider_schema(
        &self,
        _req: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        let _s = rpc_span!("GetProviderSchema", "").entered();
        let render = |m: &HashMap<String, (Schema, Type)>| {
            m.iter()
                .map(|(k, (s, _))| (k.clone(), convert::schema(s)))
                .collect()
        };
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(convert::schema(&self.provider_schema)),
            resource_schemas: render(&self.schemas),
            data_source_schemas: render(&self.data_schemas),
            functions: self.functions(),
            ephemeral_resource_schemas: render(&self.ephemeral_schemas),
            diagnostics: vec![],
            provider_meta: None,
            server_capabilities: Some(server_capabilities()),
        }))
    }

    async fn validate_provider_config(
        &self,
        req: Request<pb::validate_provider_config::Request>,
    ) -> Result<Response<pb::validate_provider_config::Response>, Status> {
        let span = rpc_span!("ValidateProviderConfig", "");
        let handler = async {
            let t = self.provider_schema.implied_type();
            let d = match convert::decode(req.get_ref().config.as_ref(), &t) {
                Ok(cfg) => crate::provider::config::validate(&cfg),
                Err(d) => d.into(),
            };
            log_diags(&d);
            pb::validate_provider_config::Response {
                diagnostics: diags(&d),
            }
        };
        guarded("ValidateProviderConfig", span, handler, |d| {
            pb::validate_provider_config::Response {
                diagnostics: vec![d],
            }
        })
        .await
    }

    async fn configure_provider(
        &self,
        req: Request<pb::configure_provider::Request>,
    ) -> Result<Response<pb::configure_provider::Response>, Status> {
        let span = rpc_span!("ConfigureProvider", "");
        let handler = async {
            let t = self.provider_schema.implied_type();
            let d = match convert::decode(req.get_ref().config.as_ref(), &t) {
                Ok(cfg) => self.provider.configure(&cfg),
                Err(d) => d.into(),
            };
            tracing::info!(terraform_version = %req.get_ref().terraform_version, "provider configured");
            log_diags(&d);
            pb::configure_provider::Response {
                diagnostics: diags(&d),
            }
        };
        guarded("ConfigureProvider", span, handler, |d| {
            pb::configure_provider::Response {
                diagnostics: vec![d],
            }
        })
        .await
    }

    async fn validate_resource_config(
        &self,
        req: Request<pb::validate_resource_config::Request>,
    ) -> Result<Response<pb::validate_resource_config::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("ValidateResourceConfig", req.type_name);
        let handler = async {
            let d = (|| {
                let (r, s, t) = self.resource(&req.type_name)?;
                let cfg = convert::decode(req.config.as_ref(), t)?;
                let mut d = r.validator().map(|v| v.validate(&cfg)).unwrap_or_default();
                if !write_only_allowed(&req.client_capabilities) {
                    for path in s.block.write_only_set(&cfg) {
                        d.push(Diagnostic::error(
                            "Write-only argument not supported by this CLI",
                            format!("{path} is write-only: its value is used during apply and never stored in the plan or state, which needs Terraform 1.11 or OpenTofu 1.11 or later. Upgrade the CLI, or set the argument it stands for (without the _wo suffix) instead; that one is stored in the state as a sensitive value."),
                        ).at(path));
                    }
                }
                Ok::<_, Diagnostic>(d)
            })()
            .unwrap_or_else(Diagnostics::from);
            log_diags(&d);
            pb::validate_resource_config::Response {
                diagnostics: diags(&d),
            }
        };
        guarded("ValidateResourceConfig", span, handler, |d| {
            pb::validate_resource_config::Response {
                diagnostics: vec![d],
            }
        })
        .await
    }

    async fn validate_data_resource_config(
        &self,
        req: Request<pb::validate_data_resource_config::Request>,
    ) -> Result<Response<pb::validate_data_resource_config::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("ValidateDataResourceConfig", req.type_name);
        let handler = async {
            let d = (|| {
                let (ds, t) = self.data_source(&req.type_name)?;
                let cfg = convert::decode(req.config.as_ref(), t)?;
                Ok::<_, Diagnostic>(ds.validate(&cfg))
            })()
            .unwrap_or_else(Diagnostics::from);
            log_diags(&d);
            pb::validate_data_resource_config::Response {
                diagnostics: diags(&d),
            }
        };
        guarded("ValidateDataResourceConfig", span, handler, |d| {
            pb::validate_data_resource_config::Response {
                diagnostics: vec![d],
            }
        })
        .await
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("UpgradeResourceState", req.type_name);
        let handler = async {
            let result = (|| {
                let (r, s, t) = self.resource(&req.type_name)?;
                let raw = req.raw_state.clone().unwrap_or_default();
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
                let mut v = if req.version < s.version {
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
                s.block.clear_write_only(&mut v);
                convert::encode(&v, t)
            })();
            match result {
                Ok(v) => pb::upgrade_resource_state::Response {
                    upgraded_state: Some(v),
                    diagnostics: vec![],
                },
                Err(d) => pb::upgrade_resource_state::Response {
                    upgraded_state: None,
                    diagnostics: one(d),
                },
            }
        };
        guarded("UpgradeResourceState", span, handler, |d| {
            pb::upgrade_resource_state::Response {
                upgraded_state: None,
                diagnostics: vec![d],
            }
        })
        .await
    }

    async fn get_resource_identity_schemas(
        &self,
        _req: Request<pb::get_resource_identity_schemas::Request>,
    ) -> Result<Response<pb::get_resource_identity_schemas::Response>, Status> {
        // Terraform >= 1.12 calls this on every schema fetch and fails the command on any answer
        // but UNIMPLEMENTED (or a real identity schema).
        Err(Status::unimplemented(
            "paved declares no resource identity; import takes the resource's ID",
        ))
    }

    async fn upgrade_resource_identity(
        &self,
        _req: Request<pb::upgrade_resource_identity::Request>,
    ) -> Result<Response<pb::upgrade_resource_identity::Response>, Status> {
        Err(Status::unimplemented("paved declares no resource identity"))
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("ReadResource", req.type_name);
        let keep = req.current_state.clone();
        let private = req.private.clone();
        let handler = async move {
            let (r, s, t) = match self.resource(&req.type_name) {
                Ok(x) => x,
                Err(d) => return read_response(req.current_state, req.private, one(d)),
            };
            let state = match convert::decode(req.current_state.as_ref(), t) {
                Ok(v) => v,
                Err(d) => return read_response(req.current_state, req.private, one(d)),
            };
            if state.is_null() {
                return read_response(req.current_state, req.private, vec![]);
            }
            let ctx = self.provider.context();
            match r.read(&ctx, &state).await {
                Ok(Some(crate::resource::Observed { state: mut v, .. })) => {
                    s.block.clear_write_only(&mut v);
                    match convert::encode(&v, t) {
                        Ok(dv) => {
                            ctx.remember(&req.type_name, &v);
                            read_response(Some(dv), req.private, vec![])
                        }
                        Err(d) => read_response(req.current_state, req.private, one(d)),
                    }
                }
                Ok(None) => {
                    tracing::info!("object no longer exists; removing it from state");
                    let null = convert::encode(&Value::Null, t).ok();
                    read_response(null, req.private, vec![])
                }
                Err(e) => {
                    let d = e.to_diagnostic();
                    log_diags(&d.clone().into());
                    read_response(req.current_state, req.private, one(d))
                }
            }
        };
        // A failed read keeps the state as it was.
        guarded("ReadResource", span, handler, |d| {
            read_response(keep, private, vec![d])
        })
        .await
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("PlanResourceChange", req.type_name);
        let handler = async {
            let result = (|| {
                let (r, s, t) = self.resource(&req.type_name)?;
                let prior = convert::decode(req.prior_state.as_ref(), t)?;
                let proposed = convert::decode(req.proposed_new_state.as_ref(), t)?;
                let config = convert::decode(req.config.as_ref(), t)?;
                if proposed.is_null() {
                    // Destroy (asked only by CLIs that honour plan_destroy): the plan is null;
                    // the resource may warn about what is lost or refuse.
                    let mut d = Diagnostics::new();
                    if let (false, Some(m)) = (prior.is_null(), r.plan_modifier()) {
                        m.plan_destroy(&self.provider.context(), &prior, &mut d);
                    }
                    return Ok((None, Value::Null, vec![], d));
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
                s.block.clear_write_only(&mut p.planned);
                Ok((Some((r.clone(), prior)), p.planned, p.requires_replace, d))
            })();
            // The budget check reads the clouds, so it runs here, outside the offline plan
            // modifier, bounded and downgraded to a warning when they do not answer.
            let result = match result {
                Ok((Some((r, prior)), planned, rr, mut d)) if !d.has_errors() => {
                    let ctx = self.provider.context();
                    let prior_opt = (!prior.is_null()).then_some(&prior);
                    crate::budget::plan_check(r.as_ref(), &ctx, prior_opt, &planned, &mut d).await;
                    Ok((planned, rr, d))
                }
                Ok((_, planned, rr, d)) => Ok((planned, rr, d)),
                Err(d) => Err(d),
            }
            .and_then(|(planned, rr, d)| {
                let t = self.resource(&req.type_name)?.2;
                Ok((convert::encode(&planned, t)?, rr, d))
            });
            match result {
                Ok((planned, rr, d)) => {
                    log_diags(&d);
                    pb::plan_resource_change::Response {
                        planned_state: Some(planned),
                        requires_replace: rr.iter().map(convert::path).collect(),
                        planned_private: req.prior_private.clone(),
                        diagnostics: diags(&d),
                        ..Default::default()
                    }
                }
                Err(d) => pb::plan_resource_change::Response {
                    diagnostics: one(d),
                    ..Default::default()
                },
            }
        };
        guarded("PlanResourceChange", span, handler, |d| {
            pb::plan_resource_change::Response {
                diagnostics: vec![d],
                ..Default::default()
            }
        })
        .await
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("ApplyResourceChange", req.type_name);
        let prior_state = req.prior_state.clone();
        let handler = async move {
            let fail = |state: Option<pb::DynamicValue>, d: Diagnostic| {
                log_diags(&d.clone().into());
                pb::apply_resource_change::Response {
                    new_state: state,
                    diagnostics: one(d),
                    ..Default::default()
                }
            };
            let (r, s, t) = match self.resource(&req.type_name) {
                Ok(x) => x,
                Err(d) => return fail(req.prior_state, d),
            };
            let (prior, mut planned, config) = match (
                convert::decode(req.prior_state.as_ref(), t),
                convert::decode(req.planned_state.as_ref(), t),
                convert::decode(req.config.as_ref(), t),
            ) {
                (Ok(a), Ok(b), Ok(c)) => (a, b, c),
                (Err(d), _, _) | (_, Err(d), _) | (_, _, Err(d)) => {
                    return fail(req.prior_state, d)
                }
            };
            // Write-only values are in the configuration only; the verbs see them in place.
            if !planned.is_null() {
                s.block.merge_write_only(&mut planned, &config);
            }
            let ctx = self.provider.context();
            // The intent is on disk before any cloud sees the change, or the change does not start.
            let pending = match ctx.audit.as_deref() {
                None => None,
                Some(trail) => {
                    let action = if planned.is_null() {
                        "delete"
                    } else if prior.is_null() {
                        "create"
                    } else {
                        "update"
                    };
                    let subject = audit_subject(&ctx, &req.type_name, action, &prior, &planned);
                    match trail.begin(&s.block, subject) {
                        Ok(p) => Some(p),
                        Err(e) => return fail(req.prior_state, audit_refused(&e)),
                    }
                }
            };
            // A lineage job's create or update is an OpenLineage run named by the request id.
            let run = match (&ctx.lineage, planned.is_null()) {
                (Some(l), false) => r.lineage(&ctx, &planned).map(|job| {
                    let id = pending
                        .as_ref()
                        .map_or_else(crate::audit::request_id, |p| p.request_id().to_string());
                    let requester = pending.as_ref().and_then(|p| p.intent().requester.clone());
                    let action = if prior.is_null() { "create" } else { "update" };
                    l.start(job, &id, action, requester.as_deref())
                }),
                _ => None,
            };
            let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
            let on_behalf = crate::cloud::kube::OnBehalf {
                requested_by: pending
                    .as_ref()
                    .and_then(|p| p.intent().requester.clone())
                    .or_else(|| env("PAVED_REQUESTER")),
                request_id: env("PAVED_REQUEST_ID"),
                change_url: env("PAVED_CHANGE_URL"),
                audit_request_id: pending.as_ref().map(|p| p.request_id().to_string()),
                impersonate: None,
            };
            let change = async {
                if planned.is_null() {
                    tracing::info!("deleting");
                    match crate::converge::delete(r.as_ref(), &ctx, &prior).await {
                        Ok(()) => Ok(Value::Null),
                        // A failed delete leaves the object in state, as it still exists.
                        Err(e) => Err(crate::error::ApplyError::with_state(e, prior.clone())),
                    }
                } else if prior.is_null() {
                    tracing::info!("creating");
                    crate::converge::create(r.as_ref(), &ctx, &planned).await
                } else {
                    tracing::info!("updating");
                    crate::converge::update(r.as_ref(), &ctx, &prior, &planned)
                        .await
                        .map_err(|mut e| {
                            // An update that could not say what exists keeps the prior state.
                            e.state.get_or_insert_with(|| prior.clone());
                            e
                        })
                }
            };
            let outcome = crate::cloud::kube::ON_BEHALF.scope(on_behalf, change).await;
            if let Some(run) = run {
                let failure = outcome.as_ref().err().map(|e| e.error.to_string());
                run.finish(match (&outcome, &failure) {
                    (Ok(v), _) => Ok(r.lineage(&ctx, v)),
                    (Err(_), f) => Err(f.as_deref().unwrap_or_default()),
                });
            }
            let unaudited = pending.and_then(|p| {
                let (o, error, state) = match &outcome {
                    Ok(v) => (crate::audit::Outcome::Succeeded, None, Some(v)),
                    Err(e) => (
                        crate::audit::Outcome::Failed,
                        Some(e.error.to_string()),
                        e.state.as_ref(),
                    ),
                };
                p.finish(o, error, state, ctx.identities()).1.err()
            });
            let mut response = match outcome {
                Ok(v) if !v.is_wholly_known() => fail(
                    req.prior_state,
                    Diagnostic::error(
                        "Provider returned unknown values after apply",
                        "This is a bug in paved; please report it.",
                    ),
                ),
                Ok(mut v) => {
                    s.block.clear_write_only(&mut v);
                    match convert::encode(&v, t) {
                        Ok(dv) => {
                            ctx.remember(&req.type_name, &v);
                            pb::apply_resource_change::Response {
                                new_state: Some(dv),
                                private: req.planned_private,
                                ..Default::default()
                            }
                        }
                        Err(d) => fail(req.prior_state, d),
                    }
                }
                Err(mut e) => {
                    if let Some(st) = e.state.as_mut() {
                        s.block.clear_write_only(st);
                    }
                    let state = e.state.as_ref().and_then(|s| convert::encode(s, t).ok());
                    let state = state.or_else(|| convert::encode(&Value::Null, t).ok());
                    fail(state, e.error.to_diagnostic())
                }
            };
            if let Some(e) = unaudited {
                let w = Diagnostic::warning(
                    "Audit result not written",
                    format!("The change ended but its result record could not be written: {e}. The trail holds its intent; the next run closes it as interrupted."),
                );
                log_diags(&w.clone().into());
                response.diagnostics.extend(one(w));
            }
            response
        };
        // After a panic the outcome is unknown: keep the prior state, so nothing is forgotten;
        // the next refresh reads what exists.
        guarded("ApplyResourceChange", span, handler, |d| {
            pb::apply_resource_change::Response {
                new_state: prior_state,
                diagnostics: vec![d],
                ..Default::default()
            }
        })
        .await
    }

    async fn import_resource_state(
        &self,
        req: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("ImportResourceState", req.type_name);
        let handler = async move {
            let result = async {
                let (r, s, t) = self.resource(&req.type_name)?;
                let importer = r.importer().ok_or_else(|| {
                    Diagnostic::error(
                        "Import not supported",
                        format!("{} cannot be imported.", req.type_name),
                    )
                })?;
                let ctx = self.provider.context();
                let pending = match ctx.audit.as_deref() {
                    None => None,
                    Some(trail) => {
                        let subject = audit_subject(
                            &ctx,
                            &req.type_name,
                            "import",
                            &Value::Null,
                            &Value::object([("id", Value::string(req.id.clone()))]),
                        );
                        Some(
                            trail
                                .begin(&s.block, subject)
                                .map_err(|e| audit_refused(&e))?,
                        )
                    }
                };
                let imported = importer.import(&ctx, &req.id).await;
                if let Some(p) = pending {
                    let (o, error) = match &imported {
                        Ok(_) => (crate::audit::Outcome::Succeeded, None),
                        Err(e) => (crate::audit::Outcome::Failed, Some(e.to_string())),
                    };
                    if let (_, Err(e)) =
                        p.finish(o, error, imported.as_ref().ok(), ctx.identities())
                    {
                        tracing::warn!(error = %e, "audit result not written");
                    }
                }
                let mut v = imported.map_err(|e| e.to_diagnostic())?;
                s.block.clear_write_only(&mut v);
                convert::encode(&v, t)
            }
            .await;
            match result {
                Ok(state) => pb::import_resource_state::Response {
                    imported_resources: vec![pb::import_resource_state::ImportedResource {
                        type_name: req.type_name.clone(),
                        state: Some(state),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                Err(d) => pb::import_resource_state::Response {
                    diagnostics: one(d),
                    ..Default::default()
                },
            }
        };
        guarded("ImportResourceState", span, handler, |d| {
            pb::import_resource_state::Response {
                diagnostics: vec![d],
                ..Default::default()
            }
        })
        .await
    }

    async fn move_resource_state(
        &self,
        _req: Request<pb::move_resource_state::Request>,
    ) -> Result<Response<pb::move_resource_state::Response>, Status> {
        // Never OK with an empty body: an empty target_state decodes as a null object.
        Err(Status::unimplemented(
            "paved resources cannot be moved across resource types",
        ))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("ReadDataSource", req.type_name);
        let handler = async move {
            let result = async {
                let (ds, t) = self.data_source(&req.type_name)?;
                let cfg = convert::decode(req.config.as_ref(), t)?;
                let ctx = self.provider.context();
                let v = ds.read(&ctx, &cfg).await.map_err(|e| e.to_diagnostic())?;
                convert::encode(&v, t)
            }
            .await;
            match result {
                Ok(state) => pb::read_data_source::Response {
                    state: Some(state),
                    ..Default::default()
                },
                Err(d) => pb::read_data_source::Response {
                    diagnostics: one(d),
                    ..Default::default()
                },
            }
        };
        guarded("ReadDataSource", span, handler, |d| {
            pb::read_data_source::Response {
                diagnostics: vec![d],
                ..Default::default()
            }
        })
        .await
    }

    async fn validate_ephemeral_resource_config(
        &self,
        req: Request<pb::validate_ephemeral_resource_config::Request>,
    ) -> Result<Response<pb::validate_ephemeral_resource_config::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("ValidateEphemeralResourceConfig", req.type_name);
        let handler = async {
            let d = (|| {
                let (e, t) = self.ephemeral(&req.type_name)?;
                let cfg = convert::decode(req.config.as_ref(), t)?;
                Ok::<_, Diagnostic>(e.validate(&cfg))
            })()
            .unwrap_or_else(Diagnostics::from);
            log_diags(&d);
            pb::validate_ephemeral_resource_config::Response {
                diagnostics: diags(&d),
            }
        };
        guarded("ValidateEphemeralResourceConfig", span, handler, |d| {
            pb::validate_ephemeral_resource_config::Response {
                diagnostics: vec![d],
            }
        })
        .await
    }

    async fn open_ephemeral_resource(
        &self,
        req: Request<pb::open_ephemeral_resource::Request>,
    ) -> Result<Response<pb::open_ephemeral_resource::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("OpenEphemeralResource", req.type_name);
        let handler = async move {
            let result = async {
                let (e, t) = self.ephemeral(&req.type_name)?;
                let cfg = convert::decode(req.config.as_ref(), t)?;
                if !cfg.is_wholly_known() {
                    return Err(Diagnostic::error(
                        "Ephemeral resource configuration not known yet",
                        "The arguments depend on values known only after apply (for example a database created in this run). paved opens it once they are known.",
                    ));
                }
                let ctx = self.provider.context();
                let v = e.open(&ctx, &cfg).await.map_err(|e| e.to_diagnostic())?;
                convert::encode(&v, t)
            }
            .await;
            match result {
                Ok(v) => pb::open_ephemeral_resource::Response {
                    result: Some(v),
                    ..Default::default()
                },
                Err(d) => pb::open_ephemeral_resource::Response {
                    diagnostics: one(d),
                    ..Default::default()
                },
            }
        };
        guarded("OpenEphemeralResource", span, handler, |d| {
            pb::open_ephemeral_resource::Response {
                diagnostics: vec![d],
                ..Default::default()
            }
        })
        .await
    }

    async fn renew_ephemeral_resource(
        &self,
        _req: Request<pb::renew_ephemeral_resource::Request>,
    ) -> Result<Response<pb::renew_ephemeral_resource::Response>, Status> {
        // paved never sets renew_at, so CLIs have no reason to call this; answering it is
        // harmless: nothing is held open.
        Ok(Response::new(
            pb::renew_ephemeral_resource::Response::default(),
        ))
    }

    async fn close_ephemeral_resource(
        &self,
        _req: Request<pb::close_ephemeral_resource::Request>,
    ) -> Result<Response<pb::close_ephemeral_resource::Response>, Status> {
        // Nothing is held open between Open and Close (see EphemeralResource::open).
        Ok(Response::new(
            pb::close_ephemeral_resource::Response::default(),
        ))
    }

    async fn get_functions(
        &self,
        _req: Request<pb::get_functions::Request>,
    ) -> Result<Response<pb::get_functions::Response>, Status> {
        let _s = rpc_span!("GetFunctions", "").entered();
        // OpenTofu asks a configured instance for functions; the answer is the schema's map.
        Ok(Response::new(pb::get_functions::Response {
            functions: self.functions(),
            diagnostics: vec![],
        }))
    }

    async fn call_function(
        &self,
        req: Request<pb::call_function::Request>,
    ) -> Result<Response<pb::call_function::Response>, Status> {
        let req = req.into_inner();
        let span = rpc_span!("CallFunction", req.name);
        let error = |text: String, argument: Option<i64>| pb::call_function::Response {
            result: None,
            error: Some(pb::FunctionError {
                text,
                function_argument: argument,
            }),
        };
        let handler = async {
            let Some(f) = self.provider.function(&req.name) else {
                return error(format!("paved has no function {:?}", req.name), None);
            };
            let params = f.parameters();
            if req.arguments.len() != params.len() {
                return error(
                    format!(
                        "{} takes {} arguments, got {}",
                        f.name(),
                        params.len(),
                        req.arguments.len()
                    ),
                    None,
                );
            }
            let mut args = Vec::with_capacity(params.len());
            for (i, (a, p)) in req.arguments.iter().zip(&params).enumerate() {
                match convert::decode(Some(a), &p.ty) {
                    Ok(v) => args.push(v),
                    Err(d) => return error(d.detail, Some(i as i64)),
                }
            }
            match f.call(&args) {
                Ok(v) => match convert::encode(&v, &f.return_type()) {
                    Ok(dv) => pb::call_function::Response {
                        result: Some(dv),
                        error: None,
                    },
                    Err(d) => error(d.detail, None),
                },
                Err(e) => error(e.text, e.argument.map(|i| i as i64)),
            }
        };
        guarded("CallFunction", span, handler, |d| {
            error(format!("{}: {}", d.summary, d.detail), None)
        })
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
    fn ephemeral(
        &self,
        type_name: &str,
    ) -> Result<(&Arc<dyn crate::ephemeral::EphemeralResource>, &Type), Diagnostic> {
        match (
            self.provider.ephemeral_resource(type_name),
            self.ephemeral_schemas.get(type_name),
        ) {
            (Some(e), Some((_, t))) => Ok((e, t)),
            _ => Err(Diagnostic::error(
                "Unknown ephemeral resource type",
                format!("This provider has no ephemeral resource {type_name:?}; check the spelling and the provider version."),
            )),
        }
    }

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
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_handler_answers_with_a_diagnostic() {
        let handler = async {
            // Stands in for any bug below the RPC boundary.
            let values: Vec<u64> = std::hint::black_box(vec![]);
            if values.is_empty() {
                panic!("a bug");
            }
            pb::validate_resource_config::Response::default()
        };
        let r = guarded(
            "ValidateResourceConfig",
            tracing::Span::none(),
            handler,
            |d| pb::validate_resource_config::Response {
                diagnostics: vec![d],
            },
        )
        .await
        .unwrap()
        .into_inner();
        assert_eq!(r.diagnostics.len(), 1);
        assert!(
            r.diagnostics[0].detail.contains("a bug"),
            "{:?}",
            r.diagnostics
        );
        assert_eq!(
            r.diagnostics[0].severity,
            pb::diagnostic::Severity::Error as i32
        );
    }
}
