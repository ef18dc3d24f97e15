//! What paved knows about each engine: pinned versions and images, ports, limits, whether it
//! clusters, and the bootstrap script that creates collections once the engine is ready.
//! The scripts are generated here and run unchanged by the bootstrap Job (and by the tests
//! against a real PostgreSQL with pgvector).

use super::spec::Collection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Qdrant,
    Pgvector,
}

/// Image for the bootstrap Job and backups of qdrant (the engine image has no HTTP client).
pub const CURL_IMAGE: &str = "curlimages/curl:8.11.1";
/// Image that copies backups to S3.
pub const AWS_CLI_IMAGE: &str = "amazon/aws-cli:2.22.35";

impl Engine {
    pub const ALL: [Engine; 2] = [Engine::Qdrant, Engine::Pgvector];

    pub fn parse(s: &str) -> Option<Engine> {
        Engine::ALL.into_iter().find(|e| e.name() == s)
    }
    pub fn name(self) -> &'static str {
        match self {
            Engine::Qdrant => "qdrant",
            Engine::Pgvector => "pgvector",
        }
    }
    /// Versions paved has images for, oldest first; the last is the default.
    pub fn versions(self) -> &'static [&'static str] {
        match self {
            Engine::Qdrant => &["1.12.6", "1.13.6", "1.15.5"],
            Engine::Pgvector => &["0.7.4", "0.8.0"],
        }
    }
    pub fn default_version(self) -> &'static str {
        self.versions().last().copied().unwrap_or_default()
    }
    pub fn image(self, version: &str) -> String {
        match self {
            // The unprivileged build runs as uid 1000 without root-owned paths.
            Engine::Qdrant => format!("qdrant/qdrant:v{version}-unprivileged"),
            Engine::Pgvector => format!("pgvector/pgvector:{version}-pg16"),
        }
    }
    pub fn port(self) -> i64 {
        match self {
            Engine::Qdrant => 6333,
            Engine::Pgvector => 5432,
        }
    }
    /// uid/gid the engine image runs as.
    pub fn uid(self) -> i64 {
        match self {
            Engine::Qdrant => 1000,
            Engine::Pgvector => 999,
        }
    }
    /// Whether more than one replica makes a cluster (qdrant's Raft consensus). PostgreSQL
    /// replicas would be independent primaries with diverging data.
    pub fn clusters(self) -> bool {
        self == Engine::Qdrant
    }
    /// Largest dimension an indexed collection may have: pgvector's HNSW and IVFFlat indexes
    /// stop at 2,000 dimensions for the `vector` type; qdrant allows 65,536.
    pub fn max_dimension(self) -> i64 {
        match self {
            Engine::Qdrant => 65_536,
            Engine::Pgvector => 2_000,
        }
    }
    pub fn data_path(self) -> &'static str {
        match self {
            Engine::Qdrant => "/qdrant/storage",
            Engine::Pgvector => "/var/lib/postgresql/data",
        }
    }
}

pub const DISTANCES: [&str; 3] = ["cosine", "dot", "euclid"];

/// pgvector operator class for a distance.
fn pg_opclass(distance: &str) -> &'static str {
    match distance {
        "dot" => "vector_ip_ops",
        "euclid" => "vector_l2_ops",
        _ => "vector_cosine_ops",
    }
}

fn qdrant_distance(distance: &str) -> &'static str {
    match distance {
        "dot" => "Dot",
        "euclid" => "Euclid",
        _ => "Cosine",
    }
}

/// True for names both engines accept as-is: pgvector tables are unquoted lowercase SQL
/// identifiers, qdrant collection names end up in URL paths.
pub fn valid_collection_name(engine: Engine, n: &str) -> bool {
    let first_ok = n.starts_with(|c: char| c.is_ascii_lowercase() || c == '_');
    match engine {
        Engine::Pgvector => {
            first_ok
                && n.len() <= 50
                && n.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        }
        Engine::Qdrant => {
            !n.is_empty()
                && n.len() <= 255
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        }
    }
}

/// The SQL that creates pgvector collections: one table per collection with an HNSW index for
/// its distance. Idempotent: existing tables and indexes are left alone, but an existing table
/// whose vectors have another dimension stops the script with a clear error instead of being
/// silently kept.
pub fn pgvector_sql(collections: &[Collection]) -> String {
    let mut sql = String::from("CREATE EXTENSION IF NOT EXISTS vector;\n");
    for c in collections {
        let (n, d) = (&c.name, c.dimension);
        sql.push_str(&format!(
            "CREATE TABLE IF NOT EXISTS {n} (\n  id text PRIMARY KEY,\n  embedding vector({d}) NOT NULL,\n  payload jsonb NOT NULL DEFAULT '{{}}'::jsonb\n);\n\
DO $$\nDECLARE have int;\nBEGIN\n  SELECT atttypmod INTO have FROM pg_attribute WHERE attrelid = '{n}'::regclass AND attname = 'embedding';\n  IF have IS DISTINCT FROM {d} THEN\n    RAISE EXCEPTION 'collection {n} already exists with dimension %, not {d}; paved never changes an existing collection: create a new one', have;\n  END IF;\nEND $$;\n\
CREATE INDEX IF NOT EXISTS {n}_embedding_idx ON {n} USING hnsw (embedding {});\n\
COMMENT ON TABLE {n} IS 'paved collection: dimension={d} distance={}';\n",
            pg_opclass(&c.distance),
            c.distance
        ));
    }
    sql
}

