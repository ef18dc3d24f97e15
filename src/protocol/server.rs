//! Serving: bind within Terraform's port range, wrap connections in TLS when AutoMTLS is on,
//! register every gRPC service, print the handshake, and exit promptly on Shutdown.

use super::handshake::{self, Launch};
use super::tls::{self, ServerIdentity};
use super::{goplugin_pb as gp, pb, plugin_services, provider_service::ProviderService};
use crate::provider::Provider;
use std::io::Write;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context as TaskCx, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;
use tonic::transport::server::Connected;

/// Terraform sends whole states in one message; Go providers raised the 4 MiB default after
/// users hit it, and so does paved.
const MAX_MESSAGE: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Handshake(#[from] handshake::HandshakeError),
    #[error(transparent)]
    Tls(#[from] tls::TlsSetupError),
    #[error("could not listen on 127.0.0.1 in ports {0}..={1}: {2}")]
    Bind(u16, u16, std::io::Error),
    #[error("gRPC server failed: {0}")]
    Transport(#[from] tonic::transport::Error),
}

fn bind(min: u16, max: u16) -> Result<std::net::TcpListener, ServeError> {
    let span = (max - min) as u32 + 1;
    let start = rand::random::<u32>() % span;
    let mut last = None;
    for i in 0..span.min(200) {
        let port = min as u32 + (start + i) % span;
        match std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
            Ok(l) => return Ok(l),
            Err(e) => last = Some(e),
        }
    }
    Err(ServeError::Bind(
        min,
        max,
        last.unwrap_or_else(|| std::io::Error::other("no port tried")),
    ))
}

/// A TLS connection tonic can serve (tonic only implements `Connected` for its own TLS feature).
struct TlsConn(tokio_rustls::server::TlsStream<TcpStream>);

impl Connected for TlsConn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}
impl AsyncRead for TlsConn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut TaskCx<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}
impl AsyncWrite for TlsConn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut TaskCx<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut TaskCx<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

fn router(provider: Arc<Provider>, shutdown: Arc<Notify>) -> tonic::transport::server::Router {
    let (mut reporter, health) = tonic_health::server::health_reporter();
    // go-plugin asks for the status of the service named "plugin". set_service_status only
    // touches an in-memory map, so this completes without awaiting anything real.
    let set = reporter.set_service_status("plugin", tonic_health::ServingStatus::Serving);
    futures_ready(set);
    tonic::transport::Server::builder()
        .add_service(health)
        .add_service(gp::grpc_controller_server::GrpcControllerServer::new(
            plugin_services::Controller { shutdown },
        ))
        .add_service(gp::grpc_stdio_server::GrpcStdioServer::new(
            plugin_services::Stdio,
        ))
        .add_service(gp::grpc_broker_server::GrpcBrokerServer::new(
            plugin_services::Broker,
        ))
        .add_service(
            pb::provider_server::ProviderServer::new(ProviderService::new(provider))
                .max_decoding_message_size(MAX_MESSAGE)
                .max_encoding_message_size(MAX_MESSAGE),
        )
}

/// Drives a future that never waits to completion without an executor hop.
fn futures_ready<F: std::future::Future>(f: F) {
    let waker = std::task::Waker::noop();
    let mut cx = TaskCx::from_waker(waker);
    let mut f = std::pin::pin!(f);
    let _ = f.as_mut().poll(&mut cx);
}

/// A plugin whose handshake line is out: the socket is bound and the certificate made.
pub struct Announced {
    listener: std::net::TcpListener,
    tls: Option<(ServerIdentity, Vec<u8>)>,
}

/// Binds, makes the certificate and prints the handshake line, synchronously and before any
/// runtime or provider exists: Terraform waits on this line for every provider process it
/// starts, and its connection simply queues in the listen backlog until serving begins.
pub fn announce(launch: &Launch) -> Result<Announced, ServeError> {
    let listener = bind(launch.min_port, launch.max_port)?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServeError::Bind(launch.min_port, launch.max_port, e))?;
    let tls = match &launch.client_cert {
        Some(pem) => {
            let client_der = tls::client_cert_der(pem)?;
            let id = ServerIdentity::generate()?;
            print_line(&handshake::line(&addr, Some(&id.handshake_field())));
            Some((id, client_der))
        }
        None => {
            print_line(&handshake::line(&addr, None));
            None
        }
    };
    Ok(Announced { listener, tls })
}

/// Serves an announced plugin; returns when Terraform calls Shutdown.
pub async fn serve_plugin(provider: Arc<Provider>, announced: Announced) -> Result<(), ServeError> {
    announced
        .listener
        .set_nonblocking(true)
        .map_err(|e| ServeError::Bind(0, 0, e))?;
    let listener =
        TcpListener::from_std(announced.listener).map_err(|e| ServeError::Bind(0, 0, e))?;
    let shutdown = Arc::new(Notify::new());
    let stop = {
        let s = shutdown.clone();
        async move { s.notified().await }
    };
    match announced.tls {
        Some((id, client_der)) => {
            let cfg = tls::server_config(&id, client_der)?;
            let router = router(provider, shutdown.clone());
            let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
            let (tx, rx) = tokio::sync::mpsc::channel::<Result<TlsConn, std::io::Error>>(16);
            tokio::spawn(async move {
                while let Ok((tcp, peer)) = listener.accept().await {
                    let (acceptor, tx) = (acceptor.clone(), tx.clone());
                    // Handshakes run concurrently so one slow or hostile peer cannot stall others.
                    tokio::spawn(async move {
                        match acceptor.accept(tcp).await {
                            Ok(tls) => {
                                let _ = tx.send(Ok(TlsConn(tls))).await;
                            }
                            Err(e) => tracing::warn!(%peer, error = %e, "rejected TLS connection"),
                        }
                    });
                }
            });
            router
                .serve_with_incoming_shutdown(tokio_stream::wrappers::ReceiverStream::new(rx), stop)
                .await?;
        }
        None => {
            router(provider, shutdown.clone())
                .serve_with_incoming_shutdown(
                    tokio_stream::wrappers::TcpListenerStream::new(listener),
                    stop,
                )
                .await?;
        }
    }
    Ok(())
}

/// Debug mode: plaintext on a free port, prints TF_REATTACH_PROVIDERS for a harness or a human,
/// and serves until interrupted (Terraform does not manage the process in this mode).
pub async fn serve_debug(provider: Arc<Provider>) -> Result<(), ServeError> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .map_err(|e| ServeError::Bind(0, 0, e))?;
    let addr: SocketAddr = listener
        .local_addr()
        .map_err(|e| ServeError::Bind(0, 0, e))?;
    let json = handshake::reattach_json(&addr, std::process::id());
    print_line(&format!(
        "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n\n\tTF_REATTACH_PROVIDERS='{json}'\n\n"
    ));
    let shutdown = Arc::new(Notify::new());
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    router(provider, shutdown)
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            stop,
        )
        .await?;
    Ok(())
}

fn print_line(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(s.as_bytes());
    let _ = out.flush();
}
