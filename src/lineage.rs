//! Lineage as OpenLineage 2-0-2 events: each create, update or rollback of a resource that
//! describes itself as a job ([`crate::resource::Resource::lineage`]) is a *run* with one START
//! and one COMPLETE or FAIL, whose run ID is the change's audit request ID, so a lineage
//! backend and the audit trail name the same change. A model endpoint's inputs are its model
//! artifact (the digest as dataset version), its feature store and its vector DB collections;
//! endpoints and pools both carry the `paved_environment` job facet (CUDA, driver, images), so
//! the training pool and the serving endpoint of a model can be compared.
//!
//! Events go to a JSON Lines file and/or an HTTP endpoint (the OpenLineage HTTP transport,
//! one event per POST) through a spool ([`crate::delivery`]), so a backend that is down only
//! delays them. Lineage never blocks a change: the audit trail is the record that must exist
//! first; a lineage event that cannot be queued is logged as a warning.

use crate::delivery::{Framing, HttpSink, Spool};
use serde_json::{json, Map, Value as Json};
use std::path::PathBuf;
use std::sync::Arc;

pub const SPEC: &str = "https://openlineage.io/spec/2-0-2/OpenLineage.json";
pub const PRODUCER: &str = concat!(
    "https://github.com/paved-dev/terraform-provider-paved/tree/v",
    env!("CARGO_PKG_VERSION")
);
/// paved's own facet, published in `docs/lineage/PavedEnvironmentJobFacet.json`.
pub const ENVIRONMENT_FACET: &str =
    "https://paved.dev/spec/facets/1-0-0/PavedEnvironmentJobFacet.json#/$defs/PavedEnvironmentJobFacet";
pub const DEFAULT_NAMESPACE: &str = "paved";

/// Where events go, from the provider's `lineage` block or the controller's flags.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Settings {
    pub url: Option<String>,
    pub file: Option<PathBuf>,
    /// The OpenLineage job namespace (default `paved`).
    pub namespace: Option<String>,
}

/// What a resource state is in lineage terms.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Unique within the namespace: `TYPE.ID`, e.g. `paved_model_endpoint.ml/chat`.
    pub name: String,
    pub inputs: Vec<Dataset>,
    /// The team that owns the job (the Ownership facet).
    pub owner: Option<String>,
    /// The `paved_environment` facet's fields (cudaVersion, driverVersion, images, …).
    pub environment: Map<String, Json>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Dataset {
    pub namespace: String,
    pub name: String,
    /// The dataset version facet (a model's digest, else its version).
    pub version: Option<String>,
}

impl Dataset {
    /// A dataset at a URI: `s3://models/llama/7b` is namespace `s3://models`, name `llama/7b`
    /// (OpenLineage's naming for object stores).
    pub fn at_uri(uri: &str, version: Option<String>) -> Dataset {
        let (namespace, name) = match uri.split_once("://") {
            Some((scheme, rest)) => match rest.split_once('/') {
                Some((host, path)) => (format!("{scheme}://{host}"), path.to_string()),
                None => (format!("{scheme}://{rest}"), String::new()),
            },
            None => ("file".to_string(), uri.to_string()),
        };
        Dataset {
            namespace,
            name: if name.is_empty() { "/".into() } else { name },
            version,
        }
    }
}

/// The configured destinations.
#[derive(Debug)]
pub struct Emitter {
    namespace: String,
    file: Option<Spool>,
    http: Option<Arc<HttpSink>>,
}

