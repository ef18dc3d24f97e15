//! Every RPC of protocol 6.9 over the wire against the real binary: what paved serves answers
//! with content, what it does not serve answers gRPC UNIMPLEMENTED (the one answer Terraform
//! 1.12+ and OpenTofu 1.12 accept as "not supported"), and the schema obeys the rules newer CLIs
//! enforce when they load it.

use paved::cty::{msgpack, Type, Value};
use paved::protocol::pb;
use paved::protocol::pb::provider_client::ProviderClient;
use tonic::transport::Channel;
use tonic::Code;

mod support;

struct Plugin(std::process::Child);

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start() -> (Plugin, Channel) {
    let (child, addr) = support::start_plugin();
    let channel = Channel::from_shared(addr).unwrap().connect().await.unwrap();
    (Plugin(child), channel)
}

fn schema_of(name: &str) -> paved::schema::Schema {
    paved::provider::Provider::default()
        .resource(name)
        .map(|r| r.schema())
        .unwrap()
}

fn dv(v: &Value, t: &Type) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: msgpack::encode(v, t).unwrap(),
        json: vec![],
    })
}

fn path(d: &pb::Diagnostic) -> String {
    d.attribute
        .as_ref()
        .map(|p| paved::protocol::convert::path_from_pb(p).to_string())
        .unwrap_or_default()
}

fn errors(ds: &[pb::Diagnostic]) -> Vec<&pb::Diagnostic> {
    ds.iter()
        .filter(|d| d.severity == pb::diagnostic::Severity::Error as i32)
        .collect()
}

/// Terraform >= 1.1 refuses a schema whose Single blocks have MinItems != MaxItems (what kept
/// paved out of Terraform 1.11 and OpenTofu 1.12); check every block of every schema.
fn check_blocks(where_: &str, b: &pb::schema::Block) {
    for nb in &b.block_types {
        let inner = nb
            .block
            .as_ref()
            .unwrap_or_else(|| panic!("{where_}.{}", nb.type_name));
        if nb.nesting == pb::schema::nested_block::NestingMode::Single as i32 {
            assert_eq!(
                nb.min_items, nb.max_items,
                "{where_}.{}: MinItems and MaxItems must match in NestingSingle mode",
                nb.type_name
            );
            assert!(nb.min_items <= 1, "{where_}.{}", nb.type_name);
        }
        check_blocks(&format!("{where_}.{}", nb.type_name), inner);
    }
}

#[tokio::test]
async fn schema_capabilities_and_metadata() {
    let (_p, ch) = start().await;
    let mut c = ProviderClient::new(ch);
    let s = c
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    let caps = s.server_capabilities.unwrap();
    assert!(caps.plan_destroy && caps.get_provider_schema_optional && !caps.move_resource_state);
    check_blocks(
        "provider",
        s.provider.as_ref().unwrap().block.as_ref().unwrap(),
    );
    for (group, m) in [
        ("resource", &s.resource_schemas),
        ("data source", &s.data_source_schemas),
        ("ephemeral resource", &s.ephemeral_resource_schemas),
    ] {
        for (name, sch) in m {
            check_blocks(&format!("{group} {name}"), sch.block.as_ref().unwrap());
        }
    }
    assert!(s
        .ephemeral_resource_schemas
        .contains_key("paved_vector_db_credentials"));
    let mut fns: Vec<&String> = s.functions.keys().collect();
    fns.sort();
    assert_eq!(
        fns,
        [
            "cuda_compatible",
            "gpu_hourly_cost",
            "instance_types",
            "min_driver"
        ]
    );
    // The write-only flag reaches the wire.
    let fs = s.resource_schemas["paved_feature_store"]
        .block
        .as_ref()
        .unwrap();
    let online = fs
        .block_types
        .iter()
        .find(|b| b.type_name == "online_store")
        .unwrap();
    let wo = online
        .block
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|a| a.name == "connection_string_wo")
        .unwrap();
    assert!(wo.write_only && wo.sensitive && wo.optional);

    // OpenTofu asks a configured instance for functions: the same map as the schema's.
    let f = c
        .get_functions(pb::get_functions::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(f.functions, s.functions);
    let m = c
        .get_metadata(pb::get_metadata::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(m.server_capabilities, Some(caps));
    assert_eq!(m.resources.len(), s.resource_schemas.len());
    assert_eq!(m.functions.len(), 4);
    assert_eq!(m.ephemeral_resources.len(), 1);
}

#[tokio::test]
async fn unserved_rpcs_answer_unimplemented() {
    let (_p, ch) = start().await;
    let mut c = ProviderClient::new(ch.clone());
    let e = c
        .get_resource_identity_schemas(pb::get_resource_identity_schemas::Request {})
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented, "{e}");
    let e = c
        .upgrade_resource_identity(pb::upgrade_resource_identity::Request::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    let e = c
        .move_resource_state(pb::move_resource_state::Request::default())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unimplemented);
    // RPCs of later minors (6.10: list resources, actions, state stores) are not even declared.
    for method in [
        "/tfplugin6.Provider/ListResource",
        "/tfplugin6.Provider/ValidateListResourceConfig",
        "/tfplugin6.Provider/PlanAction",
        "/tfplugin6.Provider/GetStates",
    ] {
        let mut g = tonic::client::Grpc::new(ch.clone());
        g.ready().await.unwrap();
        let r: Result<tonic::Response<pb::get_functions::Request>, _> = g
            .unary(
                tonic::Request::new(pb::get_functions::Request {}),
                tonic::codegen::http::uri::PathAndQuery::from_static(method),
                tonic::codec::ProstCodec::default(),
            )
            .await;
        assert_eq!(r.unwrap_err().code(), Code::Unimplemented, "{method}");
    }
    // Served but stateless: nothing to renew or close.
    c.renew_ephemeral_resource(pb::renew_ephemeral_resource::Request::default())
        .await
        .unwrap();
    c.close_ephemeral_resource(pb::close_ephemeral_resource::Request::default())
        .await
        .unwrap();
}

