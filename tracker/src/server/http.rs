//! One TCP (or TLS) connection served by hyper: the HTTP routes, and the WebSocket upgrade on
//! any path.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::forwarded::client_ip;
use super::write_timeout::WriteTimeout;
use super::wsframe::WsConn;
use super::{ws, ConnSlot, Shared};
use crate::metrics::MessageKind;
use crate::protocol::{http as proto, ErrorKind};

type Body = Full<Bytes>;

/// Time allowed for a request head to arrive.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves one connection until it closes, upgrades, or the server shuts down.
pub(super) async fn serve_connection<I>(
    shared: Arc<Shared>,
    io: I,
    remote: SocketAddr,
    slot: Option<Arc<ConnSlot>>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = {
        let shared = shared.clone();
        service_fn(move |req: Request<Incoming>| {
            let shared = shared.clone();
            let slot = slot.clone();
            async move { Ok::<_, Infallible>(handle::<I>(shared, slot, remote, req)) }
        })
    };
    let write_timeout = Duration::from_secs(shared.config.server.http_write_timeout_secs);
    let io = WriteTimeout::new(io, write_timeout);
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(shared.config.limits.max_http_request_bytes.max(8192));
    let conn = builder
        .serve_connection(TokioIo::new(io), service)
        .with_upgrades();
    tokio::pin!(conn);
    let mut shutdown = shared.shutdown.subscribe();
    if *shutdown.borrow() {
        return;
    }
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let grace = Duration::from_secs(shared.config.server.shutdown_grace_secs);
            let _ = tokio::time::timeout(grace, conn).await;
        }
    }
}

fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()));
    *res.status_mut() = status;
    res.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    res
}

fn bencoded(body: Vec<u8>) -> Response<Body> {
    response(StatusCode::OK, "text/plain", body)
}

fn is_websocket_upgrade(req: &Request<Incoming>) -> bool {
    let has_token = |name: header::HeaderName, token: &str| {
        req.headers().get_all(name).iter().any(|v| {
            v.to_str()
                .map(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
                .unwrap_or(false)
        })
    };
    has_token(header::UPGRADE, "websocket")
}

fn handle<I>(
    shared: Arc<Shared>,
    slot: Option<Arc<ConnSlot>>,
    remote: SocketAddr,
    req: Request<Incoming>,
) -> Response<Body>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let trust = shared.config.server.trust_forwarded_for;
    let client = client_ip(req.headers(), remote.ip(), trust);
    if is_websocket_upgrade(&req) {
        // Behind a proxy the WebSocket counts against its client's address for its whole life.
        let slot = slot.filter(|slot| {
            let admitted = !trust || slot.claim_ip(client);
            if !admitted {
                shared.metrics.error(ErrorKind::ConnectionLimit);
            }
            admitted
        });
        return upgrade::<I>(shared, slot, req);
    }
    if slot.is_none() {
        let mut res = response(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            ErrorKind::ConnectionLimit.reason(),
        );
        res.headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        return res;
    }
    let metrics_on = shared.config.metrics.enabled;
    match (req.method(), req.uri().path()) {
        (&Method::GET, "/announce" | "/tracker/announce") => {
            announce(&shared, client, req.uri().query().unwrap_or(""))
        }
        (&Method::GET, "/scrape" | "/tracker/scrape") => {
            scrape(&shared, client, req.uri().query().unwrap_or(""))
        }
        (&Method::GET, "/health") if metrics_on => response(StatusCode::OK, "text/plain", "ok"),
        (&Method::GET, "/metrics") if metrics_on => response(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            shared.metrics.render(&shared.roster),
        ),
        (&Method::GET, "/stats.json") if metrics_on => response(
            StatusCode::OK,
            "application/json",
            shared.metrics.stats_json(
                &shared.roster,
                shared.config.metrics.stats_top_swarms,
                Duration::from_secs(shared.config.metrics.stats_cache_secs),
                Instant::now(),
            ),
        ),
        _ => response(StatusCode::NOT_FOUND, "text/plain", "not found"),
    }
}

fn failure(shared: &Shared, kind: ErrorKind, reason: &str) -> Response<Body> {
    shared.metrics.error(kind);
    shared.metrics.message_out(MessageKind::Failure, 1);
    bencoded(proto::encode_failure(reason))
}

