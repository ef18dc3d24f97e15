//! `paved_vector_db_credentials`: a `paved_vector_db`'s endpoint and key, read from its Secret
//! for one run, so a configuration can hand them to another provider's write-only argument (or
//! a feature store's `connection_string_wo`) without the key ever reaching state.

use crate::cloud::kube::Kind;
use crate::context::Context;
use crate::cty::{Type, Value};
use crate::diag::{AttrPath, Diagnostics};
use crate::ephemeral::EphemeralResource;
use crate::error::ResourceError;
use crate::resources::vector_db::spec::credentials_secret;
use crate::resources::workload;
use crate::schema::{Attribute, Block, Schema};
use async_trait::async_trait;

pub struct VectorDbCredentials;

/// Computed attributes and the Secret key each comes from.
const FROM_SECRET: [(&str, &str); 7] = [
    ("engine", "engine"),
    ("endpoint", "endpoint"),
    ("port", "port"),
    ("api_key", "api-key"),
    ("username", "username"),
    ("database", "database"),
    ("uri", "uri"),
];

#[async_trait]
impl EphemeralResource for VectorDbCredentials {
    fn type_name(&self) -> &'static str {
        "paved_vector_db_credentials"
    }

    fn schema(&self) -> Schema {
        let s = || Type::String;
        Schema::new(
            0,
            Block::new("The connection details of a paved_vector_db, read from its credentials Secret for this run only: nothing is stored in the plan or the state.")
                .attr(Attribute::required("vector_db_id", s(), "ID (namespace/name) of a paved_vector_db, e.g. paved_vector_db.docs.id."))
                .attr(Attribute::computed("engine", s(), "qdrant or pgvector."))
                .attr(Attribute::computed("endpoint", s(), "In-cluster host name of the client Service."))
                .attr(Attribute::computed("port", Type::Number, "Client port."))
                .attr(Attribute::computed("api_key", s(), "API key (qdrant) or password (pgvector).").sensitive())
                .attr(Attribute::computed("username", s(), "Database user (pgvector; null for qdrant)."))
                .attr(Attribute::computed("database", s(), "Database name (pgvector; null for qdrant)."))
                .attr(Attribute::computed("uri", s(), "postgresql:// URI with the password (pgvector; null for qdrant).").sensitive()),
        )
    }

    fn validate(&self, config: &Value) -> Diagnostics {
        let mut d = Diagnostics::new();
        if let Some(id) = config.get("vector_db_id").as_str() {
            if workload::split_id(id).is_err() {
                d.attr_error(
                    AttrPath::attr("vector_db_id"),
                    "Invalid vector database ID",
                    format!("{id:?} is not NAMESPACE/NAME; pass paved_vector_db.<name>.id."),
                );
            }
        }
        d
    }

    async fn open(&self, ctx: &Context, config: &Value) -> Result<Value, ResourceError> {
        let id = config.get("vector_db_id").as_str().unwrap_or_default();
        let (ns, name) = workload::split_id(id)?;
        let secret_name = credentials_secret(name);
        let secret = ctx
            .kube()?
            .get(Kind::Secret, ns, &secret_name)
            .await?
            .ok_or_else(|| {
                ResourceError::NotFound(format!(
                    "paved_vector_db {id} (its Secret {ns}/{secret_name})"
                ))
            })?;
        let mut out = config.clone();
        for (attr, key) in FROM_SECRET {
            let v = workload::secret_value(&secret, key);
            let v = match (attr, v) {
                (_, None) => Value::Null,
                ("port", Some(p)) => p.parse::<i64>().map_or(Value::Null, Value::int),
                (_, Some(s)) => Value::string(s),
            };
            out.set_attr(attr, v);
        }
        if out.get("api_key").is_null() {
            return Err(ResourceError::NotFound(format!(
                "an api-key in Secret {ns}/{secret_name} of paved_vector_db {id}"
            )));
        }
        Ok(out)
    }
}
