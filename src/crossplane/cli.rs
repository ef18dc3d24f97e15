//! `terraform-provider-paved crossplane …`: the controller, `generate-crds` and
//! `generate-rbac`.

use super::reconciler::{self, Faults, KindContext, ManagedKind, Shared};
use crate::resource::Resource;
use futures::StreamExt;
use kube::api::{Api, DynamicObject};
use kube::runtime::controller::{Config as ControllerConfig, Controller};
use kube::runtime::events::{Recorder, Reporter};
use kube::runtime::utils::PredicateConfig;
use kube::runtime::{reflector, watcher, WatchStreamExt};
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

const USAGE: &str = "usage:
  terraform-provider-paved crossplane [--kubeconfig PATH] [--poll 60s] [--max-reconcile-rate N]
                                      [--leader-election] [--namespace-for-lease NS]
                                      [--health-port PORT] [--audit-file PATH] [--audit-url URL]
                                      [--lineage-url URL] [--lineage-file PATH] [--lineage-namespace NS]
  terraform-provider-paved crossplane generate-crds [--out package/crds]
  terraform-provider-paved crossplane generate-rbac [--out package/rbac] [--namespace crossplane-system]";

#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub kubeconfig: Option<PathBuf>,
    pub poll: Duration,
    pub max_reconcile_rate: u32,
    pub leader_election: bool,
    pub lease_namespace: String,
    /// Serve `/healthz` and `/readyz` on this port (see [`super::health`]).
    pub health_port: Option<u16>,
    /// The audit trail's JSON Lines file (`--audit-file`, else PAVED_AUDIT_FILE).
    pub audit_file: Option<PathBuf>,
    /// An HTTP collector the audit records are also shipped to (`--audit-url`, else
    /// PAVED_AUDIT_URL), through a spool beside the audit file.
    pub audit_url: Option<String>,
    /// Where OpenLineage events go (`--lineage-url` / `--lineage-file`, else PAVED_LINEAGE_URL /
    /// PAVED_LINEAGE_FILE) and the job namespace they use.
    pub lineage: crate::lineage::Settings,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            kubeconfig: None,
            poll: Duration::from_secs(60),
            max_reconcile_rate: 10,
            leader_election: false,
            lease_namespace: "crossplane-system".into(),
            health_port: None,
            audit_file: None,
            audit_url: None,
            lineage: Default::default(),
        }
    }
}

#[derive(Debug, PartialEq)]
pub enum Command {
    Run(Options),
    GenerateCrds {
        out: PathBuf,
    },
    /// The in-cluster install: RBAC, Deployment, DeploymentRuntimeConfig ([`super::deploy`]).
    GenerateRbac {
        out: PathBuf,
        namespace: String,
    },
}

