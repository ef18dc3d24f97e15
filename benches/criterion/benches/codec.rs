//! Codec throughput on a realistic resource state: a GPU node pool with ~25 attributes, a list of
//! 64 instance ids, tag maps and nested objects.
//!
//! Run with `cargo bench -p paved-benches --bench codec`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use paved::cty::{json, msgpack, Type, Value};

fn state_type() -> Type {
    let taint = Type::object([
        ("key", Type::String),
        ("value", Type::String),
        ("effect", Type::String),
    ]);
    Type::object([
        ("id", Type::String),
        ("arn", Type::String),
        ("name", Type::String),
        ("region", Type::String),
        ("availability_zones", Type::set(Type::String)),
        ("instance_type", Type::String),
        ("ami_id", Type::String),
        ("desired_count", Type::Number),
        ("spot", Type::Bool),
        ("max_price", Type::Number),
        ("created_at", Type::String),
        ("updated_at", Type::String),
        ("instance_ids", Type::list(Type::String)),
        ("tags", Type::map(Type::String)),
        ("tags_all", Type::map(Type::String)),
        (
            "network",
            Type::object([
                ("vpc_id", Type::String),
                ("subnet_ids", Type::list(Type::String)),
                ("security_group_ids", Type::set(Type::String)),
                ("public_ip", Type::Bool),
            ]),
        ),
        (
            "scaling",
            Type::object([
                ("min", Type::Number),
                ("max", Type::Number),
                ("desired", Type::Number),
                ("labels", Type::map(Type::String)),
                ("taints", Type::list(taint)),
            ]),
        ),
        (
            "storage",
            Type::object([
                ("size_gb", Type::Number),
                ("volume_type", Type::String),
                ("iops", Type::Number),
                ("encrypted", Type::Bool),
            ]),
        ),
        (
            "timeouts",
            Type::object([("create", Type::String), ("delete", Type::String)]),
        ),
        ("status", Type::String),
        ("endpoint", Type::String),
        ("port", Type::Number),
        ("kubernetes_version", Type::String),
        ("user_data", Type::String),
        ("hourly_cost", Type::Number),
        ("extra", Type::Dynamic),
    ])
}

fn state_value() -> Value {
    let tags = |prefix: &str| {
        Value::string_map((0..10).map(|i| (format!("{prefix}-key-{i}"), format!("value-{i}"))))
    };
    Value::object([
        ("id", Value::string("np-0a1b2c3d4e5f67890")),
        (
            "arn",
            Value::string("arn:aws:ec2:us-east-1:123456789012:nodepool/np-0a1b2c3d4e5f67890"),
        ),
        ("name", Value::string("training-a100-pool")),
        ("region", Value::string("us-east-1")),
        (
            "availability_zones",
            Value::set(vec![
                Value::string("us-east-1a"),
                Value::string("us-east-1b"),
                Value::string("us-east-1c"),
            ]),
        ),
        ("instance_type", Value::string("p4d.24xlarge")),
        ("ami_id", Value::string("ami-0123456789abcdef0")),
        ("desired_count", Value::int(64)),
        ("spot", Value::Bool(true)),
        ("max_price", Value::float(21.9584)),
        ("created_at", Value::string("2024-05-01T12:34:56Z")),
        ("updated_at", Value::string("2024-05-02T08:00:00Z")),
        (
            "instance_ids",
            Value::string_list((0..64).map(|i| format!("i-{:017x}", 0x0abc_0000_u64 + i))),
        ),
        ("tags", tags("team")),
        ("tags_all", tags("all")),
        (
            "network",
            Value::object([
                ("vpc_id", Value::string("vpc-0123456789abcdef0")),
                (
                    "subnet_ids",
                    Value::string_list(["subnet-0aaa", "subnet-0bbb", "subnet-0ccc"]),
                ),
                (
                    "security_group_ids",
                    Value::set(vec![Value::string("sg-01"), Value::string("sg-02")]),
                ),
                ("public_ip", Value::Bool(false)),
            ]),
        ),
        (
            "scaling",
            Value::object([
                ("min", Value::int(0)),
                ("max", Value::int(128)),
                ("desired", Value::int(64)),
                (
                    "labels",
                    Value::string_map([("accelerator", "a100"), ("workload", "training")]),
                ),
                (
                    "taints",
                    Value::List(vec![Value::object([
                        ("key", Value::string("nvidia.com/gpu")),
                        ("value", Value::string("present")),
                        ("effect", Value::string("NoSchedule")),
                    ])]),
                ),
            ]),
        ),
        (
            "storage",
            Value::object([
                ("size_gb", Value::int(2000)),
                ("volume_type", Value::string("gp3")),
                ("iops", Value::int(16000)),
                ("encrypted", Value::Bool(true)),
            ]),
        ),
        (
            "timeouts",
            Value::object([("create", Value::string("60m")), ("delete", Value::Null)]),
        ),
        ("status", Value::string("ACTIVE")),
        (
            "endpoint",
            Value::string("https://np-0a1b2c3d4e5f67890.example.internal:6443"),
        ),
        ("port", Value::int(6443)),
        ("kubernetes_version", Value::string("1.29")),
        (
            "user_data",
            Value::string("#!/bin/bash\necho ready\n".repeat(8)),
        ),
        ("hourly_cost", Value::float(1405.3376)),
        (
            "extra",
            Value::Dynamic(Box::new((
                Type::list(Type::Number),
                Value::List(vec![Value::int(1), Value::float(2.5)]),
            ))),
        ),
    ])
}

fn codec(c: &mut Criterion) {
    let t = state_type();
    let v = state_value();
    let packed = msgpack::encode(&v, &t).expect("state encodes");
    let json_bytes =
        serde_json::to_vec(&json::encode(&v, &t).expect("state encodes as JSON")).expect("JSON");

    let mut g = c.benchmark_group("cty");
    g.throughput(Throughput::Bytes(packed.len() as u64));
    g.bench_function("msgpack_encode", |b| {
        b.iter(|| msgpack::encode(black_box(&v), black_box(&t)))
    });
    g.bench_function("msgpack_decode", |b| {
        b.iter(|| msgpack::decode(black_box(&packed), black_box(&t)))
    });
    g.throughput(Throughput::Bytes(json_bytes.len() as u64));
    g.bench_function("json_decode_bytes", |b| {
        b.iter(|| json::decode_bytes(black_box(&json_bytes), black_box(&t)))
    });
    g.finish();
}

criterion_group!(benches, codec);
criterion_main!(benches);
