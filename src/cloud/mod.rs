//! Cloud clients behind traits. Resources call these traits, never an SDK directly, so both
//! front ends share them and tests can wrap the real clients (fault injection).

pub mod aws;
pub mod gce;
pub mod gcp_auth;
pub mod kube;
