//! `--health-port`: `/healthz` and `/readyz` for the kubelet's probes, answered by a tiny HTTP/1
//! responder on the controller's own runtime (a web framework would add megabytes for two
//! fixed answers).
//!
//! - `/healthz` is 200 while the runtime schedules tasks: a wedged process stops answering and
//!   is restarted.
//! - `/readyz` is 200 once the API server has answered the controller (standby replicas
//!   waiting for the Lease are ready too, or a rolling update could never replace the
//!   leader).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Shared readiness: set once the controller reached the API server.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::Release);
    }
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// Binds `0.0.0.0:port` (before anything else starts, so a busy port fails the start).
pub async fn bind(port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(("0.0.0.0", port)).await
}

/// Serves probes until the process ends.
pub async fn serve(listener: TcpListener, ready: Readiness) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        };
        let ready = ready.clone();
        tokio::spawn(async move {
            // A client that never sends its request line must not hold a task forever.
            let _ = tokio::time::timeout(Duration::from_secs(5), answer(stream, &ready)).await;
        });
    }
}

/// The status line and body for a request line's path.
pub fn respond(path: &str, ready: bool) -> (&'static str, &'static str) {
    match path {
        "/healthz" | "/livez" => ("200 OK", "ok\n"),
        "/readyz" if ready => ("200 OK", "ok\n"),
        "/readyz" => (
            "503 Service Unavailable",
            "not ready: API server not reached yet\n",
        ),
        _ => ("404 Not Found", "not found\n"),
    }
}

async fn answer(mut stream: TcpStream, ready: &Readiness) -> std::io::Result<()> {
    let mut buf = [0u8; 2048];
    let mut n = 0;
    // Read until the end of the request line (headers are not needed).
    while !buf[..n].contains(&b'\n') && n < buf.len() {
        let m = stream.read(&mut buf[n..]).await?;
        if m == 0 {
            break;
        }
        n += m;
    }
    let line = String::from_utf8_lossy(&buf[..n]);
    let path = line
        .split_whitespace()
        .nth(1)
        .map(|p| p.split('?').next().unwrap_or(p))
        .unwrap_or("");
    let (status, body) = respond(path, ready.is_ready());
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(reply.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(respond("/healthz", false).0, "200 OK");
        assert_eq!(respond("/readyz", false).0, "503 Service Unavailable");
        assert_eq!(respond("/readyz", true).0, "200 OK");
        assert_eq!(respond("/metrics", true).0, "404 Not Found");
    }

    #[tokio::test]
    async fn serves_http() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        let ready = Readiness::default();
        tokio::spawn(serve(l, ready.clone()));
        let get = |path: &'static str| async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
                .await
                .unwrap();
            let mut out = String::new();
            s.read_to_string(&mut out).await.unwrap();
            out
        };
        assert!(get("/readyz").await.starts_with("HTTP/1.1 503"));
        ready.set_ready();
        assert!(get("/readyz").await.starts_with("HTTP/1.1 200"));
        assert!(get("/healthz?verbose").await.ends_with("ok\n"));
    }
}
