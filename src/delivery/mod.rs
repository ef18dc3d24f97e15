//! At-least-once delivery of JSON records to an HTTP endpoint (a SIEM collector for the audit
//! trail, an OpenLineage backend for lineage): every record is first queued in a [`Spool`] on
//! disk, then shipped in the background in batches, retried with exponential backoff while
//! the endpoint is down or refuses. A record leaves the spool only after a 2xx answer, so a
//! crash, a restart or an outage delays delivery but loses nothing; the price is that a
//! record may arrive twice (receivers deduplicate by request id / run id and event type).

pub(crate) mod spool;

pub use spool::{Batch, Spool};

use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::Notify;

/// How records are put into requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// Up to [`BATCH`] records per POST as JSON Lines (`application/x-ndjson`): what log
    /// collectors (Splunk HEC raw, Elastic, Vector, Fluent Bit) take.
    JsonLines,
    /// One record per POST as `application/json`: the OpenLineage HTTP transport.
    OnePerRequest,
}

pub const BATCH: usize = 100;
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// How often a quiet shipper looks at its spool anyway (records another process queued).
const IDLE: Duration = Duration::from_secs(15);

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("cannot read the spool {path}: {source}")]
    Spool {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{url} did not answer: {detail}")]
    Transport { url: String, detail: String },
    #[error("{url} answered HTTP {status}: {body}")]
    Refused {
        url: String,
        status: u16,
        body: String,
    },
    #[error("invalid endpoint {url:?}: {detail}")]
    Endpoint { url: String, detail: String },
}

pub type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    http_body_util::Full<bytes::Bytes>,
>;

/// One endpoint and the spool in front of it.
pub struct HttpSink {
    spool: Spool,
    url: String,
    headers: Vec<(String, String)>,
    framing: Framing,
    http: HttpClient,
    wake: Notify,
    started: std::sync::atomic::AtomicBool,
}

impl std::fmt::Debug for HttpSink {
    // Header values are credentials (a collector token): never printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpSink")
            .field("url", &self.url)
            .field("spool", &self.spool.path())
            .field("framing", &self.framing)
            .finish_non_exhaustive()
    }
}

fn registry() -> &'static Mutex<Vec<Weak<HttpSink>>> {
    static SINKS: OnceLock<Mutex<Vec<Weak<HttpSink>>>> = OnceLock::new();
    SINKS.get_or_init(|| Mutex::new(vec![]))
}

/// The HTTP(S) client paved's REST calls share (Compute Engine, collectors, lineage):
/// native roots, plain http allowed for loopback endpoints.
pub fn https_client() -> HttpClient {
    let https = match hyper_rustls::HttpsConnectorBuilder::new().with_native_roots() {
        Ok(b) => b.https_or_http().enable_http1().build(),
        // No system roots (a bare container): plain http still works.
        Err(_) => hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(
                rustls::ClientConfig::builder()
                    .with_root_certificates(rustls::RootCertStore::empty())
                    .with_no_client_auth(),
            )
            .https_or_http()
            .enable_http1()
            .build(),
    };
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(https)
}

/// Checks an endpoint URL the way the sink will use it.
pub fn check_url(url: &str) -> Result<(), String> {
    let u: http::Uri = url
        .parse()
        .map_err(|e: http::uri::InvalidUri| e.to_string())?;
    match (u.scheme_str(), u.host()) {
        (Some("http" | "https"), Some(h)) if !h.is_empty() => Ok(()),
        _ => Err("expected http://HOST[:PORT]/PATH or https://…".into()),
    }
}