/// The Job's shell script. Connection settings come from the environment (`PGHOST`, `PGUSER`,
/// `PGPASSWORD`, `PGDATABASE` / `QDRANT_URL`, `QDRANT_API_KEY`) and the files from
/// `$BOOTSTRAP_DIR` (the mounted ConfigMap), so the same script runs in the cluster and in tests.
pub fn bootstrap_script(engine: Engine, collections: &[Collection]) -> String {
    match engine {
        Engine::Pgvector => "set -eu\n\
dir=\"${BOOTSTRAP_DIR:-/bootstrap}\"\n\
i=0\n\
until pg_isready -q; do\n  i=$((i+1)); [ \"$i\" -lt 120 ] || { echo 'PostgreSQL did not become ready' >&2; exit 1; }; sleep 1\ndone\n\
psql -v ON_ERROR_STOP=1 -q -f \"$dir/bootstrap.sql\"\n\
echo 'collections ready'\n"
            .to_string(),
        Engine::Qdrant => {
            let mut s = String::from("set -eu\n\
api() { curl -sS -H \"api-key: $QDRANT_API_KEY\" \"$@\"; }\n\
i=0\n\
until api -f -o /dev/null \"$QDRANT_URL/readyz\"; do\n  i=$((i+1)); [ \"$i\" -lt 120 ] || { echo 'qdrant did not become ready' >&2; exit 1; }; sleep 1\ndone\n\
ensure() {\n  code=$(api -o /tmp/collection.json -w '%{http_code}' \"$QDRANT_URL/collections/$1\")\n  if [ \"$code\" = 200 ]; then\n    if ! grep -q \"\\\"size\\\":$2[,}]\" /tmp/collection.json; then\n      echo \"collection $1 already exists with another dimension than $2; paved never changes an existing collection: create a new one\" >&2; exit 1\n    fi\n    echo \"collection $1 exists; left as it is\"; return 0\n  fi\n  api -f -X PUT -H 'content-type: application/json' \"$QDRANT_URL/collections/$1\" \\\n    -d \"{\\\"vectors\\\":{\\\"size\\\":$2,\\\"distance\\\":\\\"$3\\\"}}\" >/dev/null\n  echo \"collection $1 created\"\n}\n");
            for c in collections {
                s.push_str(&format!("ensure {} {} {}\n", c.name, c.dimension, qdrant_distance(&c.distance)));
            }
            s.push_str("echo 'collections ready'\n");
            s
        }
    }
}

/// The backup CronJob's dump step (runs in the engine's image for pgvector, curl for qdrant)
/// writes into /backup; the upload step copies /backup to the destination.
pub fn backup_dump_script(engine: Engine, collections: &[Collection]) -> String {
    match engine {
        Engine::Pgvector => "set -eu\npg_dump -Fc -f /backup/db.pgdump\n".to_string(),
        Engine::Qdrant => {
            let mut s = String::from("set -eu\n");
            for c in collections {
                s.push_str(&format!(
                    "name=$(curl -fsS -X POST -H \"api-key: $QDRANT_API_KEY\" \"$QDRANT_URL/collections/{n}/snapshots\" | sed -n 's/.*\"name\":\"\\([^\"]*\\)\".*/\\1/p')\n\
curl -fsS -H \"api-key: $QDRANT_API_KEY\" -o \"/backup/{n}.snapshot\" \"$QDRANT_URL/collections/{n}/snapshots/$name\"\n",
                    n = c.name
                ));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(n: &str, d: i64, dist: &str) -> Collection {
        Collection {
            name: n.into(),
            dimension: d,
            distance: dist.into(),
        }
    }

    #[test]
    fn catalog_defaults_are_pinned_images() {
        assert_eq!(Engine::parse("qdrant"), Some(Engine::Qdrant));
        assert_eq!(Engine::parse("milvus"), None);
        assert_eq!(
            Engine::Pgvector.image(Engine::Pgvector.default_version()),
            "pgvector/pgvector:0.8.0-pg16"
        );
        assert!(Engine::Qdrant
            .image("1.13.6")
            .ends_with("v1.13.6-unprivileged"));
        assert!(Engine::Qdrant.clusters() && !Engine::Pgvector.clusters());
    }

    #[test]
    fn sql_is_idempotent_by_construction_and_uses_the_distance_operator() {
        let sql = pgvector_sql(&[col("docs", 768, "cosine"), col("faq", 3, "euclid")]);
        assert!(sql.starts_with("CREATE EXTENSION IF NOT EXISTS vector;"));
        assert!(sql.contains("CREATE TABLE IF NOT EXISTS docs"));
        assert!(sql.contains("embedding vector(768)"));
        assert!(sql.contains("USING hnsw (embedding vector_cosine_ops)"));
        assert!(sql.contains("USING hnsw (embedding vector_l2_ops)"));
        assert_eq!(sql.matches("CREATE TABLE IF NOT EXISTS").count(), 2);
    }

    #[test]
    fn qdrant_script_creates_each_collection_with_its_distance() {
        let s = bootstrap_script(Engine::Qdrant, &[col("docs", 768, "dot")]);
        assert!(s.contains("ensure docs 768 Dot\n"), "{s}");
        assert!(s.contains("api-key: $QDRANT_API_KEY"));
        // The key comes from the environment (a Secret), never from the script.
        assert!(!s.contains("QDRANT_API_KEY="));
    }

    #[test]
    fn collection_names_are_safe_identifiers() {
        assert!(valid_collection_name(Engine::Pgvector, "docs_v2"));
        assert!(!valid_collection_name(Engine::Pgvector, "Docs"));
        assert!(!valid_collection_name(
            Engine::Pgvector,
            "docs; drop table x"
        ));
        assert!(!valid_collection_name(Engine::Pgvector, "2docs"));
        assert!(valid_collection_name(Engine::Qdrant, "docs-v2.1"));
        assert!(!valid_collection_name(Engine::Qdrant, "a/b"));
    }
}
