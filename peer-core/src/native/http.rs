//! The HTTP segment fetcher (reqwest): origin and mirrors, Range resume, timeouts, streaming.
//!
//! An [`HttpFetcher`] holds the base URLs of a stream (the origin first, then mirrors). A fetch
//! ([`HttpFetcher::fetch`]) runs as its own task and streams [`FetchEvent`]s: the response, each
//! chunk with the bytes received so far, failovers, and the end. When a base fails (connection
//! error, bad status, timeout, no bytes for [`HttpSettings::stall_timeout`], a body cut short)
//! the fetch moves to the next base and resumes with a Range request from the first byte it does
//! not have yet, so nothing is downloaded twice; later fetches start at the base that worked.
//! Range answers are checked: `206` with a `Content-Range` starting at the asked byte (a `200`
//! that ignores the Range is accepted and the bytes already held are skipped). Dropping the
//! [`FetchHandle`] or calling [`FetchHandle::abort`] stops the download at once.

use std::ops::Range;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::http_range::{check_content_range, range_header};
use bytes::{Bytes, BytesMut};
use reqwest::header::{CONTENT_RANGE, RANGE};
use reqwest::{StatusCode, Url};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Settings of the HTTP fetcher.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpSettings {
    /// Longest TCP/TLS connect. Default 5 s.
    pub connect_timeout: Duration,
    /// Longest time for one request to one base, headers and body. Default 20 s.
    pub request_timeout: Duration,
    /// A response that delivers no byte for this long fails over. Default 3 s (as
    /// p2p-media-loader's `httpNotReceivingBytesTimeoutMs`).
    pub stall_timeout: Duration,
    /// Tries per base URL within one fetch. Default 1.
    pub attempts_per_base: u32,
    /// Largest segment accepted, bytes. Default 64 MiB.
    pub max_body_bytes: u64,
    /// Events queued per fetch before the download waits for the reader. Default 32.
    pub event_queue: usize,
    /// `User-Agent` header. Default `segswarm/<version>`.
    pub user_agent: String,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(20),
            stall_timeout: Duration::from_secs(3),
            attempts_per_base: 1,
            max_body_bytes: 64 * 1024 * 1024,
            event_queue: 32,
            user_agent: concat!("segswarm/", env!("CARGO_PKG_VERSION")).to_owned(),
        }
    }
}

/// Why a fetch (or one attempt of it) failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The fetcher has no base URL.
    #[error("no base URL configured")]
    NoBase,
    /// A base URL or segment path that does not make a URL.
    #[error("invalid URL {0:?}")]
    BadUrl(String),
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// The server answered with an error status.
    #[error("HTTP status {0}")]
    Status(u16),
    /// A Range answer whose `Content-Range` does not match the request.
    #[error("Content-Range {got:?} does not match the requested bytes {asked}")]
    BadContentRange {
        /// The header as received (empty when missing).
        got: String,
        /// The requested range.
        asked: String,
    },
    /// Connection or protocol error.
    #[error("request failed: {0}")]
    Request(String),
    /// The request took longer than [`HttpSettings::request_timeout`].
    #[error("request timed out after {0:?}")]
    Timeout(Duration),
    /// No byte arrived for [`HttpSettings::stall_timeout`].
    #[error("no data for {0:?}")]
    Stalled(Duration),
    /// The body ended before the announced length.
    #[error("body ended after {got} of {expected} bytes")]
    ShortBody {
        /// Bytes received.
        got: u64,
        /// Bytes announced.
        expected: u64,
    },
    /// The segment is larger than [`HttpSettings::max_body_bytes`].
    #[error("body larger than {0} bytes")]
    TooLarge(u64),
    /// Every attempt failed.
    #[error("all {attempts} attempts failed, last: {last}")]
    AllFailed {
        /// Attempts made.
        attempts: u32,
        /// The last attempt's error.
        last: Box<HttpError>,
    },
    /// The fetch was aborted.
    #[error("fetch aborted")]
    Aborted,
}

