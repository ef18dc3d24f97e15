//! The `paved_feature_store` schema.

use crate::cty::{Type, Value};
use crate::schema::{Attribute, Block, Nesting, Schema};

pub const DEFAULT_IMAGE: &str = "feastdev/feature-server:0.47.0";
/// The feature store's own volume; `file://` registry and offline-store paths live under it.
pub const DATA_DIR: &str = "/feast/data";

pub fn schema() -> Schema {
    let s = || Type::String;
    let online = Block::new("Where online features are served from: a Redis that paved runs (default), a paved_vector_db, or an external Redis.")
        .attr(Attribute::optional_computed("kind", s(), "redis (default), vector_db or external.").default(Value::string("redis")))
        .attr(Attribute::optional("vector_db_id", s(), "ID of a paved_vector_db in the same namespace (kind = vector_db)."))
        .attr(Attribute::optional("connection_string", s(), "Redis connection string, e.g. host:6379,password=… (kind = external). Stored in the state (as a sensitive value); prefer connection_string_wo on Terraform/OpenTofu >= 1.11.").sensitive())
        .attr(Attribute::optional("connection_string_wo", s(), "Write-only form of connection_string (Terraform >= 1.11, OpenTofu >= 1.11): used during apply, never stored in the plan or state, so it can come from an ephemeral value. Set one of the two.").write_only())
        .attr(Attribute::optional("connection_string_wo_version", Type::Number, "Change this number to make apply write a new connection_string_wo (paved cannot see a write-only value change by itself)."))
        .attr(Attribute::optional_computed("storage_size", s(), "Volume of the managed Redis (default \"1Gi\").").default(Value::string("1Gi")));
    let server = Block::new("The Feast feature server (HTTP).")
        .attr(
            Attribute::optional_computed(
                "replicas",
                Type::Number,
                "Replicas (default 1); more than 1 needs a non-file registry and offline store.",
            )
            .default(Value::int(1)),
        )
        .attr(
            Attribute::optional_computed(
                "image",
                s(),
                "Feature server image (default feastdev/feature-server:0.47.0).",
            )
            .default(Value::string(DEFAULT_IMAGE)),
        );
    let materialization =
        Block::new("Scheduled `feast materialize-incremental` (a CronJob).").attr(
            Attribute::required("schedule", s(), "Cron schedule, e.g. \"*/30 * * * *\"."),
        );
    let timeouts = Block::new("Overall limits per operation (e.g. \"15m\").")
        .attr(Attribute::optional("create", s(), "Default 15m."))
        .attr(Attribute::optional("update", s(), "Default 15m."))
        .attr(Attribute::optional("delete", s(), "Default 10m."));
    Schema::new(
        0,
        Block::new("A Feast feature store on Kubernetes: client configuration, online store, feature server and scheduled materialization.")
            .attr(Attribute::computed("id", s(), "namespace/name; import with it."))
            .attr(Attribute::required("name", s(), "Feature store name (DNS label, at most 40 characters). Changing it replaces the store.").force_new())
            .attr(Attribute::optional_computed("namespace", s(), "Namespace (default \"default\").").default(Value::string("default")).force_new())
            .attr(Attribute::optional_computed("team", s(), "Team charged for the store (default: provider default_team)."))
            .attr(Attribute::optional_computed("project", s(), "Project (default: provider default_project)."))
            .attr(Attribute::optional("allowed_teams", Type::list(s()), "Teams besides team whose pods (label paved.dev/team) may call the feature server. Enforced by a NetworkPolicy only (it needs a CNI that enforces NetworkPolicies): the feature server has no authentication, and the online store's credential stays with the owning team (the managed Redis admits only the store's own pods)."))
            .attr(Attribute::optional_computed("feast_project", s(), "Feast project name (default: name with '-' replaced by '_')."))
            .attr(Attribute::optional_computed("offline_store", s(), "Offline store location: file:///feast/data/… (the store's volume) or s3://bucket/prefix (default file:///feast/data/offline).").default(Value::string("file:///feast/data/offline")))
            .attr(Attribute::optional_computed("registry", s(), "Registry location: file:///feast/data/… or s3://bucket/key (default file:///feast/data/registry.db).").default(Value::string("file:///feast/data/registry.db")))
            .attr(Attribute::computed("online_store_endpoint", s(), "host:port of the online store."))
            .attr(Attribute::computed("feature_server_url", s(), "In-cluster URL of the feature server."))
            .attr(Attribute::computed("hourly_cost_usd", Type::Number, "Hourly USD cost of what the store asks the cluster for: its pods' CPU and memory requests and its volumes × the Kubernetes unit prices (OpenCost's defaults, or price_overrides k8s:cpu, k8s:memory_gib, k8s:storage_gib). Known at plan time."))
            .attr(Attribute::computed("monthly_cost_usd", crate::resources::cost::monthly_type(), crate::resources::cost::MONTHLY_DESCRIPTION))
            .attr(Attribute::computed("client_config_map", s(), "ConfigMap holding feature_store.yaml for clients (secrets come from environment variables, see the docs)."))
            .attr(Attribute::optional_computed("deletion_protection", Type::Bool, "When true, destroy is refused (at plan time on CLIs that plan destroys, and at apply) so the registry and online store data are not lost by accident. Default false.").default(Value::Bool(false)))
            .attr(Attribute::computed("status", s(), "Ready, Progressing, or Degraded with the reason, read from the cluster."))
            .block("online_store", Nesting::Single, online)
            .block("feature_server", Nesting::Single, server)
            .block("materialization", Nesting::Single, materialization)
            .block("timeouts", Nesting::Single, timeouts),
    )
}
