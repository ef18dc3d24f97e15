//! Every ephemeral resource the provider serves. Adding one = one file plus one line in `all`.

pub mod vector_db_credentials;

use crate::ephemeral::EphemeralResource;
use std::sync::Arc;

pub fn all() -> Vec<Arc<dyn EphemeralResource>> {
    vec![Arc::new(vector_db_credentials::VectorDbCredentials)]
}
