//! A small HTTP origin for an HLS directory (hyper, HTTP/1.1).
//!
//! [`Origin::start`] serves the files under [`OriginConfig::root`] to players and to segswarm
//! viewers: `GET` and `HEAD`, single `Range` requests (`206` with `Content-Range`, `416` when the
//! range starts past the end; a syntactically invalid or multi-range header is ignored and the
//! whole file sent, as RFC 9110 allows), CORS for players on other sites
//! (`Access-Control-Allow-Origin: *`, the range headers exposed, `OPTIONS` preflights answered),
//! content types for HLS (`.m3u8`, `.ts`, `.m4s`, `.mp4`, `.json`, ...). Playlists and
//! `segments-sha256.json` are sent with `Cache-Control: no-cache` since live writers rewrite them.
//!
//! Paths are percent-decoded, then refused when any component is `..`, `.`, empty, or contains a
//! backslash or NUL; the resolved file must lie under the canonical root (a symbolic link leading
//! out of it is refused), and only regular files are served. Bodies are streamed from the file in
//! chunks of [`OriginConfig::chunk_bytes`]. With [`OriginConfig::served_files`] set, only the
//! files it lists are served.
//!
//! Slow or hostile clients: every connection is accepted, then refused with `503` and closed when
//! [`OriginConfig::max_connections`] are open or its address already has
//! [`OriginConfig::max_connections_per_ip`]; a connection whose writes make no progress for
//! [`OriginConfig::write_timeout`] (a client that asks and never reads) is closed. Each case is
//! counted in [`OriginStats`].

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::future::Future;
use std::io::SeekFrom;
use std::net::{IpAddr, SocketAddr};
use std::path::{Component, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncSeekExt, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Settings of an [`Origin`].
#[derive(Debug, Clone)]
pub struct OriginConfig {
    /// Directory served at `/`.
    pub root: PathBuf,
    /// Address to listen on. Default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// Most connections served at once; further connections are accepted, answered `503` and
    /// closed. Default 1024.
    pub max_connections: usize,
    /// Most connections served at once for one client IP address; further ones from it are
    /// answered `503` and closed. Default 64.
    pub max_connections_per_ip: usize,
    /// A connection whose response makes no write progress for this long (the client does not
    /// read) is closed. Default 30 s.
    pub write_timeout: Duration,
    /// Time allowed for a request head to arrive. Default 10 s.
    pub header_read_timeout: Duration,
    /// Body chunk size read from a file per frame, bytes. Default 64 KiB.
    pub chunk_bytes: usize,
    /// Time given to open connections to finish after [`Origin::shutdown`]. Default 5 s.
    pub shutdown_grace: Duration,
    /// `Access-Control-Allow-Origin` value. Default `*`.
    pub allow_origin: String,
    /// When set, the only files served: `/`-separated paths relative to the root; any other
    /// path is answered `404`. The owner changes the set while serving (the mirror lists its
    /// verified, recorded files). Default `None`: every file under the root.
    pub served_files: Option<ServedFiles>,
    /// Count body bytes by the first component of the path too (the mirror: by video), in
    /// [`Origin::body_bytes_by_dir`]. Only with [`OriginConfig::served_files`] set, so that the
    /// directories counted are the owner's. Default false.
    pub count_bytes_by_dir: bool,
}

/// The set of files an [`Origin`] serves, shared with its owner.
pub type ServedFiles = Arc<std::sync::RwLock<std::collections::BTreeSet<String>>>;

impl OriginConfig {
    /// Defaults for serving `root` on `listen`.
    pub fn new(root: impl Into<PathBuf>, listen: SocketAddr) -> Self {
        Self {
            root: root.into(),
            listen,
            max_connections: 1024,
            max_connections_per_ip: 64,
            write_timeout: Duration::from_secs(30),
            header_read_timeout: Duration::from_secs(10),
            chunk_bytes: 64 * 1024,
            shutdown_grace: Duration::from_secs(5),
            allow_origin: "*".into(),
            served_files: None,
            count_bytes_by_dir: false,
        }
    }
}

/// Errors starting an [`Origin`].
#[derive(Debug, thiserror::Error)]
pub enum OriginError {
    /// The root directory does not exist or cannot be resolved.
    #[error("origin root {path}: {source}")]
    Root {
        /// The configured root.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The listening socket could not be opened.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// Counters of an [`Origin`], shared with its tasks.
#[derive(Debug, Default)]
pub struct OriginStats {
    /// Requests answered.
    pub requests: AtomicU64,
    /// Body bytes sent (file bytes only).
    pub body_bytes: AtomicU64,
    /// `200` and `206` answers to `GET`.
    pub ok: AtomicU64,
    /// `404`/`403` answers.
    pub not_found: AtomicU64,
    /// `416` answers.
    pub range_not_satisfiable: AtomicU64,
    /// Connections refused because [`OriginConfig::max_connections`] were open.
    pub refused_busy: AtomicU64,
    /// Connections refused because their address had [`OriginConfig::max_connections_per_ip`].
    pub refused_per_ip: AtomicU64,
    /// Connections closed after [`OriginConfig::write_timeout`] without write progress.
    pub write_timeouts: AtomicU64,
    /// Connections being served now (a gauge).
    pub connections_open: AtomicU64,
    /// Body bytes by the first path component, with [`OriginConfig::count_bytes_by_dir`].
    pub body_bytes_by_dir: Mutex<BTreeMap<String, Arc<AtomicU64>>>,
    /// `GET` responses with a body (`200` and `206`) by the first path component, with
    /// [`OriginConfig::count_bytes_by_dir`].
    pub requests_by_dir: Mutex<BTreeMap<String, u64>>,
}

/// A point-in-time copy of [`OriginStats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OriginStatsSnapshot {
    /// Requests answered.
    pub requests: u64,
    /// Body bytes sent.
    pub body_bytes: u64,
    /// `200`/`206` answers to `GET`.
    pub ok: u64,
    /// `404`/`403` answers.
    pub not_found: u64,
    /// `416` answers.
    pub range_not_satisfiable: u64,
    /// Connections refused: all slots busy.
    pub refused_busy: u64,
    /// Connections refused: too many from one address.
    pub refused_per_ip: u64,
    /// Connections closed for lack of write progress.
    pub write_timeouts: u64,
    /// Connections being served now.
    pub connections_open: u64,
}

impl OriginStats {
    /// A consistent-enough copy of the counters.
    pub fn snapshot(&self) -> OriginStatsSnapshot {
        OriginStatsSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            body_bytes: self.body_bytes.load(Ordering::Relaxed),
            ok: self.ok.load(Ordering::Relaxed),
            not_found: self.not_found.load(Ordering::Relaxed),
            range_not_satisfiable: self.range_not_satisfiable.load(Ordering::Relaxed),
            refused_busy: self.refused_busy.load(Ordering::Relaxed),
            refused_per_ip: self.refused_per_ip.load(Ordering::Relaxed),
            write_timeouts: self.write_timeouts.load(Ordering::Relaxed),
            connections_open: self.connections_open.load(Ordering::Relaxed),
        }
    }
}

/// A running HTTP origin. Dropping it without [`Origin::shutdown`] stops accepting at once.
#[derive(Debug)]
pub struct Origin {
    addr: SocketAddr,
    stats: Arc<OriginStats>,
    shutdown: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

struct Shared {
    root: PathBuf,
    config: OriginConfig,
    stats: Arc<OriginStats>,
}

type Body = BoxBody<Bytes, std::io::Error>;

impl Origin {
    /// Binds [`OriginConfig::listen`] and starts serving. Must run inside a tokio runtime.
    pub async fn start(config: OriginConfig) -> Result<Self, OriginError> {
        let root = tokio::fs::canonicalize(&config.root)
            .await
            .map_err(|source| OriginError::Root {
                path: config.root.clone(),
                source,
            })?;
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| OriginError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let addr = listener
            .local_addr()
            .map_err(|source| OriginError::Listen {
                addr: config.listen,
                source,
            })?;
        let stats = Arc::new(OriginStats::default());
        let (shutdown, rx) = watch::channel(false);
        let shared = Arc::new(Shared {
            root,
            config,
            stats: stats.clone(),
        });
        let task = tokio::spawn(accept_loop(listener, shared, rx));
        tracing::info!(%addr, "HTTP origin listening");
        Ok(Self {
            addr,
            stats,
            shutdown,
            task: Some(task),
        })
    }

    /// The address it listens on (with the real port when port 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The base URL, `http://ADDR/`.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    /// The live counters.
    pub fn stats(&self) -> OriginStatsSnapshot {
        self.stats.snapshot()
    }

    /// Body bytes sent by the first component of the path (with
    /// [`OriginConfig::count_bytes_by_dir`]).
    pub fn body_bytes_by_dir(&self) -> BTreeMap<String, u64> {
        self.stats
            .body_bytes_by_dir
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .map(|(dir, n)| (dir.clone(), n.load(Ordering::Relaxed)))
            .collect()
    }

    /// `GET` responses with a body by the first component of the path (with
    /// [`OriginConfig::count_bytes_by_dir`]).
    pub fn requests_by_dir(&self) -> BTreeMap<String, u64> {
        self.stats
            .requests_by_dir
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Stops accepting, lets open connections finish their current response (up to
    /// [`OriginConfig::shutdown_grace`]) and returns.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Open connections per client address; a [`PerIpSlot`] gives its place back when dropped.
#[derive(Default)]
struct PerIp(Mutex<HashMap<IpAddr, usize>>);

struct PerIpSlot {
    map: Arc<PerIp>,
    ip: IpAddr,
}

impl PerIp {
    /// A place for one more connection from `ip`, if it has fewer than `max`.
    fn take(self: &Arc<Self>, ip: IpAddr, max: usize) -> Option<PerIpSlot> {
        let mut map = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(PerIpSlot {
            map: self.clone(),
            ip,
        })
    }
}

impl Drop for PerIpSlot {
    fn drop(&mut self) {
        let mut map = self
            .map
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// What an over-cap connection is told before it is closed.
const BUSY_RESPONSE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\
Retry-After: 1\r\nConnection: close\r\n\r\n";

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(shared.config.max_connections.max(1)));
    let per_ip = Arc::new(PerIp::default());
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = stop.changed() => break,
        };
        // Reap finished connection tasks as we go.
        while conns.try_join_next().is_some() {}
        match accepted {
            Ok((stream, peer)) => {
                // Accepted first, then refused if over a cap: waiting clients never fill the
                // kernel's accept queue and lock everyone out.
                let Ok(permit) = slots.clone().try_acquire_owned() else {
                    shared.stats.refused_busy.fetch_add(1, Ordering::Relaxed);
                    refuse(stream);
                    continue;
                };
                let max_ip = shared.config.max_connections_per_ip.max(1);
                let Some(ip_slot) = per_ip.take(peer.ip(), max_ip) else {
                    shared.stats.refused_per_ip.fetch_add(1, Ordering::Relaxed);
                    refuse(stream);
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let shared = shared.clone();
                let stop = stop.clone();
                shared
                    .stats
                    .connections_open
                    .fetch_add(1, Ordering::Relaxed);
                conns.spawn(async move {
                    serve_connection(shared.clone(), stream, stop).await;
                    shared
                        .stats
                        .connections_open
                        .fetch_sub(1, Ordering::Relaxed);
                    drop(ip_slot);
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!("origin accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    drop(listener);
    let grace = shared.config.shutdown_grace;
    let _ = tokio::time::timeout(grace, async { while conns.join_next().await.is_some() {} }).await;
    conns.abort_all();
}

/// How long a refused connection is kept to tell it `503`: the answer is written, then what the
/// client sent is read and dropped, so that closing does not reset the connection before the
/// client read the answer.
const REFUSE_LINGER: Duration = Duration::from_secs(1);

/// Answers `503` and closes, within [`REFUSE_LINGER`].
fn refuse(mut stream: tokio::net::TcpStream) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tokio::spawn(async move {
        let _ = tokio::time::timeout(REFUSE_LINGER, async {
            stream.write_all(BUSY_RESPONSE).await?;
            stream.shutdown().await?;
            let mut sink = [0u8; 1024];
            while stream.read(&mut sink).await? > 0 {}
            Ok::<_, std::io::Error>(())
        })
        .await;
    });
}

/// A stream whose writes fail with `TimedOut` once a write or flush has waited `timeout` without
/// progress.
struct WriteTimeout<S> {
    inner: S,
    timeout: Duration,
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
    timed_out: Option<Arc<OriginStats>>,
}

impl<S> WriteTimeout<S> {
    fn new(inner: S, timeout: Duration, stats: Arc<OriginStats>) -> Self {
        Self {
            inner,
            timeout,
            stalled: None,
            timed_out: Some(stats),
        }
    }

    /// After the inner write returned `poll`: arms the timer on `Pending`, fails once it fired.
    fn check<T>(
        &mut self,
        cx: &mut Context<'_>,
        poll: Poll<std::io::Result<T>>,
    ) -> Poll<std::io::Result<T>> {
        if poll.is_ready() {
            self.stalled = None;
            return poll;
        }
        let timeout = self.timeout;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if sleep.as_mut().poll(cx).is_ready() {
            if let Some(stats) = self.timed_out.take() {
                stats.write_timeouts.fetch_add(1, Ordering::Relaxed);
            }
            return Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no write progress",
            )));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.check(cx, poll)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_flush(cx);
        self.check(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let poll = Pin::new(&mut self.inner).poll_shutdown(cx);
        self.check(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.check(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

async fn serve_connection(
    shared: Arc<Shared>,
    stream: tokio::net::TcpStream,
    mut stop: watch::Receiver<bool>,
) {
    let stream = WriteTimeout::new(stream, shared.config.write_timeout, shared.stats.clone());
    let service = {
        let shared = shared.clone();
        service_fn(move |req: Request<Incoming>| {
            let shared = shared.clone();
            async move { Ok::<_, Infallible>(handle(&shared, req).await) }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(shared.config.header_read_timeout);
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    if *stop.borrow() {
        return;
    }
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(shared.config.shutdown_grace, conn).await;
        }
    }
}

/// The `Content-Type` of a file name, by extension.
pub fn content_type(path: &str) -> &'static str {
    let ext = path
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "m4s" => "video/iso.segment",
        "mp4" | "m4v" => "video/mp4",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "vtt" => "text/vtt",
        "json" => "application/json",
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript",
        "css" => "text/css",
        _ => "application/octet-stream",
    }
}

/// Percent-decodes a URL path; `None` for a malformed escape or a result that is not UTF-8.
pub(crate) fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let s = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(s, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Maps a request path to a relative file path under the root, refusing anything that could
/// leave it. `None` = refused.
pub fn safe_relative_path(url_path: &str) -> Option<PathBuf> {
    let decoded = percent_decode(url_path)?;
    let rel = decoded.strip_prefix('/')?;
    if rel.is_empty() {
        return None;
    }
    let mut out = PathBuf::new();
    for part in rel.split('/') {
        if part.is_empty()
            || part == "."
            || part == ".."
            || part.contains('\\')
            || part.contains('\0')
        {
            return None;
        }
        out.push(part);
    }
    // Belt and braces: only normal components.
    out.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then_some(out)
}

/// A parsed `Range` header against a file of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeRequest {
    /// No usable range: send the whole file.
    Full,
    /// Send bytes `start..=end`.
    Partial {
        /// First byte.
        start: u64,
        /// Last byte, inclusive.
        end: u64,
    },
    /// The range starts past the end of the file (`416`).
    Unsatisfiable,
}

/// Parses a `Range` header value for a file of `len` bytes (RFC 9110 §14.1.2, a single range;
/// anything else is ignored and the whole file sent).
pub fn parse_range(value: Option<&str>, len: u64) -> RangeRequest {
    let Some(spec) = value.and_then(|v| v.trim().strip_prefix("bytes=")) else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let (a, b) = (a.trim(), b.trim());
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if a.is_empty() {
        // Suffix range: the last N bytes.
        let Some(n) = digits(b).then(|| b.parse::<u64>().ok()).flatten() else {
            return RangeRequest::Full;
        };
        if n == 0 || len == 0 {
            return RangeRequest::Unsatisfiable;
        }
        return RangeRequest::Partial {
            start: len.saturating_sub(n),
            end: len - 1,
        };
    }
    let Some(start) = digits(a).then(|| a.parse::<u64>().ok()).flatten() else {
        return RangeRequest::Full;
    };
    let end = if b.is_empty() {
        None
    } else {
        match digits(b).then(|| b.parse::<u64>().ok()).flatten() {
            Some(e) if e >= start => Some(e),
            _ => return RangeRequest::Full,
        }
    };
    if start >= len {
        return RangeRequest::Unsatisfiable;
    }
    RangeRequest::Partial {
        start,
        end: end.map_or(len - 1, |e| e.min(len - 1)),
    }
}

fn empty() -> Body {
    Empty::new().map_err(|never| match never {}).boxed()
}

fn text(s: &'static str) -> Body {
    Full::new(Bytes::from_static(s.as_bytes()))
        .map_err(|never| match never {})
        .boxed()
}

fn cors(headers: &mut HeaderMap, allow_origin: &str) {
    if let Ok(v) = HeaderValue::from_str(allow_origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
    }
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Range, Content-Length, Accept-Ranges"),
    );
}

fn status_response(shared: &Shared, status: StatusCode, body: &'static str) -> Response<Body> {
    let mut res = Response::new(text(body));
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    cors(h, &shared.config.allow_origin);
    res
}

async fn handle(shared: &Shared, req: Request<Incoming>) -> Response<Body> {
    shared.stats.requests.fetch_add(1, Ordering::Relaxed);
    let method = req.method().clone();
    if method == Method::OPTIONS {
        let mut res = Response::new(empty());
        *res.status_mut() = StatusCode::NO_CONTENT;
        let h = res.headers_mut();
        cors(h, &shared.config.allow_origin);
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        let asked = req
            .headers()
            .get(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .cloned()
            .unwrap_or_else(|| HeaderValue::from_static("Range"));
        h.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, asked);
        h.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("86400"),
        );
        return res;
    }
    if method != Method::GET && method != Method::HEAD {
        let mut res = status_response(
            shared,
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed\n",
        );
        res.headers_mut().insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, OPTIONS"),
        );
        return res;
    }
    let url_path = req.uri().path().to_owned();
    let Some(rel) = safe_relative_path(&url_path) else {
        tracing::debug!(path = %url_path, "origin refused a path");
        shared.stats.not_found.fetch_add(1, Ordering::Relaxed);
        return status_response(shared, StatusCode::NOT_FOUND, "not found\n");
    };
    if let Some(served) = &shared.config.served_files {
        let key = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let listed = served
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(&key);
        if !listed {
            shared.stats.not_found.fetch_add(1, Ordering::Relaxed);
            return status_response(shared, StatusCode::NOT_FOUND, "not found\n");
        }
    }
    let full = shared.root.join(&rel);
    // Resolve links and make sure the file is still under the root.
    let resolved = match tokio::fs::canonicalize(&full).await {
        Ok(p) if p.starts_with(&shared.root) => p,
        _ => {
            shared.stats.not_found.fetch_add(1, Ordering::Relaxed);
            return status_response(shared, StatusCode::NOT_FOUND, "not found\n");
        }
    };
    let file = match tokio::fs::File::open(&resolved).await {
        Ok(f) => f,
        Err(_) => {
            shared.stats.not_found.fetch_add(1, Ordering::Relaxed);
            return status_response(shared, StatusCode::NOT_FOUND, "not found\n");
        }
    };
    let meta = match file.metadata().await {
        Ok(m) if m.is_file() => m,
        _ => {
            shared.stats.not_found.fetch_add(1, Ordering::Relaxed);
            return status_response(shared, StatusCode::NOT_FOUND, "not found\n");
        }
    };
    let len = meta.len();
    let range = parse_range(
        req.headers()
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok()),
        len,
    );
    let name = rel.to_string_lossy().into_owned();
    let (status, start, count) = match range {
        RangeRequest::Full => (StatusCode::OK, 0, len),
        RangeRequest::Partial { start, end } => {
            (StatusCode::PARTIAL_CONTENT, start, end - start + 1)
        }
        RangeRequest::Unsatisfiable => {
            shared
                .stats
                .range_not_satisfiable
                .fetch_add(1, Ordering::Relaxed);
            let mut res = status_response(
                shared,
                StatusCode::RANGE_NOT_SATISFIABLE,
                "range not satisfiable\n",
            );
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                res.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            return res;
        }
    };
    let body = if method == Method::HEAD || count == 0 {
        empty()
    } else {
        let mut file = file;
        if start > 0 {
            if let Err(e) = file.seek(SeekFrom::Start(start)).await {
                tracing::warn!(path = %name, "origin seek failed: {e}");
                return status_response(shared, StatusCode::INTERNAL_SERVER_ERROR, "read error\n");
            }
        }
        shared.stats.ok.fetch_add(1, Ordering::Relaxed);
        let by_dir = (shared.config.count_bytes_by_dir && shared.config.served_files.is_some())
            .then(|| name.split(['/', std::path::MAIN_SEPARATOR]).next())
            .flatten()
            .map(|dir| {
                *shared
                    .stats
                    .requests_by_dir
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(dir.to_owned())
                    .or_default() += 1;
                shared
                    .stats
                    .body_bytes_by_dir
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .entry(dir.to_owned())
                    .or_default()
                    .clone()
            });
        FileBody {
            file,
            remaining: count,
            buf: vec![0; shared.config.chunk_bytes.max(1)],
            stats: shared.stats.clone(),
            by_dir,
        }
        .boxed()
    };
    let mut res = Response::new(body);
    *res.status_mut() = status;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&name)),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        let end = start + count - 1;
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{end}/{len}")) {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    let lower = name.to_ascii_lowercase();
    if lower.ends_with(".m3u8") || lower.ends_with(".json") {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    }
    cors(h, &shared.config.allow_origin);
    res
}

/// A response body streamed from an open file: `remaining` bytes from its current position.
struct FileBody {
    file: tokio::fs::File,
    remaining: u64,
    buf: Vec<u8>,
    stats: Arc<OriginStats>,
    /// The counter of the file's directory, with [`OriginConfig::count_bytes_by_dir`].
    by_dir: Option<Arc<AtomicU64>>,
}

impl hyper::body::Body for FileBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        let this = self.get_mut();
        if this.remaining == 0 {
            return Poll::Ready(None);
        }
        let want = usize::try_from(this.remaining)
            .unwrap_or(usize::MAX)
            .min(this.buf.len());
        let mut rb = ReadBuf::new(&mut this.buf[..want]);
        match Pin::new(&mut this.file).poll_read(cx, &mut rb) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Err(e)) => Poll::Ready(Some(Err(e))),
            Poll::Ready(Ok(())) => {
                let n = rb.filled().len();
                if n == 0 {
                    // The file shrank under us: end the body short (the client sees a cut body).
                    return Poll::Ready(Some(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "file shorter than announced",
                    ))));
                }
                this.remaining -= n as u64;
                this.stats.body_bytes.fetch_add(n as u64, Ordering::Relaxed);
                if let Some(c) = &this.by_dir {
                    c.fetch_add(n as u64, Ordering::Relaxed);
                }
                Poll::Ready(Some(Ok(Frame::data(Bytes::copy_from_slice(
                    &this.buf[..n],
                )))))
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        hyper::body::SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(parse_range(None, 10), RangeRequest::Full);
        assert_eq!(
            parse_range(Some("bytes=2-5"), 10),
            RangeRequest::Partial { start: 2, end: 5 }
        );
        assert_eq!(
            parse_range(Some("bytes=2-"), 10),
            RangeRequest::Partial { start: 2, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=8-100"), 10),
            RangeRequest::Partial { start: 8, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-3"), 10),
            RangeRequest::Partial { start: 7, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=-30"), 10),
            RangeRequest::Partial { start: 0, end: 9 }
        );
        assert_eq!(
            parse_range(Some("bytes=10-"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(
            parse_range(Some("bytes=-0"), 10),
            RangeRequest::Unsatisfiable
        );
        assert_eq!(parse_range(Some("bytes=5-2"), 10), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=0-1,3-4"), 10), RangeRequest::Full);
        assert_eq!(parse_range(Some("items=0-1"), 10), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=a-b"), 10), RangeRequest::Full);
        assert_eq!(parse_range(Some("bytes=+1-2"), 10), RangeRequest::Full);
    }

    #[test]
    fn paths() {
        assert_eq!(
            safe_relative_path("/a/b.ts"),
            Some(PathBuf::from("a").join("b.ts"))
        );
        assert_eq!(
            safe_relative_path("/seg%20one.ts"),
            Some(PathBuf::from("seg one.ts"))
        );
        for bad in [
            "/",
            "/../etc/passwd",
            "/a/../../b",
            "/%2e%2e/secret",
            "/a/%2E%2E/%2E%2E/b",
            "/a//b",
            "/./a",
            "/a\\..\\b",
            "/a%5c..%5cb",
            "/a%00.ts",
            "/bad%zz",
            "/bad%c3",
            "relative",
        ] {
            assert_eq!(safe_relative_path(bad), None, "{bad}");
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(
            content_type("x/index.m3u8"),
            "application/vnd.apple.mpegurl"
        );
        assert_eq!(content_type("seg001.TS"), "video/mp2t");
        assert_eq!(content_type("a.m4s"), "video/iso.segment");
        assert_eq!(content_type("init.mp4"), "video/mp4");
        assert_eq!(content_type("segments-sha256.json"), "application/json");
        assert_eq!(content_type("noext"), "application/octet-stream");
    }
}