#[tokio::test]
async fn functions_answer_and_point_at_the_bad_argument() {
    let (_p, ch) = start().await;
    let mut c = ProviderClient::new(ch);
    let call = |name: &str, args: Vec<Value>| pb::call_function::Request {
        name: name.into(),
        arguments: args
            .iter()
            .map(|a| {
                let t = match a {
                    Value::Number(_) => Type::Number,
                    _ => Type::String,
                };
                dv(a, &t).unwrap()
            })
            .collect(),
    };
    let r = c
        .call_function(call("min_driver", vec![Value::string("12.4")]))
        .await
        .unwrap()
        .into_inner();
    assert!(r.error.is_none());
    let v = msgpack::decode(&r.result.unwrap().msgpack, &Type::String).unwrap();
    assert_eq!(v, Value::string("550.54.14"));
    let r = c
        .call_function(call(
            "gpu_hourly_cost",
            vec![
                Value::string("nvidia-b9000"),
                Value::int(1),
                Value::string("on_demand"),
                Value::string("us-east-1"),
            ],
        ))
        .await
        .unwrap()
        .into_inner();
    let e = r.error.unwrap();
    assert_eq!(e.function_argument, Some(0));
    assert!(e.text.contains("not in paved's catalog"), "{}", e.text);
    let r = c
        .call_function(call("no_such", vec![]))
        .await
        .unwrap()
        .into_inner();
    assert!(r.error.unwrap().text.contains("no function"));
}

fn feature_store_with_wo() -> (Value, Type) {
    let s = schema_of("paved_feature_store");
    let t = s.implied_type();
    let mut cfg = s.block.null_object();
    cfg.set_attr("name", Value::string("drivers"));
    cfg.set_attr("team", Value::string("pricing"));
    let mut online = s.block.nested("online_store").unwrap().block.null_object();
    online.set_attr("kind", Value::string("external"));
    online.set_attr(
        "connection_string_wo",
        Value::string("redis:6379,password=wo-secret"),
    );
    cfg.set_attr("online_store", online);
    (cfg, t)
}