impl Emitter {
    /// None when neither a URL nor a file is set. Without a file, the HTTP spool lives in the
    /// temp dir (`paved-lineage.spool`); set a file to keep it on a volume.
    pub fn new(
        s: &Settings,
        headers: Vec<(String, String)>,
    ) -> Result<Option<Arc<Emitter>>, crate::delivery::DeliveryError> {
        if s.url.is_none() && s.file.is_none() {
            return Ok(None);
        }
        let http = match &s.url {
            None => None,
            Some(url) => {
                let spool = match &s.file {
                    Some(f) => crate::delivery::beside(f, ".spool"),
                    None => std::env::temp_dir().join("paved-lineage.spool"),
                };
                let sink = HttpSink::new(url, spool, headers, Framing::OnePerRequest)?;
                sink.start();
                Some(sink)
            }
        };
        Ok(Some(Arc::new(Emitter {
            namespace: s
                .namespace
                .clone()
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| DEFAULT_NAMESPACE.into()),
            file: s.file.as_ref().map(Spool::new),
            http,
        })))
    }

    fn send(&self, event: &Json) {
        let line = event.to_string();
        if let Some(f) = &self.file {
            if let Err(e) = f.append(&line) {
                tracing::warn!(file = %f.path().display(), error = %e, "lineage event not written");
            }
        }
        if let Some(h) = &self.http {
            if let Err(e) = h.enqueue(&line) {
                tracing::warn!(url = h.url(), error = %e, "lineage event not queued");
            }
        }
    }

    /// A run whose START an earlier call emitted (a Crossplane rollout spans reconciles).
    pub fn resume(self: &Arc<Self>, job: Job, run_id: &str, action: &str) -> Run {
        Run {
            emitter: self.clone(),
            job,
            run_id: run_id.into(),
            action: action.into(),
            requester: None,
            cause: None,
        }
    }

    /// Emits the START of a run (the change `run_id`) and returns it, to be finished.
    pub fn start(
        self: &Arc<Self>,
        job: Job,
        run_id: &str,
        action: &str,
        requester: Option<&str>,
    ) -> Run {
        let run = Run {
            emitter: self.clone(),
            job,
            run_id: run_id.into(),
            action: action.into(),
            requester: requester.map(String::from),
            cause: None,
        };
        self.send(&run.event("START", None));
        run
    }
}

/// A run whose START went out.
pub struct Run {
    emitter: Arc<Emitter>,
    job: Job,
    run_id: String,
    action: String,
    requester: Option<String>,
    /// For a rollback: the failure it recovers from (the ErrorMessage facet of its events).
    cause: Option<String>,
}

impl Run {
    /// The run's ID and action, to record where a later process can resume it.
    pub fn mark(&self) -> String {
        format!("{} {}", self.run_id, self.action)
    }

    pub fn with_cause(mut self, cause: &str) -> Run {
        self.cause = Some(cause.into());
        self
    }

    /// COMPLETE with the job as it ended (`after`), or FAIL with the error.
    pub fn finish(mut self, outcome: Result<Option<Job>, &str>) {
        let event = match outcome {
            Ok(after) => {
                if let Some(j) = after {
                    self.job = j;
                }
                self.event("COMPLETE", None)
            }
            Err(e) => self.event("FAIL", Some(e)),
        };
        self.emitter.send(&event);
    }

    /// ABORT: the change was superseded (a newer spec replaced the rollout) before it ended.
    pub fn abort(self) {
        let e = self.event("ABORT", None);
        self.emitter.send(&e);
    }