/// One segment to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    /// Path relative to each base URL (e.g. `video/seg-12.ts`), or an absolute URL (then no
    /// failover: the one URL is tried).
    pub path: String,
    /// The segment's byte range within the resource (HLS `#EXT-X-BYTERANGE`), end exclusive;
    /// `None` for the whole resource.
    pub byte_range: Option<Range<u64>>,
    /// Bytes of the segment already held (received from a peer): the fetch starts after them.
    pub resume_from: u64,
}

impl FetchRequest {
    /// The whole resource at `path`.
    pub fn new(path: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            byte_range: None,
            resume_from: 0,
        }
    }
}

/// What a fetch reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchEvent {
    /// A base answered.
    Response {
        /// Index of the base URL (0 = origin).
        base: usize,
        /// The URL requested.
        url: String,
        /// HTTP status.
        status: u16,
        /// The segment's full size when known.
        total: Option<u64>,
    },
    /// Bytes of the segment, in order, following the ones already reported (or `resume_from`).
    Chunk {
        /// The bytes.
        data: Bytes,
        /// Bytes of the segment received so far, `resume_from` included.
        received: u64,
        /// The segment's full size when known.
        total: Option<u64>,
    },
    /// A base failed; the fetch continues at another one from byte `resume_from`.
    Failover {
        /// The failed base.
        base: usize,
        /// Why.
        error: HttpError,
        /// The next base tried.
        next_base: usize,
        /// Segment byte the next request starts at.
        resume_from: u64,
    },
    /// The segment is complete.
    Done {
        /// The base that delivered the last bytes.
        base: usize,
        /// Bytes of the segment, `resume_from` included.
        total: u64,
    },
    /// The fetch gave up.
    Failed(HttpError),
}

/// A running fetch: read its events; dropping it aborts the download.
#[derive(Debug)]
pub struct FetchHandle {
    events: mpsc::Receiver<FetchEvent>,
    task: JoinHandle<()>,
}

impl FetchHandle {
    /// The next event; `None` after [`FetchEvent::Done`] or [`FetchEvent::Failed`] (or abort).
    pub async fn next(&mut self) -> Option<FetchEvent> {
        self.events.recv().await
    }

    /// Stops the download; no further events arrive.
    pub fn abort(&mut self) {
        self.task.abort();
        self.events.close();
        while self.events.try_recv().is_ok() {}
    }

    /// Collects the remaining bytes of the segment (after `resume_from`).
    pub async fn bytes(mut self) -> Result<Bytes, HttpError> {
        let mut out = BytesMut::new();
        while let Some(ev) = self.next().await {
            match ev {
                FetchEvent::Chunk { data, .. } => out.extend_from_slice(&data),
                FetchEvent::Done { .. } => return Ok(out.freeze()),
                FetchEvent::Failed(e) => return Err(e),
                FetchEvent::Response { .. } | FetchEvent::Failover { .. } => {}
            }
        }
        Err(HttpError::Aborted)
    }
}

impl Drop for FetchHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Fetches segments from an origin and its mirrors. Cheap to clone; clones share the choice of
/// base.
#[derive(Debug, Clone)]
pub struct HttpFetcher {
    client: reqwest::Client,
    bases: Arc<Vec<Url>>,
    preferred: Arc<AtomicUsize>,
    settings: Arc<HttpSettings>,
}

impl HttpFetcher {
    /// A fetcher for the given base URLs (origin first). A base without a trailing `/` is treated
    /// as a directory (`http://h/hls` = `http://h/hls/`).
    pub fn new(bases: &[&str], settings: HttpSettings) -> Result<Self, HttpError> {
        // reqwest is built without a bundled crypto provider; use rustls' ring provider (a no-op
        // if the application installed one already).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut parsed = Vec::with_capacity(bases.len());
        for b in bases {
            let s = if b.ends_with('/') {
                (*b).to_owned()
            } else {
                format!("{b}/")
            };
            parsed.push(Url::parse(&s).map_err(|_| HttpError::BadUrl((*b).to_owned()))?);
        }
        let client = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .user_agent(settings.user_agent.clone())
            .build()
            .map_err(|e| HttpError::Client(e.to_string()))?;
        Ok(Self {
            client,
            bases: Arc::new(parsed),
            preferred: Arc::new(AtomicUsize::new(0)),
            settings: Arc::new(settings),
        })
    }

