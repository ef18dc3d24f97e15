//! The Crossplane front end: serves every resource in [`crate::resources::all`] as a
//! cluster-scoped Crossplane managed resource in API group `paved.dev/v1alpha1`, reconciled by
//! kube-runtime controllers over the same handlers the Terraform front end drives.
//!
//! - [`names`]: Terraform type and attribute names → kinds and camelCase fields.
//! - [`crd`]: CRDs generated from the resource schemas (`crossplane generate-crds`).
//! - [`convert`]: `spec.forProvider` / `status.atProvider` ↔ cty values.
//! - [`desired`]: the plan, computed as `terraform plan` computes it.
//! - [`policy`], [`conditions`], [`backoff`]: pure managed-resource semantics.
//! - [`provider_config`]: `ProviderConfig` → [`crate::context::Context`], cached.
//! - [`reconciler`]: the generic managed reconciler (and its crash-safety protocol).
//! - [`leader`]: Lease-based leader election.
//! - [`rbac`], [`deploy`]: the RBAC and in-cluster manifests, generated from what the code uses.
//! - [`health`]: `/healthz` and `/readyz` for the kubelet.
//! - [`cli`]: the `crossplane` subcommand.

pub mod backoff;
pub mod cli;
pub mod conditions;
pub mod convert;
pub mod crd;
pub mod deploy;
pub mod desired;
#[cfg(test)]
pub mod fake_api;
pub mod health;
pub mod leader;
pub mod names;
pub mod policy;
pub mod provider_config;
pub mod rbac;
pub mod reconciler;
