//! The Compute Engine REST client ([`paved::cloud::gce::GceClient`]) against the local Compute
//! API (acceptance-tests/gce.sh): unauthenticated on loopback, and signed in with service-account
//! keys and authorized users where a project requires it.
//!
//! Needs the server on PAVED_TEST_GCE_ENDPOINT, so the tests are `#[ignore]`d: run them with
//! `cargo test -- --include-ignored` (acceptance-tests/run.sh does, after starting it). Run
//! without the variable they fail rather than pass silently. Each test works in a project of
//! its own, and scopes the capacity rules and faults it injects to that project, so tests
//! running in parallel do not see each other.

use paved::cloud::gce::{
    request_id, GceApi, GceClient, GceErrorKind, GcpSettings, GroupSpec, OpStatus, TemplateSpec,
};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::{Duration, Instant};

const REGION: &str = "us-central1";

fn endpoint() -> String {
    std::env::var("PAVED_TEST_GCE_ENDPOINT")
        .ok()
        .filter(|e| !e.is_empty())
        .expect("PAVED_TEST_GCE_ENDPOINT must name the local Compute API (bash acceptance-tests/gce.sh start) for this ignored test")
}

fn project(test: &str) -> String {
    format!(
        "gce-client-{test}-{:08x}",
        std::process::id() ^ (Instant::now().elapsed().subsec_nanos() | rand_u32())
    )
}

fn rand_u32() -> u32 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap();
    t.subsec_nanos() ^ (t.as_secs() as u32)
}

fn client(project: &str) -> GceClient {
    let s = GcpSettings {
        endpoint: Some(endpoint()),
        ..Default::default()
    };
    GceClient::new(&s, project, REGION).expect("loopback needs no credentials")
}