impl HttpSink {
    pub fn new(
        url: &str,
        spool: impl Into<std::path::PathBuf>,
        headers: Vec<(String, String)>,
        framing: Framing,
    ) -> Result<Arc<HttpSink>, DeliveryError> {
        check_url(url).map_err(|detail| DeliveryError::Endpoint {
            url: url.into(),
            detail,
        })?;
        let sink = Arc::new(HttpSink {
            spool: Spool::new(spool),
            url: url.into(),
            headers,
            framing,
            http: https_client(),
            wake: Notify::new(),
            started: false.into(),
        });
        let mut r = registry().lock().unwrap_or_else(|e| e.into_inner());
        r.retain(|w| w.strong_count() > 0);
        r.push(Arc::downgrade(&sink));
        Ok(sink)
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn spool(&self) -> &Spool {
        &self.spool
    }

    /// Queues one record on disk and wakes the shipper. An error means it is not queued.
    pub fn enqueue(self: &Arc<Self>, line: &str) -> std::io::Result<()> {
        self.spool.append(line)?;
        self.start();
        self.wake.notify_one();
        Ok(())
    }

    /// Starts the background shipper once, when called inside a Tokio runtime.
    pub fn start(self: &Arc<Self>) {
        use std::sync::atomic::Ordering;
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.started.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = Arc::downgrade(self);
        rt.spawn(async move {
            let mut backoff = Duration::from_secs(1);
            loop {
                let Some(sink) = me.upgrade() else { return };
                let pause = match sink.ship_all().await {
                    Ok(_) => {
                        backoff = Duration::from_secs(1);
                        None
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, retry_in = ?backoff, "delivery failed; records stay spooled");
                        let p = backoff;
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        Some(p)
                    }
                };
                let wait = pause.unwrap_or(IDLE);
                let woken = async {
                    if pause.is_none() {
                        sink.wake.notified().await
                    } else {
                        std::future::pending().await
                    }
                };
                tokio::select! {
                    _ = woken => {}
                    _ = tokio::time::sleep(wait) => {}
                }
            }
        });
    }

    /// Ships everything queued, in order; returns how many records went out. Stops at the
    /// first failure, leaving the rest (and the failed batch) queued.
    pub async fn ship_all(&self) -> Result<usize, DeliveryError> {
        let spool_err = |source| DeliveryError::Spool {
            path: self.spool.path().display().to_string(),
            source,
        };
        let Some(_ship) = self.spool.try_ship().map_err(spool_err)? else {
            // Another process ships this spool.
            return Ok(0);
        };
        let per = match self.framing {
            Framing::JsonLines => BATCH,
            Framing::OnePerRequest => 1,
        };
        let mut sent = 0;
        loop {
            let batch = self.spool.peek(per).map_err(spool_err)?;
            if batch.lines.is_empty() {
                if batch.end > 0 {
                    self.spool.ack(batch.end).map_err(spool_err)?;
                }
                return Ok(sent);
            }
            self.post(&batch.lines).await?;
            sent += batch.lines.len();
            self.spool.ack(batch.end).map_err(spool_err)?;
        }
    }

    async fn post(&self, lines: &[String]) -> Result<(), DeliveryError> {
        use http_body_util::BodyExt;
        let (body, kind) = match self.framing {
            Framing::JsonLines => {
                let mut b = lines.join("\n");
                b.push('\n');
                (b, "application/x-ndjson")
            }
            Framing::OnePerRequest => (lines.concat(), "application/json"),
        };
        let mut req = hyper::Request::builder()
            .method(hyper::Method::POST)
            .uri(&self.url)
            .header("content-type", kind)
            .header("user-agent", concat!("paved/", env!("CARGO_PKG_VERSION")));
        for (k, v) in &self.headers {
            req = req.header(k, v);
        }
        let transport = |detail: String| DeliveryError::Transport {
            url: self.url.clone(),
            detail,
        };
        let req = req
            .body(http_body_util::Full::new(bytes::Bytes::from(body)))
            .map_err(|e| transport(e.to_string()))?;
        let resp = tokio::time::timeout(Duration::from_secs(10), self.http.request(req))
            .await
            .map_err(|_| transport("no answer within 10s".into()))?
            .map_err(|e| transport(crate::error::chain(&e)))?;
        let status = resp.status();
        let body = resp
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        Err(DeliveryError::Refused {
            url: self.url.clone(),
            status: status.as_u16(),
            body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
        })
    }
}

/// Ships what every live sink of this process has queued, for at most `within` (a Terraform
/// provider is killed 2 s after Shutdown). What is left stays spooled for the next process.
pub async fn flush_all(within: Duration) {
    let sinks: Vec<Arc<HttpSink>> = registry()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    if sinks.is_empty() {
        return;
    }
    let all = futures::future::join_all(sinks.iter().map(|s| s.ship_all()));
    match tokio::time::timeout(within, all).await {
        Ok(results) => {
            for (s, r) in sinks.iter().zip(results) {
                if let Err(e) = r {
                    tracing::warn!(url = s.url(), error = %e, "records stay spooled for the next run");
                }
            }
        }
        Err(_) => tracing::warn!("delivery did not finish before exit; records stay spooled"),
    }
}

/// `path` with `suffix` appended (`audit.jsonl` → `audit.jsonl.spool`).
pub fn beside(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    p.into()
}

