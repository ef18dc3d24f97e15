//! The `paved_vector_db` schema.

use crate::cty::{Type, Value};
use crate::schema::{Attribute, Block, Nesting, Schema};

pub fn schema() -> Schema {
    let s = || Type::String;
    let storage = Block::new("Persistent volume per replica. Kubernetes cannot change a StatefulSet's volume claims in place, so changing the size or class replaces the database (the plan says so).")
        .attr(Attribute::optional_computed("size", s(), "Volume size per replica (default \"10Gi\").").default(Value::string("10Gi")))
        .attr(Attribute::optional("storage_class", s(), "StorageClass (default: the cluster's default class)."));
    let resources = Block::new("Per-replica resources.")
        .attr(
            Attribute::optional_computed("cpu", s(), "CPU request (default \"500m\").")
                .default(Value::string("500m")),
        )
        .attr(
            Attribute::optional_computed(
                "memory",
                s(),
                "Memory request and limit (default \"1Gi\").",
            )
            .default(Value::string("1Gi")),
        );
    let collection = Block::new("A collection (qdrant) or table (pgvector) created by the bootstrap Job. Existing collections are left as they are; removing one from the configuration never drops data.")
        .attr(Attribute::required("name", s(), "Collection name; for pgvector a lowercase SQL identifier."))
        .attr(Attribute::required("dimension", Type::Number, "Vector dimension (pgvector indexes allow at most 2,000)."))
        .attr(Attribute::optional_computed("distance", s(), "cosine (default), dot or euclid.").default(Value::string("cosine")));
    let backup = Block::new("Scheduled backups to object storage (a CronJob).")
        .attr(Attribute::required(
            "schedule",
            s(),
            "Cron schedule, e.g. \"0 3 * * *\".",
        ))
        .attr(Attribute::required(
            "destination",
            s(),
            "s3://bucket/prefix the dumps/snapshots are copied to.",
        ))
        .attr(Attribute::optional("access_key_id", s(), "AWS access key ID the upload uses (with a secret access key); without it, the pod's own AWS identity (IRSA, node role) is used."))
        .attr(Attribute::optional("secret_access_key", s(), "AWS secret access key for access_key_id. Stored in the state as a sensitive value; prefer secret_access_key_wo on Terraform/OpenTofu >= 1.11.").sensitive())
        .attr(Attribute::optional("secret_access_key_wo", s(), "Write-only form of secret_access_key (Terraform >= 1.11, OpenTofu >= 1.11): used during apply, never stored in the plan or state. Set one of the two.").write_only())
        .attr(Attribute::optional("secret_access_key_wo_version", Type::Number, "Change this number to make apply write a new secret_access_key_wo."));
    let timeouts = Block::new("Overall limits per operation (e.g. \"15m\").")
        .attr(Attribute::optional("create", s(), "Default 15m."))
        .attr(Attribute::optional("update", s(), "Default 15m."))
        .attr(Attribute::optional("delete", s(), "Default 10m."));
    Schema::new(
        0,
        Block::new("A vector database (Qdrant or PostgreSQL with pgvector) on Kubernetes with storage, a generated API key, network isolation, collections and optional backups.")
            .attr(Attribute::computed("id", s(), "namespace/name; import with it."))
            .attr(Attribute::required("name", s(), "Database name (DNS label, at most 40 characters). Changing it replaces the database.").force_new())
            .attr(Attribute::optional_computed("namespace", s(), "Namespace (default \"default\").").default(Value::string("default")).force_new())
            .attr(Attribute::optional_computed("team", s(), "Team charged for the database (default: provider default_team)."))
            .attr(Attribute::optional_computed("project", s(), "Project (default: provider default_project)."))
            .attr(Attribute::required("engine", s(), "qdrant or pgvector. Changing it replaces the database.").force_new())
            .attr(Attribute::optional_computed("engine_version", s(), "Engine version (default: the version paved pins for the engine)."))
            .attr(Attribute::optional_computed("image", s(), "Engine image (default: the pinned image for engine_version)."))
            .attr(Attribute::optional_computed("replicas", Type::Number, "Replicas (default 1); more than 1 only for engines that cluster (qdrant).").default(Value::int(1)))
            .attr(Attribute::optional("allowed_teams", Type::list(s()), "Teams besides the owning team whose pods (label paved.dev/team) may connect."))
            .attr(Attribute::optional_computed("team_credentials", Type::Bool, "pgvector only: give the owning team and each of allowed_teams its own PostgreSQL login role (owner read-write, allowed teams read-only on the collection tables) and its own Secret <name>-<team>-credentials in the namespace named after the team. Removing a team from allowed_teams drops its role and deletes its Secret. Default false.").default(Value::Bool(false)))
            .attr(Attribute::optional("rotation_days", Type::Number, "With team_credentials: a team's password older than this many days (at least 1) is replaced by the next apply or reconcile. Without it, team passwords are kept until the team is removed."))
            .attr(Attribute::computed("team_secrets", Type::map(s()), "With team_credentials: team → namespace/name of the Secret holding its credential. Known at plan time; a Secret that is missing or due for rotation is left out when read, so the next plan issues it again."))
            .attr(Attribute::computed("endpoint", s(), "In-cluster host name of the client Service."))
            .attr(Attribute::computed("port", Type::Number, "Client port (qdrant HTTP 6333, PostgreSQL 5432)."))
            .attr(Attribute::computed("api_key", s(), "Generated API key (qdrant) or password (pgvector).").sensitive())
            .attr(Attribute::computed("hourly_cost_usd", Type::Number, "Hourly USD cost of what the database asks the cluster for: its pods' CPU and memory requests and its volumes × the Kubernetes unit prices (OpenCost's defaults, or price_overrides k8s:cpu, k8s:memory_gib, k8s:storage_gib). Known at plan time."))
            .attr(Attribute::computed("monthly_cost_usd", crate::resources::cost::monthly_type(), crate::resources::cost::MONTHLY_DESCRIPTION))
            .attr(Attribute::computed("connection_secret", s(), "Name of the Secret clients mount (keys: endpoint, port, api-key, and for pgvector username, database, uri)."))
            .attr(Attribute::optional_computed("deletion_protection", Type::Bool, "When true, destroy is refused (at plan time on CLIs that plan destroys, and at apply) so the collections' data are not lost by accident. Default false.").default(Value::Bool(false)))
            .attr(Attribute::computed("status", s(), "Ready, Progressing, or Degraded with the reason, read from the cluster."))
            .block("storage", Nesting::Single, storage)
            .block("resources", Nesting::Single, resources)
            .block("collection", Nesting::List, collection)
            .block("backup", Nesting::Single, backup)
            .block("timeouts", Nesting::Single, timeouts),
    )
}