/// POST/GET on the server's test-only control endpoint (plain HTTP/1.1 over a TcpStream).
fn control(path: &str, body: Option<Value>) -> Value {
    let ep = endpoint();
    let hostport = ep.trim_start_matches("http://").trim_end_matches('/');
    let mut s = std::net::TcpStream::connect(hostport).expect("connect to the local Compute API");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let data = body.map(|b| b.to_string()).unwrap_or_default();
    let method = if data.is_empty() { "GET" } else { "POST" };
    write!(
        s,
        "{method} /_test/{path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{data}",
        data.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let (head, body) = out.split_once("\r\n\r\n").expect("an HTTP answer");
    assert!(head.starts_with("HTTP/1.1 200"), "{path}: {head}\n{body}");
    serde_json::from_str(body).expect("JSON")
}

fn labels() -> BTreeMap<String, String> {
    [("paved-team", "ml"), ("paved-pool-id", "gp-test")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn template(name: &str, machine_type: &str) -> TemplateSpec {
    TemplateSpec {
        name: name.into(),
        description: "paved test".into(),
        machine_type: machine_type.into(),
        accelerator: None,
        spot: false,
        image: "projects/deeplearning-platform-release/global/images/family/common-cu128-ubuntu-2204-nvidia-570".into(),
        boot_disk_gb: 100,
        labels: labels(),
        metadata: [("startup-script".to_string(), "#!/bin/sh\necho paved\n".to_string())]
            .into_iter()
            .collect(),
        network: None,
    }
}

fn group(name: &str, template: &str, size: u32, zones: &[&str]) -> GroupSpec {
    GroupSpec {
        name: name.into(),
        base_instance_name: name.into(),
        template: template.into(),
        target_size: size,
        zones: zones.iter().map(|z| z.to_string()).collect(),
        target_shape: "EVEN".into(),
        machine_types: vec![],
        description: String::new(),
    }
}

async fn done(c: &GceClient, op: paved::cloud::gce::Operation) -> paved::cloud::gce::Operation {
    let op = c
        .wait_operation(&op, Duration::from_secs(30))
        .await
        .expect("wait");
    assert_eq!(op.status, OpStatus::Done, "{op:?}");
    op.result().expect("operation succeeded");
    op
}

async fn until<F, Fut>(what: &str, timeout: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let t0 = Instant::now();
    while !f().await {
        assert!(t0.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn running(c: &GceClient, group: &str) -> usize {
    c.list_managed_instances(group)
        .await
        .unwrap()
        .iter()
        .filter(|m| m.is_running())
        .count()
}

#[tokio::test]
#[ignore = "needs the local Compute API (PAVED_TEST_GCE_ENDPOINT)"]
async fn catalog_lists() {
    let c = client(&project("catalog"));
    let zones = c.list_zones().await.unwrap();
    let mut names: Vec<_> = zones.iter().map(|z| z.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "us-central1-a",
            "us-central1-b",
            "us-central1-c",
            "us-central1-f"
        ]
    );
    assert!(zones.iter().all(|z| z.region == REGION && z.status == "UP"));
    let mts = c.list_machine_types("us-central1-a").await.unwrap();
    assert!(mts.len() > 30, "all pages: {}", mts.len());
    let a2 = mts.iter().find(|m| m.name == "a2-highgpu-2g").unwrap();
    assert_eq!(a2.accelerators, [("nvidia-tesla-a100".to_string(), 2)]);
    assert_eq!(a2.guest_cpus, 24);
    let f = c.list_accelerator_types("us-central1-f").await.unwrap();
    assert!(f
        .iter()
        .any(|a| a.name == "nvidia-tesla-t4" && a.max_cards_per_instance == 4));
    assert!(!f.iter().any(|a| a.name == "nvidia-l4"));
    let e = c.list_machine_types("mars-1a").await.unwrap_err();
    assert_eq!(e.kind, GceErrorKind::Invalid, "{e}");
}

#[tokio::test]
#[ignore = "needs the local Compute API (PAVED_TEST_GCE_ENDPOINT)"]
async fn template_lifecycle_with_request_ids() {
    let p = project("template");
    let c = client(&p);
    let mut spec = template("pool-t1", "n1-standard-8");
    spec.accelerator = Some(("nvidia-tesla-t4".into(), 2));
    spec.spot = true;
    let rid = request_id("gp-test", "insert-template", &[&spec.name]);
    let op = c.insert_template(&spec, &rid).await.unwrap();
    assert_ne!(op.status, OpStatus::Done, "the insert is asynchronous");
    assert!(
        c.get_template("pool-t1").await.unwrap().is_none(),
        "not visible before DONE"
    );
    let again = c.insert_template(&spec, &rid).await.unwrap();
    assert_eq!(again.name, op.name, "same requestId, same operation");
    done(&c, op).await;
    let t = c.get_template("pool-t1").await.unwrap().expect("template");
    assert_eq!(t.machine_type, "n1-standard-8");
    assert_eq!(t.accelerator, Some(("nvidia-tesla-t4".into(), 2)));
    assert!(t.spot);
    assert_eq!(t.on_host_maintenance, "TERMINATE");
    assert_eq!(t.labels, labels());
    assert_eq!(t.boot_disk_gb, Some(100));
    assert!(t
        .image
        .ends_with("/family/common-cu128-ubuntu-2204-nvidia-570"));
    assert_eq!(t.metadata["startup-script"], "#!/bin/sh\necho paved\n");
    let e = c
        .insert_template(&spec, &request_id("gp-test", "insert-template", &["other"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind, GceErrorKind::AlreadyExists, "{e}");
    let mut bad = template("pool-bad", "n1-standard-4");
    bad.labels.insert("Paved:Team".into(), "ml".into());
    let e = c
        .insert_template(&bad, &request_id("gp-test", "x", &["bad"]))
        .await
        .unwrap_err();
    assert_eq!((e.status, e.kind), (400, GceErrorKind::Invalid), "{e}");
    let op = c
        .delete_template(
            "pool-t1",
            &request_id("gp-test", "delete-template", &[&t.id]),
        )
        .await
        .unwrap()
        .expect("an operation");
    done(&c, op).await;
    assert!(c.get_template("pool-t1").await.unwrap().is_none());
    assert!(c
        .delete_template(
            "pool-t1",
            &request_id("gp-test", "delete-template", &["again"])
        )
        .await
        .unwrap()
        .is_none());
    // Every request went out unauthenticated (loopback, no credentials).
    let log = control("log", None);
    let mine: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["path"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("/projects/{p}/"))
        })
        .collect();
    assert!(mine.len() >= 8);
    assert!(mine.iter().all(|e| e["auth"] == json!(false)));
    assert!(mine
        .iter()
        .all(|e| e["userAgent"].as_str().unwrap().starts_with("paved/")));
}

#[tokio::test]
#[ignore = "needs the local Compute API (PAVED_TEST_GCE_ENDPOINT)"]
async fn group_lifecycle_resize_and_rollout_in_place() {
    let p = project("group");
    let c = client(&p);
    done(
        &c,
        c.insert_template(
            &template("t1", "g2-standard-4"),
            &request_id("gp", "t", &["t1"]),
        )
        .await
        .unwrap(),
    )
    .await;
    let spec = group("pool", "t1", 2, &["us-central1-a", "us-central1-b"]);
    let op = c
        .insert_group(&spec, &request_id("gp", "insert-group", &["pool"]))
        .await
        .unwrap();
    assert_eq!(op.scope, paved::cloud::gce::OpScope::Region(REGION.into()));
    done(&c, op).await;
    let g = c.get_group("pool").await.unwrap().expect("group");
    assert_eq!((g.target_size, g.template.as_str()), (2, "t1"));
    assert_eq!(g.zones, ["us-central1-a", "us-central1-b"]);
    assert_eq!(g.target_shape, "EVEN");
    until("2 running", Duration::from_secs(20), || async {
        running(&c, "pool").await == 2
    })
    .await;
    until("stable", Duration::from_secs(10), || async {
        c.get_group("pool").await.unwrap().unwrap().is_stable
    })
    .await;

    let g = c.get_group("pool").await.unwrap().unwrap();
    let op = c
        .resize_group(
            "pool",
            4,
            &request_id("gp", "resize", &[&g.fingerprint, "4"]),
        )
        .await
        .unwrap();
    done(&c, op).await;
    let g2 = c.get_group("pool").await.unwrap().unwrap();
    assert_eq!(g2.target_size, 4);
    assert_ne!(
        g2.fingerprint, g.fingerprint,
        "every write changes the fingerprint"
    );
    assert!(
        running(&c, "pool").await < 4,
        "resize is DONE before the instances exist"
    );
    assert!(g2.actions.creating >= 1 && !g2.is_stable);
    until("4 running", Duration::from_secs(20), || async {
        running(&c, "pool").await == 4
    })
    .await;

    // Template in use: refused.
    let e = c
        .delete_template("t1", &request_id("gp", "dt", &["t1"]))
        .await
        .unwrap_err();
    assert_eq!(e.kind, GceErrorKind::InUse, "{e}");
    // A new template rolls out by patching the version: same group, same instance names.
    done(
        &c,
        c.insert_template(
            &template("t2", "g2-standard-8"),
            &request_id("gp", "t", &["t2"]),
        )
        .await
        .unwrap(),
    )
    .await;
    let before: Vec<String> = {
        let mut v: Vec<_> = c
            .list_managed_instances("pool")
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.name)
            .collect();
        v.sort();
        v
    };
    let g = c.get_group("pool").await.unwrap().unwrap();
    done(
        &c,
        c.set_group_template(
            "pool",
            "t2",
            &request_id("gp", "patch", &[&g.fingerprint, "t2"]),
        )
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(c.get_group("pool").await.unwrap().unwrap().template, "t2");
    until("rolled out", Duration::from_secs(40), || async {
        let g = c.get_group("pool").await.unwrap().unwrap();
        let ms = c.list_managed_instances("pool").await.unwrap();
        g.version_target_reached
            && g.is_stable
            && ms.len() == 4
            && ms.iter().all(|m| m.template == "t2" && m.is_running())
    })
    .await;
    let mut after: Vec<_> = c
        .list_managed_instances("pool")
        .await
        .unwrap()
        .into_iter()
        .map(|m| m.name)
        .collect();
    after.sort();
    assert_eq!(before, after);
    done(
        &c,
        c.delete_template("t1", &request_id("gp", "dt", &["t1", "2"]))
            .await
            .unwrap()
            .unwrap(),
    )
    .await;

    // Delete: the operation is DONE only once every instance is gone.
    let g = c.get_group("pool").await.unwrap().unwrap();
    let op = c
        .delete_group("pool", &request_id("gp", "delete-group", &[&g.id]))
        .await
        .unwrap()
        .unwrap();
    let quick = c
        .wait_operation(&op, Duration::from_millis(100))
        .await
        .unwrap();
    assert_ne!(
        quick.status,
        OpStatus::Done,
        "a bounded wait returns before DONE"
    );
    done(&c, op).await;
    assert!(c.get_group("pool").await.unwrap().is_none());
    assert!(c
        .delete_group("pool", &request_id("gp", "delete-group", &["x"]))
        .await
        .unwrap()
        .is_none());
    done(
        &c,
        c.delete_template("t2", &request_id("gp", "dt", &["t2"]))
            .await
            .unwrap()
            .unwrap(),
    )
    .await;
    let state = control("state", None);
    let left = state["instances"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with(&format!("{p}/")))
        .count();
    assert_eq!(left, 0, "no instance left behind");
}

#[tokio::test]
#[ignore = "needs the local Compute API (PAVED_TEST_GCE_ENDPOINT)"]
async fn stockout_and_quota_are_classified() {
    let p = project("stockout");
    let c = client(&p);
    control(
        "capacity",
        Some(
            json!({"project": p, "zone": "us-central1-b", "machineType": "a2-highgpu-1g", "available": 0}),
        ),
    );
    control(
        "quota",
        Some(json!({"project": p, "region": REGION, "metric": "NVIDIA_L4_GPUS", "limit": 1})),
    );
    done(
        &c,
        c.insert_template(
            &template("ta", "a2-highgpu-1g"),
            &request_id("gp", "t", &["ta"]),
        )
        .await
        .unwrap(),
    )
    .await;
    done(
        &c,
        c.insert_template(
            &template("tl", "g2-standard-4"),
            &request_id("gp", "t", &["tl"]),
        )
        .await
        .unwrap(),
    )
    .await;
    done(
        &c,
        c.insert_group(
            &group("a100", "ta", 2, &["us-central1-a", "us-central1-b"]),
            &request_id("gp", "g", &["a100"]),
        )
        .await
        .unwrap(),
    )
    .await;
    done(
        &c,
        c.insert_group(
            &group("l4", "tl", 2, &["us-central1-a", "us-central1-c"]),
            &request_id("gp", "g", &["l4"]),
        )
        .await
        .unwrap(),
    )
    .await;
    until("a100 errors", Duration::from_secs(20), || async {
        !c.list_group_errors("a100", 10).await.unwrap().is_empty()
    })
    .await;
    let errs = c.list_group_errors("a100", 10).await.unwrap();
    let e = &errs[0];
    assert_eq!(e.error.kind, GceErrorKind::Stockout, "{e:?}");
    assert_eq!(e.error.code, "ZONE_RESOURCE_POOL_EXHAUSTED_WITH_DETAILS");
    assert!(e.error.is_capacity());
    assert_eq!(
        (e.action.as_str(), e.zone.as_deref()),
        ("CREATING", Some("us-central1-b"))
    );
    let stuck: Vec<_> = c
        .list_managed_instances("a100")
        .await
        .unwrap()
        .into_iter()
        .filter(|m| m.status.is_none())
        .collect();
    assert_eq!(stuck.len(), 1);
    assert_eq!(stuck[0].zone, "us-central1-b");
    assert_eq!(stuck[0].last_errors[0].kind, GceErrorKind::Stockout);
    until("l4 quota error", Duration::from_secs(20), || async {
        c.list_group_errors("l4", 10)
            .await
            .unwrap()
            .iter()
            .any(|e| e.error.kind == GceErrorKind::Quota)
    })
    .await;
    until("1 l4 running", Duration::from_secs(20), || async {
        running(&c, "l4").await == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        running(&c, "l4").await,
        1,
        "the quota holds the second one back"
    );
    // The group keeps what it got and retries: drain it.
    for g in ["a100", "l4"] {
        let id = c.get_group(g).await.unwrap().unwrap().id;
        done(
            &c,
            c.delete_group(g, &request_id("gp", "dg", &[&id]))
                .await
                .unwrap()
                .unwrap(),
        )
        .await;
    }
    for t in ["ta", "tl"] {
        done(
            &c,
            c.delete_template(t, &request_id("gp", "dt", &[t]))
                .await
                .unwrap()
                .unwrap(),
        )
        .await;
    }
}

#[tokio::test]
#[ignore = "needs the local Compute API (PAVED_TEST_GCE_ENDPOINT)"]
async fn transient_failures_are_retried_and_writes_stay_single() {
    let p = project("faults");
    let c = client(&p);
    control(
        "faults",
        Some(json!({"project": p, "method": "zones.list", "status": 503, "count": 2})),
    );
    assert_eq!(
        c.list_zones().await.unwrap().len(),
        4,
        "two 503s, then success"
    );
    control(
        "faults",
        Some(json!({"project": p, "method": "zones.list", "status": 429, "count": 1})),
    );
    let e = client(&p).with_retries(0).list_zones().await.unwrap_err();
    assert_eq!((e.status, e.kind), (429, GceErrorKind::Transient), "{e}");
    assert_eq!(e.code, "rateLimitExceeded");

    // The answer to a write is lost: the retry (same requestId) gets the same operation.
    done(
        &c,
        c.insert_template(
            &template("t", "n1-standard-4"),
            &request_id("gp", "t", &["t"]),
        )
        .await
        .unwrap(),
    )
    .await;
    control(
        "faults",
        Some(
            json!({"project": p, "method": "regionInstanceGroupManagers.insert", "status": 503, "when": "after"}),
        ),
    );
    let op = c
        .insert_group(
            &group("pool", "t", 1, &["us-central1-a"]),
            &request_id("gp", "g", &["pool"]),
        )
        .await
        .unwrap();
    done(&c, op).await;
    let log = control("log", None);
    let inserts: Vec<&Value> = log["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["method"] == "compute.regionInstanceGroupManagers.insert"
                && e["path"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("/projects/{p}/"))
        })
        .collect();
    assert_eq!(inserts.len(), 2, "one lost answer, one retry");
    assert_eq!(inserts[0]["status"], 503);
    assert_eq!(inserts[1]["status"], 200);
    assert_eq!(
        inserts[0]["query"]["requestId"],
        inserts[1]["query"]["requestId"]
    );
    let state = control("state", None);
    let groups = state["groups"]
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| k.starts_with(&format!("{p}/")))
        .count();
    assert_eq!(groups, 1);
    let id = c.get_group("pool").await.unwrap().unwrap().id;
    done(
        &c,
        c.delete_group("pool", &request_id("gp", "dg", &[&id]))
            .await
            .unwrap()
            .unwrap(),
    )
    .await;
    done(
        &c,
        c.delete_template("t", &request_id("gp", "dt", &["t"]))
            .await
            .unwrap()
            .unwrap(),
    )
    .await;
}

#[tokio::test]
#[ignore = "needs the local Compute API (PAVED_TEST_GCE_ENDPOINT)"]
async fn flexibility_policy_falls_back_across_machine_types() {
    let p = project("flex");
    let c = client(&p);
    control(
        "capacity",
        Some(json!({"project": p, "machineType": "a2-highgpu-1g", "available": 0})),
    );
    done(
        &c,
        c.insert_template(
            &template("t", "a2-highgpu-1g"),
            &request_id("gp", "t", &["t"]),
        )
        .await
        .unwrap(),
    )
    .await;
    let mut spec = group("pool", "t", 2, &["us-central1-a", "us-central1-c"]);
    spec.machine_types = vec!["a2-highgpu-1g".into(), "g2-standard-8".into()];
    done(
        &c,
        c.insert_group(&spec, &request_id("gp", "g", &["pool"]))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        c.get_group("pool").await.unwrap().unwrap().machine_types,
        ["a2-highgpu-1g", "g2-standard-8"]
    );
    until("2 running", Duration::from_secs(20), || async {
        running(&c, "pool").await == 2
    })
    .await;
    let ms = c.list_managed_instances("pool").await.unwrap();
    assert!(
        ms.iter()
            .all(|m| m.machine_type.as_deref() == Some("g2-standard-8")),
        "{ms:?}"
    );
    let id = c.get_group("pool").await.unwrap().unwrap().id;
    done(
        &c,
        c.delete_group("pool", &request_id("gp", "dg", &[&id]))
            .await
            .unwrap()
            .unwrap(),
    )
    .await;
    done(
        &c,
        c.delete_template("t", &request_id("gp", "dt", &["t"]))
            .await
            .unwrap()
            .unwrap(),
    )
    .await;
}

/// An RSA key made by the openssl CLI: (PKCS#8 PEM, modulus in hex).
fn rsa_key(dir: &std::path::Path, name: &str) -> (String, String) {
    let path = dir.join(format!("{name}.pem"));
    let ok = std::process::Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&path)
        .stderr(std::process::Stdio::null())
        .status()
        .expect("openssl")
        .success();
    assert!(ok, "openssl genpkey");
    let out = std::process::Command::new("openssl")
        .args(["rsa", "-noout", "-modulus", "-in"])
        .arg(&path)
        .output()
        .expect("openssl rsa");
    let modulus = String::from_utf8(out.stdout).unwrap();
    let modulus = modulus.trim().trim_start_matches("Modulus=").to_string();
    (std::fs::read_to_string(&path).unwrap(), modulus)
}

fn with_credentials(project: &str, credentials: &str) -> GceClient {
    let s = GcpSettings {
        endpoint: Some(endpoint()),
        credentials: Some(credentials.to_string()),
        ..Default::default()
    };
    GceClient::new(&s, project, REGION)
        .expect("valid credentials")
        .with_retries(0)
}

/// Who the server says sent this project's requests, in order.
fn principals(project: &str) -> Vec<Value> {
    control("log", None)["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["path"]
                .as_str()
                .unwrap_or("")
                .contains(&format!("/projects/{project}/"))
        })
        .map(|e| e["principal"].clone())
        .collect()
}

#[tokio::test]
#[ignore = "needs the local Compute API (PAVED_TEST_GCE_ENDPOINT)"]
async fn service_account_keys_and_authorized_users_authenticate() {
    let p = project("auth");
    let dir = std::env::temp_dir().join(format!("paved-gce-auth-{p}"));
    std::fs::create_dir_all(&dir).unwrap();
    let (pem, modulus) = rsa_key(&dir, "sa");
    let (other_pem, _) = rsa_key(&dir, "other");
    let email = format!("ci@{p}.iam.gserviceaccount.com");
    control(
        "auth",
        Some(json!({
            "required_projects": [p],
            "service_accounts": {email.clone(): {"n": modulus}},
            "refresh_tokens": {format!("refresh-{p}"): format!("alice@{p}.example")},
        })),
    );
    let key = |pem: &str| {
        json!({"type": "service_account", "project_id": p, "private_key_id": "k1", "private_key": pem,
               "client_email": email, "token_uri": format!("{}/token", endpoint())})
        .to_string()
    };

    // Required credentials: no header is a 401 that says so.
    let e = client(&p).with_retries(0).list_zones().await.unwrap_err();
    assert_eq!(
        (e.status, e.kind),
        (401, GceErrorKind::Unauthenticated),
        "{e}"
    );
    assert!(
        e.message
            .contains("missing required authentication credential"),
        "{e}"
    );

    // A service-account key signs its own JWT (no token exchange); the server checks the
    // signature with the registered public key.
    let sa = with_credentials(&p, &key(&pem));
    assert_eq!(sa.list_zones().await.unwrap().len(), 4);
    assert!(sa.get_group("absent").await.unwrap().is_none());
    // The same email with another key does not pass.
    let e = with_credentials(&p, &key(&other_pem))
        .list_zones()
        .await
        .unwrap_err();
    assert_eq!(e.kind, GceErrorKind::Unauthenticated, "{e}");
    assert!(e.message.contains("signature does not verify"), "{e}");

    // An authorized user (gcloud's ADC file) refreshes a token at its token_uri.
    let user = json!({"type": "authorized_user", "client_id": "paved-test.apps.googleusercontent.com",
                      "client_secret": "s", "refresh_token": format!("refresh-{p}"),
                      "token_uri": format!("{}/token", endpoint())});
    let path = dir.join("adc.json");
    std::fs::write(&path, user.to_string()).unwrap();
    // Given as a path this time: the file is read.
    let u = with_credentials(&p, path.to_str().unwrap());
    assert_eq!(u.list_zones().await.unwrap().len(), 4);
    assert_eq!(u.list_zones().await.unwrap().len(), 4);
    let revoked = json!({"type": "authorized_user", "client_id": "c", "client_secret": "s",
                         "refresh_token": "revoked", "token_uri": format!("{}/token", endpoint())});
    let e = with_credentials(&p, &revoked.to_string())
        .list_zones()
        .await
        .unwrap_err();
    assert_eq!(e.kind, GceErrorKind::Unauthenticated, "{e}");
    assert!(e.message.contains("authorized_user credentials"), "{e}");

    let who = principals(&p);
    assert_eq!(
        who,
        [
            Value::Null,
            json!(email),
            json!(email),
            Value::Null,
            json!(format!("alice@{p}.example")),
            json!(format!("alice@{p}.example")),
        ],
        "the unauthenticated and the wrong-key call are refused, so the server names nobody"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