/// Parses the arguments after `crossplane`. Accepts `--flag value` and `--flag=value`.
pub fn parse(args: &[String]) -> Result<Command, String> {
    let mut it = args.iter().flat_map(|a| match a.split_once('=') {
        Some((k, v)) if a.starts_with("--") => vec![k.to_string(), v.to_string()],
        _ => vec![a.clone()],
    });
    let mut opts = Options::default();
    let mut generate = None;
    let mut out = None;
    let mut namespace = super::deploy::DEFAULT_NAMESPACE.to_string();
    while let Some(a) = it.next() {
        let mut value = |flag: &str| it.next().ok_or_else(|| format!("{flag} needs a value"));
        match a.as_str() {
            "generate-crds" | "generate-rbac" => generate = Some(a.clone()),
            "--out" => out = Some(PathBuf::from(value("--out")?)),
            "--namespace" => namespace = value("--namespace")?,
            "--health-port" => {
                let v = value("--health-port")?;
                opts.health_port = Some(v.parse().ok().filter(|p| *p > 0).ok_or_else(|| {
                    format!("--health-port {v:?} is not a port number (1-65535)")
                })?);
            }
            "--kubeconfig" => opts.kubeconfig = Some(PathBuf::from(value("--kubeconfig")?)),
            "--poll" => {
                let v = value("--poll")?;
                opts.poll = crate::resources::common::parse_duration(&v)
                    .filter(|d| !d.is_zero() && *d <= crate::resources::common::MAX_DURATION)
                    .ok_or_else(|| {
                        format!(
                            "--poll {v:?} is not a duration between 1s and 24h such as 60s or 5m"
                        )
                    })?;
            }
            "--max-reconcile-rate" => {
                let v = value("--max-reconcile-rate")?;
                opts.max_reconcile_rate = v.parse().ok().filter(|n| *n > 0).ok_or_else(|| {
                    format!("--max-reconcile-rate {v:?} is not a positive number")
                })?;
            }
            "--leader-election" => opts.leader_election = true,
            "--audit-file" => opts.audit_file = Some(PathBuf::from(value("--audit-file")?)),
            "--audit-url" => {
                let v = value("--audit-url")?;
                crate::delivery::check_url(&v).map_err(|e| format!("--audit-url {v:?}: {e}"))?;
                opts.audit_url = Some(v);
            }
            "--lineage-url" => {
                let v = value("--lineage-url")?;
                crate::delivery::check_url(&v).map_err(|e| format!("--lineage-url {v:?}: {e}"))?;
                opts.lineage.url = Some(v);
            }
            "--lineage-file" => opts.lineage.file = Some(PathBuf::from(value("--lineage-file")?)),
            "--lineage-namespace" => opts.lineage.namespace = Some(value("--lineage-namespace")?),
            "--namespace-for-lease" => opts.lease_namespace = value("--namespace-for-lease")?,
            "-h" | "--help" => return Err(USAGE.into()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(match generate.as_deref() {
        Some("generate-crds") => Command::GenerateCrds {
            out: out.unwrap_or_else(|| PathBuf::from("package/crds")),
        },
        Some(_) => Command::GenerateRbac {
            out: out.unwrap_or_else(|| PathBuf::from("package/rbac")),
            namespace,
        },
        None => Command::Run(opts),
    })
}

/// Runs the subcommand; returns the process exit code.
pub fn main(args: &[String]) -> i32 {
    let cmd = match parse(args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    match cmd {
        Command::GenerateCrds { out } => match super::crd::write(&out, &crate::resources::all()) {
            Ok(files) => {
                for f in files {
                    println!("{}", out.join(f).display());
                }
                0
            }
            Err(e) => {
                eprintln!("{e}");
                1
            }
        },
        Command::GenerateRbac { out, namespace } => {
            match super::deploy::write(&out, &crate::resources::all(), &namespace) {
                Ok(files) => {
                    for f in files {
                        println!("{f}");
                    }
                    0
                }
                Err(e) => {
                    eprintln!("{e}");
                    1
                }
            }
        }
        Command::Run(opts) => {
            crate::logging::init(Some(tracing::Level::INFO));
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cannot start the async runtime: {e}");
                    return 1;
                }
            };
            match rt.block_on(run(opts)) {
                Ok(()) => 0,
                Err(e) => {
                    tracing::error!(error = %e, "controller stopped");
                    eprintln!("terraform-provider-paved crossplane: {e}");
                    1
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot load kubeconfig {path}: {message}")]
    Kubeconfig { path: String, message: String },
    #[error("cannot build a Kubernetes client: {0}")]
    Client(String),
    #[error("lost leadership")]
    LostLeadership,
    /// A controller task ended: every object of that kind would silently stop being reconciled,
    /// so the process exits non-zero and is restarted instead.
    #[error("the {task} controller task stopped unexpectedly: {why}")]
    TaskEnded { task: String, why: String },
    /// A sink named by a flag or the environment cannot be set up.
    #[error("{0}")]
    Sink(String),
    #[error("cannot serve health probes on port {port}: {source}")]
    HealthPort {
        port: u16,
        #[source]
        source: std::io::Error,
    },
}

/// Waits for the first of `tasks` to end, which is always an error: the controllers and the
/// stats logger run for the life of the process.
async fn supervise(
    tasks: &mut tokio::task::JoinSet<String>,
    names: &std::collections::HashMap<tokio::task::Id, String>,
) -> RunError {
    match tasks.join_next_with_id().await {
        Some(Ok((_, task))) => RunError::TaskEnded {
            task,
            why: "its watch stream ended".into(),
        },
        Some(Err(e)) => {
            let e_id = e.id();
            let why = if e.is_panic() {
                let m = crate::error::panic_message(e.into_panic().as_ref());
                format!("it panicked: {m}")
            } else {
                format!("it was cancelled: {e}")
            };
            RunError::TaskEnded {
                task: names.get(&e_id).cloned().unwrap_or_else(|| "a".into()),
                why,
            }
        }
        None => RunError::TaskEnded {
            task: "every".into(),
            why: "no controller was started".into(),
        },
    }
}

async fn client(opts: &Options) -> Result<kube::Client, RunError> {
    let cfg = match &opts.kubeconfig {
        Some(p) => {
            let kerr = |m: String| RunError::Kubeconfig {
                path: p.display().to_string(),
                message: m,
            };
            let kc = kube::config::Kubeconfig::read_from(p).map_err(|e| kerr(e.to_string()))?;
            kube::Config::from_custom_kubeconfig(kc, &Default::default())
                .await
                .map_err(|e| kerr(e.to_string()))?
        }
        None => kube::Config::infer()
            .await
            .map_err(|e| RunError::Client(e.to_string()))?,
    };
    kube::Client::try_from(cfg).map_err(|e| RunError::Client(e.to_string()))
}

/// Annotations only the controller writes, during a reconcile, whose *values* (timestamps, the
/// kept state) never need a reconcile of their own. Were they relevant, every create attempt's
/// pending/failed write would trigger the next attempt at once and pre-empt the per-object
/// backoff (kube-runtime keeps the earliest scheduled run). Their presence still counts, so a
/// user removing `external-create-pending` to unblock an object is seen immediately.
const OWN_ANNOTATIONS: [&str; 4] = [
    reconciler::STATE,
    reconciler::CREATE_PENDING,
    reconciler::CREATE_SUCCEEDED,
    reconciler::CREATE_FAILED,
];

/// Only changes that can alter a decision start a reconcile: spec (generation), annotations
/// (external name, paused), finalizers and deletion. The controller's own status and bookkeeping
/// writes do not, or every status update would cost a second, pointless observation.
fn relevant(o: &DynamicObject) -> Option<u64> {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    o.metadata.generation.hash(&mut h);
    if let Some(a) = &o.metadata.annotations {
        for (k, v) in a {
            k.hash(&mut h);
            if !OWN_ANNOTATIONS.contains(&k.as_str()) {
                v.hash(&mut h);
            }
        }
    }
    o.metadata.finalizers.hash(&mut h);
    o.metadata
        .deletion_timestamp
        .as_ref()
        .map(|t| t.0.to_string())
        .hash(&mut h);
    Some(h.finish())
}

async fn run_kind(shared: Arc<Shared>, resource: Arc<dyn Resource>, concurrency: u16) -> String {
    let kind = ManagedKind::new(resource);
    let ar = kind.ar.clone();
    let kind_name = kind.names.kind.clone();
    let api: Api<DynamicObject> = Api::all_with(shared.client.clone(), &ar);
    let writer = reflector::store::Writer::new(ar.clone());
    let reader = writer.as_reader();
    let trigger = watcher(api, watcher::Config::default())
        .default_backoff()
        .reflect(writer)
        .applied_objects()
        .predicate_filter(relevant, PredicateConfig::default());
    let cx = Arc::new(KindContext { shared, kind });
    tracing::info!(kind = %kind_name, concurrency, "starting controller");
    Controller::for_stream_with(trigger, reader, ar)
        .with_config(ControllerConfig::default().concurrency(concurrency))
        .run(reconciler::reconcile, reconciler::error_policy, cx)
        .for_each(|res| {
            if let Err(e) = res {
                // Reconcile errors are logged (and reported on the object) by the reconciler.
                if !matches!(e, kube::runtime::controller::Error::ReconcilerFailed(..)) {
                    tracing::warn!(kind = %kind_name, error = %e, "controller error");
                }
            }
            futures::future::ready(())
        })
        .await;
    kind_name
}

/// Logs the counters every 10 s while they change: reconcile throughput and CPU cost per
/// reconcile are read from these lines.
async fn log_stats(shared: Arc<Shared>) -> String {
    let mut last = u64::MAX;
    loop {
        tokio::time::sleep(Duration::from_secs(10)).await;
        let s = &shared.stats;
        let n = s.reconciles.load(Ordering::Relaxed);
        if n != last {
            tracing::info!(
                reconciles = n,
                errors = s.errors.load(Ordering::Relaxed),
                creates = s.creates.load(Ordering::Relaxed),
                updates = s.updates.load(Ordering::Relaxed),
                deletes = s.deletes.load(Ordering::Relaxed),
                "reconcile stats"
            );
            last = n;
        }
    }
}

/// Marks the controller ready once the API server answers (retried every 2 s).
async fn await_api_server(client: kube::Client, ready: super::health::Readiness) {
    loop {
        match client.apiserver_version().await {
            Ok(_) => return ready.set_ready(),
            Err(e) => tracing::warn!(error = %e, "API server not reachable yet"),
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

pub async fn run(opts: Options) -> Result<(), RunError> {
    let ready = super::health::Readiness::default();
    if let Some(port) = opts.health_port {
        let listener = super::health::bind(port)
            .await
            .map_err(|source| RunError::HealthPort { port, source })?;
        tracing::info!(port, "serving /healthz and /readyz");
        tokio::spawn(super::health::serve(listener, ready.clone()));
    }
    let client = client(&opts).await?;
    tokio::spawn(await_api_server(client.clone(), ready));
    let identity = format!(
        "{}-{}",
        std::env::var("HOSTNAME").unwrap_or_else(|_| "paved".into()),
        std::process::id()
    );
    let elector = opts.leader_election.then(|| {
        super::leader::Elector::new(client.clone(), &opts.lease_namespace, identity.clone())
    });
    if let Some(e) = &elector {
        e.acquire().await;
    }
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "paved-crossplane".into(),
            instance: Some(identity),
        },
    );
    let faults = Faults::parse(std::env::var("PAVED_CROSSPLANE_FAULT").ok().as_deref());
    if faults != Faults::default() {
        tracing::warn!(?faults, "fault injection is enabled (tests only)");
    }
    let mut shared = Shared::new(client, recorder, opts.poll, opts.max_reconcile_rate, faults);
    let audit_file = opts.audit_file.clone().or_else(|| {
        std::env::var_os("PAVED_AUDIT_FILE")
            .filter(|f| !f.is_empty())
            .map(PathBuf::from)
    });
    if let Some(f) = audit_file {
        let mut trail = crate::audit::Trail::new(
            crate::audit::AuditLog::new(&f, crate::audit::DEFAULT_MAX_BYTES),
            None,
        );
        let url = opts.audit_url.clone().or_else(|| {
            std::env::var("PAVED_AUDIT_URL")
                .ok()
                .filter(|u| !u.is_empty())
        });
        if let Some(url) = url {
            let headers = match std::env::var("PAVED_AUDIT_HEADERS") {
                Ok(h) if !h.is_empty() => crate::delivery::headers_from_json(&h)
                    .map_err(|e| RunError::Sink(format!("PAVED_AUDIT_HEADERS: {e}")))?,
                _ => vec![],
            };
            let sink = crate::delivery::HttpSink::new(
                &url,
                crate::delivery::beside(&f, ".spool"),
                headers,
                crate::delivery::Framing::JsonLines,
            )
            .map_err(|e| RunError::Sink(e.to_string()))?;
            sink.start();
            trail = trail.with_http(sink);
        }
        match trail.close_interrupted() {
            Ok(closed) => {
                for r in closed {
                    tracing::warn!(request_id = %r.request_id, action = %r.action, resource = %r.resource_id.as_deref().or(r.name.as_deref()).unwrap_or("-"), "an earlier controller ended before this change finished; closed as interrupted (the next reconcile observes what exists)");
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "audit trail not readable; changes fail until it is writable")
            }
        }
        shared.audit = Some(Arc::new(trail));
    }
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let mut lineage = opts.lineage.clone();
    lineage.url = lineage.url.or_else(|| env("PAVED_LINEAGE_URL"));
    lineage.file = lineage
        .file
        .or_else(|| env("PAVED_LINEAGE_FILE").map(PathBuf::from));
    lineage.namespace = lineage.namespace.or_else(|| env("PAVED_LINEAGE_NAMESPACE"));
    let headers = match env("PAVED_LINEAGE_HEADERS") {
        Some(h) => crate::delivery::headers_from_json(&h)
            .map_err(|e| RunError::Sink(format!("PAVED_LINEAGE_HEADERS: {e}")))?,
        None => vec![],
    };
    shared.lineage = crate::lineage::Emitter::new(&lineage, headers)
        .map_err(|e| RunError::Sink(e.to_string()))?;
    let shared = Arc::new(shared);
    let concurrency = u16::try_from(opts.max_reconcile_rate).unwrap_or(u16::MAX);
    let mut tasks = tokio::task::JoinSet::new();
    let mut names = std::collections::HashMap::new();
    for r in crate::resources::all() {
        let kind = super::names::KindNames::for_type(r.type_name()).kind;
        names.insert(
            tasks.spawn(run_kind(shared.clone(), r, concurrency)).id(),
            kind,
        );
    }
    names.insert(tasks.spawn(log_stats(shared.clone())).id(), "stats".into());
    tracing::info!(poll = ?opts.poll, rate = opts.max_reconcile_rate, "crossplane controller running");
    let lost = async {
        match &elector {
            Some(e) => e.keep().await,
            None => futures::future::pending().await,
        }
    };
    tokio::select! {
        e = supervise(&mut tasks, &names) => Err(e),
        _ = lost => Err(RunError::LostLeadership),
        _ = tokio::signal::ctrl_c() => {
            tracing::info!("interrupted; stopping");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(s: &str) -> Vec<String> {
        s.split_whitespace().map(String::from).collect()
    }

    fn mr(annotations: &[(&str, &str)], generation: i64) -> DynamicObject {
        let ar = kube::discovery::ApiResource {
            group: "paved.dev".into(),
            version: "v1alpha1".into(),
            api_version: "paved.dev/v1alpha1".into(),
            kind: "GpuComputePool".into(),
            plural: "gpucomputepools".into(),
        };
        let mut o = DynamicObject::new("p", &ar);
        o.metadata.generation = Some(generation);
        o.metadata.annotations = Some(
            annotations
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        o
    }

    #[test]
    fn own_bookkeeping_writes_do_not_trigger_a_reconcile() {
        use reconciler::{CREATE_FAILED, CREATE_PENDING, EXTERNAL_NAME, PAUSED, STATE};
        let first = mr(
            &[
                (EXTERNAL_NAME, "gp-1"),
                (CREATE_PENDING, "2026-01-01T00:00:00Z"),
                (CREATE_FAILED, "2026-01-01T00:00:01Z"),
                (STATE, "a"),
            ],
            1,
        );
        // The next attempt rewrites the timestamps (and the kept state): no new trigger, so the
        // 1 s, 2 s, 4 s … backoff decides when the next attempt runs.
        let retried = mr(
            &[
                (EXTERNAL_NAME, "gp-1"),
                (CREATE_PENDING, "2026-01-01T00:00:05Z"),
                (CREATE_FAILED, "2026-01-01T00:00:06Z"),
                (STATE, "b"),
            ],
            1,
        );
        assert_eq!(relevant(&first), relevant(&retried));
        // What a user (or a decision) changes does trigger one.
        for changed in [
            mr(
                &[
                    (EXTERNAL_NAME, "gp-2"),
                    (CREATE_PENDING, "x"),
                    (CREATE_FAILED, "y"),
                    (STATE, "a"),
                ],
                1,
            ),
            mr(
                &[(EXTERNAL_NAME, "gp-1"), (CREATE_FAILED, "y"), (STATE, "a")],
                1,
            ),
            mr(
                &[
                    (EXTERNAL_NAME, "gp-1"),
                    (CREATE_PENDING, "x"),
                    (CREATE_FAILED, "y"),
                    (STATE, "a"),
                    (PAUSED, "true"),
                ],
                1,
            ),
            mr(
                &[
                    (EXTERNAL_NAME, "gp-1"),
                    (CREATE_PENDING, "x"),
                    (CREATE_FAILED, "y"),
                    (STATE, "a"),
                ],
                2,
            ),
        ] {
            assert_ne!(
                relevant(&first),
                relevant(&changed),
                "{:?}",
                changed.metadata
            );
        }
    }

    #[tokio::test]
    async fn an_ended_or_panicked_task_is_an_error() {
        let mut tasks = tokio::task::JoinSet::new();
        let mut names = std::collections::HashMap::new();
        let id = tasks
            .spawn(async {
                let n = std::hint::black_box(1);
                if n == 1 {
                    panic!("boom");
                }
                String::new()
            })
            .id();
        names.insert(id, "GpuComputePool".to_string());
        tasks.spawn(futures::future::pending::<String>());
        let e = supervise(&mut tasks, &names).await.to_string();
        assert!(e.contains("GpuComputePool controller task stopped"), "{e}");
        assert!(e.contains("panicked: boom"), "{e}");
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(async { "VectorDB".to_string() });
        let e = supervise(&mut tasks, &names).await.to_string();
        assert!(e.contains("VectorDB controller task stopped"), "{e}");
    }

    #[test]
    fn flags_parse() {
        assert_eq!(parse(&[]).unwrap(), Command::Run(Options::default()));
        let Command::Run(o) = parse(&args("--kubeconfig /k --poll=5s --max-reconcile-rate 50 --leader-election --namespace-for-lease cp-x --audit-file /var/log/paved.jsonl")).unwrap() else {
            panic!("run expected");
        };
        assert_eq!(o.kubeconfig, Some(PathBuf::from("/k")));
        assert_eq!(o.poll, Duration::from_secs(5));
        assert_eq!(o.max_reconcile_rate, 50);
        assert!(o.leader_election);
        assert_eq!(o.lease_namespace, "cp-x");
        assert_eq!(o.audit_file, Some(PathBuf::from("/var/log/paved.jsonl")));
        let Command::Run(o) = parse(&args("--audit-file /a.jsonl --audit-url http://siem:8088/raw --lineage-url http://marquez:5000/api/v1/lineage --lineage-file /l.jsonl --lineage-namespace ml")).unwrap() else {
            panic!("not a run")
        };
        assert_eq!(o.audit_url.as_deref(), Some("http://siem:8088/raw"));
        assert_eq!(
            o.lineage,
            crate::lineage::Settings {
                url: Some("http://marquez:5000/api/v1/lineage".into()),
                file: Some(PathBuf::from("/l.jsonl")),
                namespace: Some("ml".into()),
            }
        );
        let e = parse(&args("--lineage-url ftp://x/y")).unwrap_err();
        assert!(e.contains("--lineage-url"), "{e}");
        assert_eq!(
            parse(&args("generate-crds --out x")).unwrap(),
            Command::GenerateCrds {
                out: PathBuf::from("x")
            }
        );
        assert!(parse(&args("--poll soon")).is_err());
        assert!(parse(&args("--poll 18446744073709551615s")).is_err());
        assert!(parse(&args("--max-reconcile-rate 0")).is_err());
        assert!(parse(&args("--bogus")).is_err());
        assert!(parse(&args("--health-port 0")).is_err());
        let Command::Run(o) = parse(&args("--health-port=8081")).unwrap() else {
            panic!("run expected");
        };
        assert_eq!(o.health_port, Some(8081));
        assert_eq!(
            parse(&args("generate-rbac")).unwrap(),
            Command::GenerateRbac {
                out: PathBuf::from("package/rbac"),
                namespace: "crossplane-system".into()
            }
        );
        assert_eq!(
            parse(&args("generate-rbac --out o --namespace n")).unwrap(),
            Command::GenerateRbac {
                out: PathBuf::from("o"),
                namespace: "n".into()
            }
        );
    }
}