/// An HTTP announce from client address `client`.
fn announce(shared: &Shared, client: IpAddr, query: &str) -> Response<Body> {
    shared.metrics.message_in(MessageKind::Announce, 1);
    let now = Instant::now();
    let limits = &shared.config.limits;
    if !shared.http_rate.try_take(
        shared.limit_key(client),
        limits.max_http_announces_per_ip_per_sec,
        limits.http_announce_burst_per_ip,
        now,
    ) {
        let kind = ErrorKind::RateLimited;
        return failure(shared, kind, kind.reason());
    }
    let req = match proto::parse_announce(query) {
        Ok(req) => req,
        Err(e) => return failure(shared, e.kind, e.reason),
    };
    if !shared.access.allows_info_hash(&req.info_hash) {
        let kind = ErrorKind::DeniedInfoHash;
        return failure(shared, kind, kind.reason());
    }
    let protocol = &shared.config.protocol;
    let asked = req.numwant.unwrap_or(protocol.http_default_numwant);
    let numwant = asked.min(protocol.http_max_numwant);
    let warning = (asked > numwant).then(|| {
        format!(
            "numwant {asked} is above this tracker's limit: at most {numwant} peers are returned"
        )
    });
    let addr = SocketAddr::new(client, req.port);
    let outcome = shared.roster.http_announce(
        req.info_hash,
        req.peer_id,
        addr,
        req.event,
        req.seeder,
        numwant,
        now,
        &mut rand::rng(),
    );
    match outcome {
        Ok(out) => {
            shared.metrics.message_out(MessageKind::Announce, 1);
            bencoded(proto::encode_announce(
                out.complete,
                out.incomplete,
                protocol.announce_interval_secs,
                &out.peers,
                req.compact,
                req.no_peer_id,
                warning.as_deref(),
            ))
        }
        Err(kind) => failure(shared, kind, kind.reason()),
    }
}

/// An HTTP scrape from client address `client`.
fn scrape(shared: &Shared, client: IpAddr, query: &str) -> Response<Body> {
    shared.metrics.message_in(MessageKind::Scrape, 1);
    let limits = &shared.config.limits;
    if !shared.http_scrape_rate.try_take(
        shared.limit_key(client),
        limits.max_http_scrapes_per_ip_per_sec,
        limits.http_scrape_burst_per_ip,
        Instant::now(),
    ) {
        return failure(
            shared,
            ErrorKind::RateLimited,
            "rate limit exceeded: scrape less often",
        );
    }
    let ids = match proto::parse_scrape(query) {
        Ok(ids) => ids,
        Err(e) => return failure(shared, e.kind, e.reason),
    };
    let ids = match super::scrape_list(ids, limits.max_scrape_info_hashes) {
        Ok(ids) => ids,
        Err(kind) => return failure(shared, kind, kind.reason()),
    };
    let files = if ids.is_empty() {
        if !shared.config.protocol.allow_full_scrape {
            let kind = ErrorKind::FullScrapeDisabled;
            return failure(shared, kind, kind.reason());
        }
        shared.roster.scrape_all()
    } else {
        shared.roster.scrape(&ids)
    };
    shared.metrics.message_out(MessageKind::Scrape, 1);
    bencoded(proto::encode_scrape(&files))
}

/// Answers the WebSocket handshake and hands the upgraded connection to [`ws::run`]. Refused
/// connections (over a cap, Origin denied) are upgraded and closed with a reason, so browsers
/// can see why.
fn upgrade<I>(
    shared: Arc<Shared>,
    slot: Option<Arc<ConnSlot>>,
    mut req: Request<Incoming>,
) -> Response<Body>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let Some(key) = req.headers().get(header::SEC_WEBSOCKET_KEY).cloned() else {
        return response(
            StatusCode::BAD_REQUEST,
            "text/plain",
            "missing Sec-WebSocket-Key",
        );
    };
    if req
        .headers()
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() != b"13")
    {
        let mut res = response(
            StatusCode::UPGRADE_REQUIRED,
            "text/plain",
            "WebSocket version 13 only",
        );
        res.headers_mut().insert(
            header::SEC_WEBSOCKET_VERSION,
            HeaderValue::from_static("13"),
        );
        return res;
    }
    let origin = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok());
    let reject = if slot.is_none() {
        Some((ws::CLOSE_TRY_AGAIN, ErrorKind::ConnectionLimit.reason()))
    } else if !shared.access.allows_origin(origin) {
        shared.metrics.error(ErrorKind::OriginDenied);
        Some((ws::CLOSE_POLICY, ErrorKind::OriginDenied.reason()))
    } else {
        None
    };
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        let Ok(upgraded) = on_upgrade.await else {
            return;
        };
        let max_frame = shared.config.limits.max_frame_bytes;
        let max_message = shared.config.limits.max_message_bytes;
        match upgraded.downcast::<TokioIo<WriteTimeout<I>>>() {
            Ok(parts) => {
                let hyper::upgrade::Parts { io, read_buf, .. } = parts;
                // Copy what hyper read past the handshake (usually nothing) and let go of its
                // 8 KiB read buffer before the connection's long life starts. The WebSocket
                // keeps its own write deadlines.
                let leftover = read_buf.to_vec();
                drop(read_buf);
                let io = io.into_inner().into_inner();
                let conn = WsConn::new(io, leftover, max_frame, max_message);
                ws::run(shared, slot, conn, reject).await;
            }
            Err(upgraded) => {
                let conn = WsConn::new(TokioIo::new(upgraded), Vec::new(), max_frame, max_message);
                ws::run(shared, slot, conn, reject).await;
            }
        }
    });
    let mut res = Response::new(Full::new(Bytes::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = res.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(accept) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, accept);
    }
    res
}
