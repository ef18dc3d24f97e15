//! The provider binary as Terraform drives it over gRPC: handshake, health, schema, a full
//! plan/validate round trip through the real msgpack wire format, and prompt exit on Shutdown.

use paved::protocol::goplugin_pb as gp;
use paved::protocol::pb;
use std::time::{Duration, Instant};

mod support;

use support::start_plugin as start;

#[tokio::test]
async fn serves_health_schema_validation_and_exits_on_shutdown() {
    let (mut child, addr) = start();
    let channel = tonic::transport::Channel::from_shared(addr)
        .unwrap()
        .connect()
        .await
        .unwrap();

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "plugin".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        h.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let mut p = pb::provider_client::ProviderClient::new(channel.clone());
    let schema = p
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert!(schema.diagnostics.is_empty());
    assert!(schema
        .provider
        .as_ref()
        .and_then(|s| s.block.as_ref())
        .is_some());
    for name in ["paved_gpu_compute_pool", "paved_model_endpoint"] {
        let s = &schema.resource_schemas[name];
        let block = s.block.as_ref().unwrap();
        for a in &block.attributes {
            // Terraform 1.0.3 panics on invalid type JSON: every type must parse.
            let t: serde_json::Value = serde_json::from_slice(&a.r#type).unwrap();
            assert!(
                paved::cty::Type::from_json(&t).is_some(),
                "{name}.{}",
                a.name
            );
        }
        for b in &block.block_types {
            assert!(b.block.is_some(), "{name}.{} has no block", b.type_name);
        }
    }
    // Same answer every time (Terraform asks several processes).
    let again = p
        .get_provider_schema(pb::get_provider_schema::Request {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(schema, again);

    // A bad config goes out as msgpack and comes back as a diagnostic with an attribute path.
    let r = paved::resources::gpu_compute_pool::GpuComputePool;
    let s = paved::resource::Resource::schema(&r);
    let mut cfg = s.block.null_object();
    cfg.set_attr("name", paved::cty::Value::string("p"));
    cfg.set_attr("image_id", paved::cty::Value::string("ami-1"));
    cfg.set_attr(
        "nodes",
        paved::cty::Value::object([
            ("min", paved::cty::Value::int(3)),
            ("max", paved::cty::Value::int(1)),
            ("desired", paved::cty::Value::Unknown),
        ]),
    );
    cfg.set_attr(
        "instance_types",
        paved::cty::Value::string_list(["g5.xlarge"]),
    );
    let msgpack = paved::cty::msgpack::encode(&cfg, &s.implied_type()).unwrap();
    let v = p
        .validate_resource_config(pb::validate_resource_config::Request {
            type_name: "paved_gpu_compute_pool".into(),
            config: Some(pb::DynamicValue {
                msgpack,
                json: vec![],
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.diagnostics.len(), 1, "{:?}", v.diagnostics);
    let path = paved::protocol::convert::path_from_pb(v.diagnostics[0].attribute.as_ref().unwrap());
    assert_eq!(path.to_string(), "nodes.min");

    // Garbage on the wire is a diagnostic, never a crash.
    let v = p
        .validate_resource_config(pb::validate_resource_config::Request {
            type_name: "paved_gpu_compute_pool".into(),
            config: Some(pb::DynamicValue {
                msgpack: vec![0xdd, 0xff, 0xff, 0xff, 0xff],
                json: vec![],
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        v.diagnostics[0].severity,
        pb::diagnostic::Severity::Error as i32
    );
    assert!(child.try_wait().unwrap().is_none());

    // Shutdown ends the process well inside go-plugin's 2 s grace period.
    let mut ctl = gp::grpc_controller_client::GrpcControllerClient::new(channel);
    let t = Instant::now();
    ctl.shutdown(gp::Empty {}).await.unwrap();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(
            t.elapsed() < Duration::from_millis(500),
            "still running after Shutdown"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