    /// The base URLs, origin first.
    pub fn bases(&self) -> &[Url] {
        &self.bases
    }

    /// The base the next fetch starts at.
    pub fn preferred_base(&self) -> usize {
        self.preferred.load(Ordering::Relaxed)
    }

    /// Starts fetching a segment. Must run inside a tokio runtime.
    pub fn fetch(&self, request: FetchRequest) -> FetchHandle {
        let (tx, events) = mpsc::channel(self.settings.event_queue.max(1));
        let task = tokio::spawn(self.clone().run(request, tx));
        FetchHandle { events, task }
    }

    /// Fetches a whole segment into memory.
    pub async fn fetch_bytes(&self, request: FetchRequest) -> Result<Bytes, HttpError> {
        self.fetch(request).bytes().await
    }

    async fn run(self, req: FetchRequest, tx: mpsc::Sender<FetchEvent>) {
        let result = self.fetch_all(&req, &tx).await;
        let ev = match result {
            Ok((base, total)) => FetchEvent::Done { base, total },
            Err(e) => FetchEvent::Failed(e),
        };
        let _ = tx.send(ev).await;
    }

    /// The URLs to try, in order: (base index, URL).
    fn targets(&self, path: &str) -> Result<Vec<(usize, Url)>, HttpError> {
        if let Ok(abs) = Url::parse(path) {
            return Ok(vec![(0, abs)]);
        }
        if self.bases.is_empty() {
            return Err(HttpError::NoBase);
        }
        let start = self.preferred.load(Ordering::Relaxed) % self.bases.len();
        let mut out = Vec::new();
        for i in 0..self.bases.len() {
            let idx = (start + i) % self.bases.len();
            let url = self.bases[idx]
                .join(path.trim_start_matches('/'))
                .map_err(|_| HttpError::BadUrl(path.to_owned()))?;
            out.push((idx, url));
        }
        Ok(out)
    }

    async fn fetch_all(
        &self,
        req: &FetchRequest,
        tx: &mpsc::Sender<FetchEvent>,
    ) -> Result<(usize, u64), HttpError> {
        let targets = self.targets(&req.path)?;
        let per_base = self.settings.attempts_per_base.max(1);
        let plan: Vec<&(usize, Url)> = (0..per_base).flat_map(|_| targets.iter()).collect();
        let mut received = req.resume_from;
        let mut last = HttpError::NoBase;
        for (n, (base, url)) in plan.iter().enumerate() {
            let attempt = tokio::time::timeout(
                self.settings.request_timeout,
                self.attempt(*base, url, req, &mut received, tx),
            )
            .await;
            let err = match attempt {
                Ok(Ok(())) => {
                    self.preferred.store(*base, Ordering::Relaxed);
                    return Ok((*base, received));
                }
                Ok(Err(HttpError::Aborted)) => return Err(HttpError::Aborted),
                Ok(Err(e)) => e,
                Err(_) => HttpError::Timeout(self.settings.request_timeout),
            };
            tracing::debug!(%url, error = %err, received, "HTTP attempt failed");
            if let Some((next_base, _)) = plan.get(n + 1) {
                // Later fetches start at the next base unless another fetch moved on already.
                if self.bases.len() > 1 {
                    let _ = self.preferred.compare_exchange(
                        *base,
                        *next_base,
                        Ordering::Relaxed,
                        Ordering::Relaxed,
                    );
                }
                let ev = FetchEvent::Failover {
                    base: *base,
                    error: err.clone(),
                    next_base: *next_base,
                    resume_from: received,
                };
                if tx.send(ev).await.is_err() {
                    return Err(HttpError::Aborted);
                }
            }
            last = err;
        }
        Err(HttpError::AllFailed {
            attempts: plan.len() as u32,
            last: Box::new(last),
        })
    }

