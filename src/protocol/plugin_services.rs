//! go-plugin's side services: GRPCController (shutdown), GRPCStdio and GRPCBroker. Terraform
//! opens the stdio and broker streams at connect and tolerates them staying idle; it calls
//! Shutdown when it is done with the process and kills it 2 s later, so Shutdown must end the
//! process at once.

use super::goplugin_pb as gp;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::Notify;
use tokio_stream::Stream;
use tonic::{Request, Response, Status, Streaming};

pub struct Controller {
    pub shutdown: Arc<Notify>,
}

#[tonic::async_trait]
impl gp::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _r: Request<gp::Empty>) -> Result<Response<gp::Empty>, Status> {
        tracing::debug!("shutdown requested by Terraform");
        // Graceful shutdown would wait for the idle stdio/broker streams Terraform holds open;
        // exit right after this reply is flushed instead.
        let stop = self.shutdown.clone();
        tokio::spawn(async move {
            // Terraform kills the process 2 s after this call: ship what the audit and lineage
            // spools hold for up to 1.5 s; the rest stays spooled for the next run.
            crate::delivery::flush_all(std::time::Duration::from_millis(1500)).await;
            stop.notify_one();
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            std::process::exit(0);
        });
        Ok(Response::new(gp::Empty {}))
    }
}

type Idle<T> = Pin<Box<dyn Stream<Item = Result<T, Status>> + Send + 'static>>;

/// Streams nothing: paved never writes to stdout/stderr through go-plugin (logs go to the real
/// stderr, which Terraform reads directly).
pub struct Stdio;

#[tonic::async_trait]
impl gp::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream = Idle<gp::StdioData>;
    async fn stream_stdio(
        &self,
        _r: Request<gp::Empty>,
    ) -> Result<Response<Self::StreamStdioStream>, Status> {
        Ok(Response::new(Box::pin(tokio_stream::pending())))
    }
}

/// Providers never dial back through the broker; the stream is drained and kept open.
pub struct Broker;

#[tonic::async_trait]
impl gp::grpc_broker_server::GrpcBroker for Broker {
    type StartStreamStream = Idle<gp::ConnInfo>;
    async fn start_stream(
        &self,
        r: Request<Streaming<gp::ConnInfo>>,
    ) -> Result<Response<Self::StartStreamStream>, Status> {
        let mut incoming = r.into_inner();
        tokio::spawn(async move { while let Ok(Some(_)) = incoming.message().await {} });
        Ok(Response::new(Box::pin(tokio_stream::pending())))
    }
}