#[tokio::test]
async fn write_only_arguments_need_the_capability_and_never_reach_a_plan() {
    let (_p, ch) = start().await;
    let mut c = ProviderClient::new(ch);
    let (cfg, t) = feature_store_with_wo();
    // Terraform 1.0.3 sends no client capabilities.
    let v = c
        .validate_resource_config(pb::validate_resource_config::Request {
            type_name: "paved_feature_store".into(),
            config: dv(&cfg, &t),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    let errs = errors(&v.diagnostics);
    assert_eq!(errs.len(), 1, "{:?}", v.diagnostics);
    assert_eq!(path(errs[0]), "online_store.connection_string_wo");
    assert!(
        errs[0].detail.contains("Terraform 1.11"),
        "{}",
        errs[0].detail
    );
    let v = c
        .validate_resource_config(pb::validate_resource_config::Request {
            type_name: "paved_feature_store".into(),
            config: dv(&cfg, &t),
            client_capabilities: Some(pb::ClientCapabilities {
                write_only_attributes_allowed: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(errors(&v.diagnostics).is_empty(), "{:?}", v.diagnostics);

    let p = c
        .plan_resource_change(pb::plan_resource_change::Request {
            type_name: "paved_feature_store".into(),
            prior_state: dv(&Value::Null, &t),
            proposed_new_state: dv(&cfg, &t),
            config: dv(&cfg, &t),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(errors(&p.diagnostics).is_empty(), "{:?}", p.diagnostics);
    let planned = msgpack::decode(&p.planned_state.unwrap().msgpack, &t).unwrap();
    assert!(planned
        .get("online_store")
        .get("connection_string_wo")
        .is_null());
    assert!(planned
        .get("online_store")
        .get("connection_string")
        .is_null());
    // The endpoint is still known at plan time: it comes from the configuration's value.
    assert_eq!(
        planned.get("online_store_endpoint"),
        &Value::string("redis:6379")
    );
}

#[tokio::test]
async fn destroy_plans_warn_about_data_and_honour_deletion_protection() {
    let (_p, ch) = start().await;
    let mut c = ProviderClient::new(ch);
    let s = schema_of("paved_vector_db");
    let t = s.implied_type();
    let mut prior = s.block.null_object();
    prior.set_attr("id", Value::string("search/docs"));
    prior.set_attr("name", Value::string("docs"));
    prior.set_attr(
        "collection",
        Value::List(vec![Value::object([
            ("name", Value::string("chunks")),
            ("dimension", Value::int(384)),
            ("distance", Value::string("cosine")),
        ])]),
    );
    let destroy = |prior: &Value| pb::plan_resource_change::Request {
        type_name: "paved_vector_db".into(),
        prior_state: dv(prior, &t),
        proposed_new_state: dv(&Value::Null, &t),
        config: dv(&Value::Null, &t),
        prior_private: b"kept".to_vec(),
        ..Default::default()
    };
    let p = c
        .plan_resource_change(destroy(&prior))
        .await
        .unwrap()
        .into_inner();
    assert!(errors(&p.diagnostics).is_empty());
    assert_eq!(p.diagnostics.len(), 1);
    assert!(
        p.diagnostics[0].detail.contains("chunks"),
        "{:?}",
        p.diagnostics
    );
    assert!(msgpack::decode(&p.planned_state.unwrap().msgpack, &t)
        .unwrap()
        .is_null());
    assert_eq!(p.planned_private, b"kept".to_vec());
    prior.set_attr("deletion_protection", Value::Bool(true));
    let p = c
        .plan_resource_change(destroy(&prior))
        .await
        .unwrap()
        .into_inner();
    let errs = errors(&p.diagnostics);
    assert_eq!(errs.len(), 1);
    assert_eq!(path(errs[0]), "deletion_protection");
}

#[tokio::test]
async fn ephemeral_credentials_validate_and_fail_cleanly_without_a_cluster() {
    let (_p, ch) = start().await;
    let mut c = ProviderClient::new(ch);
    let e = paved::ephemeral_resources::all();
    let s = e[0].schema();
    let t = s.implied_type();
    let mut cfg = s.block.null_object();
    cfg.set_attr("vector_db_id", Value::string("docs"));
    let v = c
        .validate_ephemeral_resource_config(pb::validate_ephemeral_resource_config::Request {
            type_name: "paved_vector_db_credentials".into(),
            config: dv(&cfg, &t),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(path(&v.diagnostics[0]), "vector_db_id");
    // Not configured (no cluster): a diagnostic, not a crash.
    cfg.set_attr("vector_db_id", Value::string("search/docs"));
    let o = c
        .open_ephemeral_resource(pb::open_ephemeral_resource::Request {
            type_name: "paved_vector_db_credentials".into(),
            config: dv(&cfg, &t),
            client_capabilities: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(o.result.is_none());
    assert_eq!(errors(&o.diagnostics).len(), 1, "{:?}", o.diagnostics);
}