/// Reads `{"Header": "value", …}` (PAVED_AUDIT_HEADERS, PAVED_LINEAGE_HEADERS).
pub fn headers_from_json(text: &str) -> Result<Vec<(String, String)>, String> {
    let v: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(text).map_err(|e| format!("not a JSON object: {e}"))?;
    v.into_iter()
        .map(|(k, v)| match v {
            serde_json::Value::String(s) => Ok((k, s)),
            _ => Err(format!("header {k:?} must be a string")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// A one-connection-at-a-time HTTP/1.1 receiver answering `status`; returns the bodies.
    async fn receiver(status: u16) -> (String, tokio::sync::mpsc::UnboundedReceiver<String>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ingest", l.local_addr().unwrap());
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((mut c, _)) = l.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let mut buf = vec![];
                    let mut chunk = [0u8; 4096];
                    loop {
                        let n = c.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_string();
                        let Some((head, body)) = text.split_once("\r\n\r\n") else {
                            continue;
                        };
                        let len: usize = head
                            .lines()
                            .find_map(|l| {
                                l.to_ascii_lowercase()
                                    .strip_prefix("content-length:")
                                    .map(|v| v.trim().parse().unwrap())
                            })
                            .unwrap_or(0);
                        if body.len() < len {
                            continue;
                        }
                        let _ = tx.send(body[..len].to_string());
                        let resp = format!("HTTP/1.1 {status} X\r\ncontent-length: 0\r\n\r\n");
                        let _ = c.write_all(resp.as_bytes()).await;
                        buf.clear();
                    }
                });
            }
        });
        (url, rx)
    }

    #[tokio::test]
    async fn records_queued_while_the_endpoint_is_down_arrive_once_it_is_up() {
        let dir = spool::tests::tempdir();
        // Nothing listens on this port yet.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let down = format!("http://127.0.0.1:{port}/ingest");
        let sink = HttpSink::new(&down, dir.join("s"), vec![], Framing::JsonLines).unwrap();
        for i in 0..3 {
            sink.spool().append(&format!("{{\"n\":{i}}}")).unwrap();
        }
        assert!(matches!(
            sink.ship_all().await,
            Err(DeliveryError::Transport { .. })
        ));
        assert_eq!(sink.spool().backlog().unwrap(), 3);
        // The endpoint comes up elsewhere; a new process ships the same spool.
        let (url, mut got) = receiver(200).await;
        let later = HttpSink::new(&url, dir.join("s"), vec![], Framing::JsonLines).unwrap();
        assert_eq!(later.ship_all().await.unwrap(), 3);
        assert_eq!(
            got.recv().await.unwrap(),
            "{\"n\":0}\n{\"n\":1}\n{\"n\":2}\n"
        );
        assert_eq!(later.spool().backlog().unwrap(), 0);
    }

    #[tokio::test]
    async fn a_refusal_keeps_the_record_and_one_per_request_posts_each_alone() {
        let dir = spool::tests::tempdir();
        let (bad, _) = receiver(503).await;
        let sink = HttpSink::new(&bad, dir.join("s"), vec![], Framing::OnePerRequest).unwrap();
        sink.spool().append("{\"a\":1}").unwrap();
        sink.spool().append("{\"a\":2}").unwrap();
        let e = sink.ship_all().await.unwrap_err();
        assert!(e.to_string().contains("HTTP 503"), "{e}");
        assert_eq!(sink.spool().backlog().unwrap(), 2);
        let (good, mut got) = receiver(201).await;
        let sink = HttpSink::new(&good, dir.join("s"), vec![], Framing::OnePerRequest).unwrap();
        assert_eq!(sink.ship_all().await.unwrap(), 2);
        assert_eq!(got.recv().await.unwrap(), "{\"a\":1}");
        assert_eq!(got.recv().await.unwrap(), "{\"a\":2}");
    }

    #[test]
    fn endpoints_and_headers_are_checked() {
        assert!(check_url("http://127.0.0.1:5000/api/v1/lineage").is_ok());
        assert!(check_url("ftp://x/y").is_err());
        assert!(check_url("not a url").is_err());
        assert_eq!(
            headers_from_json(r#"{"Authorization":"Splunk t"}"#).unwrap(),
            [("Authorization".to_string(), "Splunk t".to_string())]
        );
        assert!(headers_from_json(r#"{"X":1}"#).is_err());
    }
}