    /// One request to one base, continuing from segment byte `*received`.
    async fn attempt(
        &self,
        base: usize,
        url: &Url,
        req: &FetchRequest,
        received: &mut u64,
        tx: &mpsc::Sender<FetchEvent>,
    ) -> Result<(), HttpError> {
        let seg_start = req.byte_range.as_ref().map_or(0, |r| r.start);
        let seg_len = req
            .byte_range
            .as_ref()
            .map(|r| r.end.saturating_sub(r.start));
        if let Some(len) = seg_len {
            if len > self.settings.max_body_bytes {
                return Err(HttpError::TooLarge(self.settings.max_body_bytes));
            }
            if *received >= len {
                return Ok(());
            }
        }
        let first = seg_start + *received;
        let range = range_header(first, seg_len.map(|len| seg_start + len));
        let mut builder = self.client.get(url.clone());
        if let Some(r) = &range {
            builder = builder.header(RANGE, r);
        }
        let mut resp = builder
            .send()
            .await
            .map_err(|e| HttpError::Request(e.to_string()))?;
        let status = resp.status();
        // Bytes at the start of the body to drop, and the segment's full size.
        let (mut skip, total) = match status {
            StatusCode::PARTIAL_CONTENT => {
                let asked = range.clone().unwrap_or_default();
                let header = resp
                    .headers()
                    .get(CONTENT_RANGE)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned();
                let want_end = seg_len.map(|len| seg_start + len);
                let checked = check_content_range(&header, first, want_end);
                let (Some((_, _, size)), Some(_)) = (checked, &range) else {
                    return Err(HttpError::BadContentRange { got: header, asked });
                };
                let total = match (seg_len, size) {
                    (Some(len), _) => Some(len),
                    (None, Some(size)) => Some(size),
                    (None, None) => None,
                };
                (0u64, total)
            }
            StatusCode::OK => {
                // The server ignored the Range (or none was sent): the body is the whole resource.
                let total = match seg_len {
                    Some(len) => Some(len),
                    None => resp.content_length(),
                };
                (first, total)
            }
            s => return Err(HttpError::Status(s.as_u16())),
        };
        if total.is_some_and(|t| t > self.settings.max_body_bytes) {
            return Err(HttpError::TooLarge(self.settings.max_body_bytes));
        }
        let response = FetchEvent::Response {
            base,
            url: url.to_string(),
            status: status.as_u16(),
            total,
        };
        if tx.send(response).await.is_err() {
            return Err(HttpError::Aborted);
        }
        loop {
            if total.is_some_and(|t| *received >= t) {
                return Ok(());
            }
            let chunk = tokio::time::timeout(self.settings.stall_timeout, resp.chunk())
                .await
                .map_err(|_| HttpError::Stalled(self.settings.stall_timeout))?
                .map_err(|e| HttpError::Request(e.to_string()))?;
            let Some(mut data) = chunk else {
                return match total {
                    Some(expected) if *received < expected => Err(HttpError::ShortBody {
                        got: *received,
                        expected,
                    }),
                    _ => Ok(()),
                };
            };
            if skip > 0 {
                let n = skip.min(data.len() as u64);
                skip -= n;
                data = data.slice(n as usize..);
            }
            if let Some(t) = total {
                let room = t - *received;
                if data.len() as u64 > room {
                    data.truncate(room as usize);
                }
            }
            if data.is_empty() {
                continue;
            }
            *received += data.len() as u64;
            if *received > self.settings.max_body_bytes {
                return Err(HttpError::TooLarge(self.settings.max_body_bytes));
            }
            let ev = FetchEvent::Chunk {
                data,
                received: *received,
                total,
            };
            if tx.send(ev).await.is_err() {
                return Err(HttpError::Aborted);
            }
        }
    }
}