    fn event(&self, kind: &str, error: Option<&str>) -> Json {
        let facet = |schema: &str, body: Json| {
            let mut m = Map::new();
            m.insert("_producer".into(), json!(PRODUCER));
            m.insert("_schemaURL".into(), json!(schema));
            if let Json::Object(b) = body {
                m.extend(b);
            }
            Json::Object(m)
        };
        let mut run_facets = Map::new();
        if let Some(message) = error.or(self.cause.as_deref()) {
            run_facets.insert(
                "errorMessage".into(),
                facet(
                    "https://openlineage.io/spec/facets/1-0-1/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
                    json!({ "message": message, "programmingLanguage": "rust" }),
                ),
            );
        }
        let mut change = json!({ "action": self.action });
        if let Some(r) = &self.requester {
            change["requester"] = json!(r);
        }
        run_facets.insert(
            "paved_change".into(),
            facet(
                "https://paved.dev/spec/facets/1-0-0/PavedChangeRunFacet.json#/$defs/PavedChangeRunFacet",
                change,
            ),
        );
        let mut job_facets = Map::new();
        job_facets.insert(
            "jobType".into(),
            facet(
                "https://openlineage.io/spec/facets/2-0-4/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
                json!({ "processingType": "BATCH", "integration": "PAVED", "jobType": "ROLLOUT" }),
            ),
        );
        if let Some(o) = &self.job.owner {
            job_facets.insert(
                "ownership".into(),
                facet(
                    "https://openlineage.io/spec/facets/1-0-1/OwnershipJobFacet.json#/$defs/OwnershipJobFacet",
                    json!({ "owners": [{ "name": format!("team:{o}"), "type": "TEAM" }] }),
                ),
            );
        }
        if !self.job.environment.is_empty() {
            job_facets.insert(
                "paved_environment".into(),
                facet(
                    ENVIRONMENT_FACET,
                    Json::Object(self.job.environment.clone()),
                ),
            );
        }
        let inputs: Vec<Json> = self
            .job
            .inputs
            .iter()
            .map(|d| {
                let mut i = json!({ "namespace": d.namespace, "name": d.name });
                if let Some(v) = &d.version {
                    i["facets"] = json!({ "version": facet(
                        "https://openlineage.io/spec/facets/1-0-1/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
                        json!({ "datasetVersion": v }),
                    ) });
                }
                i
            })
            .collect();
        json!({
            "eventType": kind,
            "eventTime": crate::audit::now(),
            "producer": PRODUCER,
            "schemaURL": format!("{SPEC}#/$defs/RunEvent"),
            "run": { "runId": self.run_id, "facets": run_facets },
            "job": { "namespace": self.emitter.namespace, "name": self.job.name, "facets": job_facets },
            "inputs": inputs,
            "outputs": [],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job() -> Job {
        let mut env = Map::new();
        env.insert("cudaVersion".into(), json!("12.4"));
        Job {
            name: "paved_model_endpoint.ml/chat".into(),
            inputs: vec![Dataset::at_uri(
                "s3://models/llama/7b",
                Some("sha256:ab".into()),
            )],
            owner: Some("ml".into()),
            environment: env,
        }
    }

    #[test]
    fn uris_name_datasets_the_openlineage_way() {
        let d = Dataset::at_uri("s3://models/llama/7b", None);
        assert_eq!(
            (d.namespace.as_str(), d.name.as_str()),
            ("s3://models", "llama/7b")
        );
        let g = Dataset::at_uri("gs://bucket", None);
        assert_eq!(
            (g.namespace.as_str(), g.name.as_str()),
            ("gs://bucket", "/")
        );
        assert_eq!(Dataset::at_uri("/models/x", None).namespace, "file");
    }

    #[test]
    fn a_run_is_one_start_and_one_fail_with_the_error_in_a_file() {
        let file = std::env::temp_dir()
            .join(format!("paved-lineage-{}", crate::audit::request_id()))
            .join("ol.jsonl");
        let s = Settings {
            file: Some(file.clone()),
            ..Default::default()
        };
        let e = Emitter::new(&s, vec![]).unwrap().unwrap();
        let id = crate::audit::request_id();
        e.start(job(), &id, "update", Some("alice"))
            .finish(Err("rollout failed; rolled back"));
        let lines: Vec<Json> = std::fs::read_to_string(&file)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            (
                lines[0]["eventType"].as_str(),
                lines[1]["eventType"].as_str()
            ),
            (Some("START"), Some("FAIL"))
        );
        assert_eq!(lines[1]["run"]["runId"], json!(id));
        assert_eq!(
            lines[1]["run"]["facets"]["errorMessage"]["message"],
            json!("rollout failed; rolled back")
        );
        assert!(lines[0]["run"]["facets"].get("errorMessage").is_none());
        assert_eq!(
            lines[0]["inputs"][0]["facets"]["version"]["datasetVersion"],
            json!("sha256:ab")
        );
        assert_eq!(lines[0]["job"]["namespace"], json!("paved"));
        assert!(Emitter::new(&Settings::default(), vec![])
            .unwrap()
            .is_none());
    }
}
