//! The mirror's admin listener: `GET /metrics` (Prometheus text), `GET /stats.json`, and the
//! manual entries: `GET /mirrors` (what is mirrored, JSON), `POST /mirrors` (body: a PeerTube
//! watch URL) and `DELETE /mirrors?url=<watch URL>`, answered only to loopback peers.
//!
//! It is a listener of its own, on loopback by default
//! ([`MirrorConfig::admin_listen`](super::MirrorConfig::admin_listen)), rather than paths of the
//! video listener: the video listener is meant to be reachable by every player, while the
//! figures tell what is mirrored and how much it is watched, which is the operator's business
//! (and the manual entries' endpoint sits here, not reachable from other hosts by default).
//! Small answers, a bounded number of connections, a deadline on each, a bounded body. The
//! `/mirrors` requests are handed to the daemon's loop ([`AdminCommand`]), which answers them
//! between checks.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot, Semaphore};

use super::metrics::MirrorMetrics;
use crate::native::origin::percent_decode;

/// Limits of the admin listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSettings {
    /// Connections served at once; further ones are closed at once. Default 16.
    pub max_connections: usize,
    /// Time a connection may stay open (its requests read and answered). Default 10 s.
    pub connection_timeout: Duration,
    /// Largest request body (a `POST /mirrors` URL), bytes. Default 4096.
    pub max_body_bytes: usize,
    /// `/mirrors` requests waiting for the daemon's loop; further ones are answered 503.
    /// Default 16.
    pub max_pending_commands: usize,
    /// Time a `/mirrors` request waits for the daemon's loop (busy while a check fetches);
    /// then it is answered `202` and done when the check ends. Default 5 s.
    pub command_wait: Duration,
}

impl Default for AdminSettings {
    fn default() -> Self {
        Self {
            max_connections: 16,
            connection_timeout: Duration::from_secs(10),
            max_body_bytes: 4096,
            max_pending_commands: 16,
            command_wait: Duration::from_secs(5),
        }
    }
}

/// A `/mirrors` request, for the daemon's loop.
#[derive(Debug)]
pub enum AdminCommand {
    /// `GET /mirrors`.
    List,
    /// `POST /mirrors`: the watch URL.
    Add(String),
    /// `DELETE /mirrors?url=`: the watch URL.
    Remove(String),
}

/// The daemon's answer to an [`AdminCommand`]: the status and a JSON body.
pub type AdminReply = (StatusCode, serde_json::Value);

/// An [`AdminCommand`] with where to answer it.
pub type AdminRequest = (AdminCommand, oneshot::Sender<AdminReply>);

/// The running admin listener; stops when dropped.
#[derive(Debug)]
pub struct AdminServer {
    addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl AdminServer {
    /// Listens on `addr`, serves `metrics`, and hands `/mirrors` requests to `commands`.
    /// Must run inside a tokio runtime.
    pub async fn start(
        addr: SocketAddr,
        metrics: Arc<MirrorMetrics>,
        commands: mpsc::Sender<AdminRequest>,
        settings: AdminSettings,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let slots = Arc::new(Semaphore::new(settings.max_connections.max(1)));
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, peer)) = listener.accept().await else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    continue;
                };
                let metrics = metrics.clone();
                let commands = commands.clone();
                let timeout = settings.connection_timeout;
                let limits = (settings.max_body_bytes, settings.command_wait);
                let loopback = peer.ip().to_canonical().is_loopback();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let metrics = metrics.clone();
                        let commands = commands.clone();
                        async move {
                            let res = if req.uri().path() == "/mirrors" {
                                mirrors(req, loopback, limits, &commands).await
                            } else {
                                answer(&metrics, &req)
                            };
                            Ok::<_, Infallible>(res)
                        }
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
        tracing::info!(%addr, "mirror admin listener (/metrics, /stats.json, /mirrors)");
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
            "not found: GET /metrics, /stats.json or /mirrors\n".to_owned(),
        ),
    };
    respond(status, content_type, body)
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

fn json_error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "error": message }).to_string();
    respond(status, "application/json", body)
}

/// The `url` parameter of a query string, percent-decoded (`None` when missing or malformed).
fn url_param(query: Option<&str>) -> Option<String> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("url="))
        .and_then(|v| percent_decode(&v.replace('+', " ")))
}

/// `/mirrors`: parsed here, answered by the daemon's loop.
async fn mirrors(
    req: Request<Incoming>,
    loopback: bool,
    (max_body, wait): (usize, Duration),
    commands: &mpsc::Sender<AdminRequest>,
) -> Response<Full<Bytes>> {
    if !loopback {
        return json_error(
            StatusCode::FORBIDDEN,
            "/mirrors answers loopback peers only",
        );
    }
    let command = match req.method().clone() {
        Method::GET => AdminCommand::List,
        Method::DELETE => match url_param(req.uri().query()) {
            Some(u) => AdminCommand::Remove(u),
            None => return json_error(StatusCode::BAD_REQUEST, "DELETE /mirrors?url=<watch URL>"),
        },
        Method::POST => {
            let body = match Limited::new(req.into_body(), max_body).collect().await {
                Ok(b) => b.to_bytes(),
                Err(_) => {
                    let why = format!("body unreadable or over {max_body} bytes");
                    return json_error(StatusCode::PAYLOAD_TOO_LARGE, &why);
                }
            };
            match std::str::from_utf8(&body).map(str::trim) {
                Ok(u) if !u.is_empty() => AdminCommand::Add(u.to_owned()),
                _ => {
                    let why = "POST /mirrors with a watch URL (UTF-8) as the body";
                    return json_error(StatusCode::BAD_REQUEST, why);
                }
            }
        }
        _ => {
            return json_error(
                StatusCode::METHOD_NOT_ALLOWED,
                "GET, POST or DELETE /mirrors",
            )
        }
    };
    let (tx, rx) = oneshot::channel();
    if commands.try_send((command, tx)).is_err() {
        return json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "daemon busy or stopping; try again",
        );
    }
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok((status, body))) => respond(status, "application/json", body.to_string()),
        Ok(Err(_)) => json_error(StatusCode::SERVICE_UNAVAILABLE, "daemon stopping"),
        Err(_) => {
            let body = serde_json::json!({
                "queued": true,
                "note": "the daemon is in a check; the request is done when the check ends",
            });
            respond(StatusCode::ACCEPTED, "application/json", body.to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::native::mirror::admin_client::percent_encode;
    use proptest::prelude::*;

    #[test]
    fn url_param_decodes_and_refuses_malformed_escapes() {
        assert_eq!(
            url_param(Some("a=1&url=https%3A%2F%2Fh%2Fw%2Fx+y")).as_deref(),
            Some("https://h/w/x y")
        );
        assert_eq!(url_param(Some("url=%zz")), None);
        assert_eq!(url_param(Some("url=%e2%82")), None);
        assert_eq!(url_param(Some("other=1")), None);
        assert_eq!(url_param(None), None);
    }

    proptest! {
        #[test]
        fn what_the_client_encodes_the_listener_decodes(s in any::<String>()) {
            let query = format!("url={}", percent_encode(&s));
            prop_assert_eq!(url_param(Some(&query)), Some(s));
        }

        #[test]
        fn any_query_is_answered_without_panicking(q in any::<String>()) {
            let _ = url_param(Some(&q));
        }
    }
}
