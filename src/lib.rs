//! paved: one Rust binary that serves AI/ML golden-path resources to Terraform and OpenTofu
//! (plugin protocol 6) and to Crossplane, over the same resource handlers.

pub mod audit;
pub mod budget;
pub mod cloud;
pub mod context;
pub mod converge;
pub mod crossplane;
pub mod cty;
pub mod data_source;
pub mod data_sources;
pub mod delivery;
pub mod diag;
pub mod ephemeral;
pub mod ephemeral_resources;
pub mod error;
pub mod function;
pub mod functions;
/// Harnesses of the cargo-fuzz targets in `fuzz/` (cargo-fuzz builds with `--cfg fuzzing`).
#[cfg(any(fuzzing, test))]
pub mod fuzz_logic;
pub mod ids;
pub mod lineage;
pub mod logging;
pub mod plan;
pub mod protocol;
pub mod provider;
pub mod resource;
pub mod resources;
pub mod schema;
pub mod team_costs;
