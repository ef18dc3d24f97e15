//! Terraform plugin protocol plumbing: go-plugin handshake, AutoMTLS, the gRPC services, and the
//! translation between tfplugin6 messages and the core model.

pub mod convert;
pub mod handshake;
pub mod plugin_services;
pub mod provider_service;
pub mod server;
pub mod tls;

/// Generated tfplugin6 messages and service.
pub mod pb {
    tonic::include_proto!("tfplugin6");
}

/// Generated go-plugin side-service messages.
pub mod goplugin_pb {
    tonic::include_proto!("plugin");
}
