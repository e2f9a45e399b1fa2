//! The mirror's admin listener: `GET /metrics` (Prometheus text) and `GET /stats.json`.
//!
//! It is a listener of its own, on loopback by default
//! ([`MirrorConfig::admin_listen`](super::MirrorConfig::admin_listen)), rather than paths of the
//! video listener: the video listener is meant to be reachable by every player, while the
//! figures tell what is mirrored and how much it is watched, which is the operator's business
//! (and the manual entries' admin endpoint will sit here, not reachable from other hosts by
//! default). Small answers from memory, a bounded number of connections, a deadline on each.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::metrics::MirrorMetrics;

/// Limits of the admin listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Connections served at once; further ones are closed at once. Default 16.
    pub max_connections: usize,
    /// Time a connection may stay open (its requests read and answered). Default 10 s.
    pub connection_timeout: Duration,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connection_timeout: Duration::from_secs(10),
        }
    }
}

/// The running admin listener; stops when dropped.
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl AdminServer {
    /// Listens on `addr` and serves `metrics`. Must run inside a tokio runtime.
    pub async fn start(
        addr: SocketAddr,
        metrics: Arc<MirrorMetrics>,
        settings: AdminSettings,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    continue;
                };
                let metrics = metrics.clone();
                let timeout = settings.connection_timeout;
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let metrics = metrics.clone();
                        async move { Ok::<_, Infallible>(answer(&metrics, &req)) }
                    });
                    let mut builder = http1::Builder::new();
                    builder
                        .timer(TokioTimer::new())
                        .header_read_timeout(timeout);
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    let _ = tokio::time::timeout(timeout, conn).await;
                    drop(permit);
                });
            }
        });
        tracing::info!(%addr, "mirror admin listener (/metrics, /stats.json)");
        Ok(Self { addr, task })
    }

    /// The address listened on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

impl Drop for AdminServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn answer(metrics: &MirrorMetrics, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    let (status, content_type, body) = match (req.method(), req.uri().path()) {
        (&Method::GET, "/metrics") => (
            StatusCode::OK,
            "text/plain; version=0.0.4",
            metrics.prometheus_text(),
        ),
        (&Method::GET, "/stats.json") => (
            StatusCode::OK,
            "application/json",
            metrics.stats_json().to_string(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "not found: GET /metrics or /stats.json\n".to_owned(),
        ),
    };
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}
