//! The provider-function contract (Terraform >= 1.8, OpenTofu >= 1.7): pure computations a user
//! calls as `provider::paved::NAME(...)` from `locals` and outputs. Like data sources, a function
//! is a small trait plus a registration line in `functions::all`.
//!
//! Terraform calls functions on an *unconfigured* provider process and checks that plan-time and
//! apply-time results agree; OpenTofu calls them on a configured one. So a function must depend on
//! its arguments alone: no provider settings, no clouds, no clock.

use crate::cty::{Type, Value};

/// One positional parameter.
#[derive(Debug, Clone, PartialEq)]
pub struct Parameter {
    pub name: &'static str,
    pub ty: Type,
    pub description: &'static str,
}

impl Parameter {
    pub fn new(name: &'static str, ty: Type, description: &'static str) -> Parameter {
        Parameter {
            name,
            ty,
            description,
        }
    }
}

/// Why a call failed; `argument` is the index of the argument at fault, so the CLI points at it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{text}")]
pub struct FunctionError {
    pub argument: Option<usize>,
    pub text: String,
}

impl FunctionError {
    pub fn at(argument: usize, text: impl Into<String>) -> FunctionError {
        FunctionError {
            argument: Some(argument),
            text: text.into(),
        }
    }
}

pub trait Function: Send + Sync + 'static {
    /// The name after `provider::paved::`. Stable: configurations call it by this name.
    fn name(&self) -> &'static str;
    /// One line for `terraform providers schema` and the docs.
    fn summary(&self) -> &'static str;
    fn description(&self) -> &'static str;
    /// Parameters in call order. The CLI type-checks and converts arguments before the call and
    /// refuses null ones, so `call` sees wholly-known, non-null values of these types.
    fn parameters(&self) -> Vec<Parameter>;
    fn return_type(&self) -> Type;
    /// Computes the result. Deterministic: the same arguments always give the same value.
    fn call(&self, args: &[Value]) -> Result<Value, FunctionError>;
}
