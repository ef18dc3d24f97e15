//! The `paved_model_endpoint` schema.

use crate::cty::{Type, Value};
use crate::schema::{Attribute, Block, Nesting, Schema};

pub fn schema() -> Schema {
    let s = || Type::String;
    let model = Block::new("The model being served; recorded as lineage on every object.")
        .attr(Attribute::required(
            "uri",
            s(),
            "Where the weights live, e.g. s3://models/llama/7b.",
        ))
        .attr(Attribute::required(
            "version",
            s(),
            "Model version; changing it rolls out a new revision.",
        ))
        .attr(Attribute::optional(
            "digest",
            s(),
            "Content digest of the weights (sha256:…), for lineage and verification.",
        ))
        .attr(Attribute::optional(
            "format",
            s(),
            "Model format, e.g. onnx, pytorch, safetensors.",
        ));
    let runtime = Block::new("The serving container.")
        .attr(Attribute::required("image", s(), "Serving image."))
        .attr(Attribute::optional("args", Type::list(s()), "Container arguments."))
        .attr(Attribute::optional("env", Type::map(s()), "Extra environment variables."))
        .attr(Attribute::optional_computed("port", Type::Number, "Serving port (default 8080).").default(Value::int(8080)))
        .attr(Attribute::optional("cuda_version", s(), "CUDA version the image is built with; required for GPUs and checked against the pool's driver."));
    let resources = Block::new("Per-replica resources.")
        .attr(
            Attribute::optional_computed("gpus", Type::Number, "GPUs per replica (default 0).")
                .default(Value::int(0)),
        )
        .attr(
            Attribute::optional_computed(
                "cpu",
                s(),
                "CPU request (default \"1\"); no CPU limit is set, so replicas may burst.",
            )
            .default(Value::string("1")),
        )
        .attr(
            Attribute::optional_computed(
                "memory",
                s(),
                "Memory request and limit (default \"2Gi\").",
            )
            .default(Value::string("2Gi")),
        );
    let autoscaling = Block::new("Replica bounds (HorizontalPodAutoscaler, autoscaling/v2).")
        .attr(
            Attribute::optional_computed(
                "min_replicas",
                Type::Number,
                "Replicas when idle (default 1).",
            )
            .default(Value::int(1)),
        )
        .attr(
            Attribute::optional_computed("max_replicas", Type::Number, "Upper bound (default 3).")
                .default(Value::int(3)),
        )
        .attr(
            Attribute::optional_computed(
                "target_cpu_utilization",
                Type::Number,
                "Target average CPU % (default 70).",
            )
            .default(Value::int(70)),
        );
    let health = Block::new("Probes.")
        .attr(Attribute::optional_computed("readiness_path", s(), "HTTP readiness path (default /healthz).").default(Value::string("/healthz")))
        .attr(Attribute::optional_computed("liveness_path", s(), "HTTP liveness path (default /healthz).").default(Value::string("/healthz")))
        .attr(Attribute::optional_computed("startup_timeout", s(), "How long a new replica may take to become ready before the rollout counts as failed (default 5m).").default(Value::string("5m")));
    let canary = Block::new(
        "A canary revision taking a share of traffic (by replica ratio, inside min_replicas).",
    )
    .attr(Attribute::required(
        "version",
        s(),
        "Model version of the canary.",
    ))
    .attr(Attribute::optional(
        "image",
        s(),
        "Serving image of the canary (default: runtime.image).",
    ))
    .attr(Attribute::required(
        "traffic_percent",
        Type::Number,
        "Share of traffic, 0-100.",
    ));
    let rollout = Block::new("How apply waits for rollouts.")
        .attr(
            Attribute::optional_computed(
                "wait",
                Type::Bool,
                "Wait until the rollout is Available (default true).",
            )
            .default(Value::Bool(true)),
        )
        .attr(
            Attribute::optional_computed(
                "timeout",
                s(),
                "Longest wait for a rollout (default 10m).",
            )
            .default(Value::string("10m")),
        )
        .attr(
            Attribute::optional_computed(
                "auto_rollback",
                Type::Bool,
                "Restore the previous revision when a rollout fails (default true).",
            )
            .default(Value::Bool(true)),
        );
    let timeouts = Block::new("Overall limits per operation (e.g. \"15m\").")
        .attr(Attribute::optional("create", s(), "Default 15m."))
        .attr(Attribute::optional("update", s(), "Default 15m."))
        .attr(Attribute::optional("delete", s(), "Default 10m."));
    Schema::new(
        0,
        Block::new("A model behind an autoscaling endpoint with canary rollout, health checks and automatic rollback, on Kubernetes.")
            .attr(Attribute::computed("id", s(), "namespace/name; import with it."))
            .attr(Attribute::required("name", s(), "Endpoint name (DNS label). Changing it replaces the endpoint.").force_new())
            .attr(Attribute::optional_computed("namespace", s(), "Namespace (default \"default\").").default(Value::string("default")).force_new())
            .attr(Attribute::optional_computed("team", s(), "Team charged for the endpoint (default: provider default_team)."))
            .attr(Attribute::optional_computed("project", s(), "Project (default: provider default_project)."))
            .attr(Attribute::optional("pool_id", s(), "paved_gpu_compute_pool to run on (nodes labelled paved.dev/pool-id)."))
            .attr(Attribute::optional("gpu_hourly_usd", Type::Number, "USD per hour of one GPU on the nodes the endpoint runs on, for its cost figures; set it from the pool's gpu_hourly_usd (known at plan time). Unset: the Kubernetes GPU price (OpenCost's default, or price_overrides k8s:gpu)."))
            .attr(Attribute::optional("vector_db_id", s(), "paved_vector_db (same namespace) whose connection details are injected: VECTOR_DB_ENDPOINT, VECTOR_DB_PORT, VECTOR_DB_ENGINE and VECTOR_DB_API_KEY from its Secret."))
            .attr(Attribute::optional("feature_store_id", s(), "paved_feature_store (same namespace) whose feature_store.yaml is mounted at /etc/feast, with FEAST_FEATURE_SERVER_URL and the online-store credential in the environment."))
            .attr(Attribute::computed("url", s(), "In-cluster URL of the endpoint."))
            .attr(Attribute::computed("served_revision", s(), "What is actually serving, read from the cluster: stable model version and Deployment revision, plus the canary when present."))
            .attr(Attribute::computed("ready_replicas", Type::Number, "Ready replicas across stable and canary."))
            .attr(Attribute::computed("hourly_cost_usd", Type::Number, "Hourly USD cost of the ready replicas: CPU and memory requests and GPUs per replica × the Kubernetes unit prices (OpenCost's defaults, or price_overrides k8s:cpu, k8s:memory_gib, k8s:gpu; GPUs at gpu_hourly_usd when it is set)."))
            .attr(Attribute::computed("monthly_cost_usd", crate::resources::cost::monthly_type(), crate::resources::cost::MONTHLY_DESCRIPTION))
            .attr(Attribute::computed("status", s(), "Ready, Progressing or Degraded, from the Deployments' conditions."))
            .attr(Attribute::computed("lineage", Type::map(s()), "Model, runtime, pool and team recorded on every object."))
            .block("model", Nesting::Single, model)
            .required_block()
            .block("runtime", Nesting::Single, runtime)
            .required_block()
            .block("resources", Nesting::Single, resources)
            .block("autoscaling", Nesting::Single, autoscaling)
            .block("health", Nesting::Single, health)
            .block("canary", Nesting::Single, canary)
            .block("rollout", Nesting::Single, rollout)
            .block("timeouts", Nesting::Single, timeouts),
    )
}
