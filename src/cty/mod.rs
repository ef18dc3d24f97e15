//! The cty value model and its two wire codecs (msgpack for DynamicValue, JSON for RawState and
//! for Kubernetes objects), shared by the Terraform and Crossplane front ends.

pub mod json;
pub mod msgpack;
mod types;
mod value;

pub use types::Type;
pub use value::{Number, Value};

/// Why a value could not be decoded. Carries the attribute path as text because decoding errors
/// surface as a single diagnostic about the whole request.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CodecError {
    #[error("unexpected end of input")]
    Eof,
    #[error("at {path}: {msg}")]
    Invalid { path: String, msg: String },
    #[error("nesting deeper than {0} levels")]
    TooDeep(usize),
}

/// Maximum nesting accepted from the wire: far above any schema's depth, far below a stack
/// overflow.
pub const MAX_DEPTH: usize = 64;
