//! Shared helpers for the black-box tests of the `segswarm-tracker` daemon: start the real binary
//! with a config file in a temporary directory, wait for its `listening address=` lines, talk to it
//! with real WebSocket and HTTP clients on loopback, and read its `/metrics`.
//!
//! Every wait is bounded: a helper that does not see what it waits for panics with what it saw.

#![allow(dead_code)]

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// How long a test waits for a message it expects.
pub const STEP: Duration = Duration::from_secs(5);
/// How long a test listens to be sure that nothing (more) arrives.
pub const QUIET: Duration = Duration::from_millis(300);

/// The daemon under test, killed when dropped.
pub struct Tracker {
    child: Option<Child>,
    /// Temporary directory holding the config file and any list files.
    pub dir: tempfile::TempDir,
    /// The config file given with `--config`.
    pub config_path: PathBuf,
    /// The bound addresses, in the order of the `listening address=` lines.
    pub addrs: Vec<SocketAddr>,
    log: Arc<Mutex<Vec<String>>>,
}

/// A fresh temporary directory for config and list files.
pub fn temp_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("segswarm-tracker-test-")
        .tempdir()
        .expect("create a temporary directory")
}

/// Writes `contents` to `name` inside `dir` and returns its path.
pub fn write_file(dir: &Path, name: &str, contents: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, contents).expect("write a test file");
    path
}

/// Removes ANSI colour escapes (`ESC [ ... letter`) from a log line.
fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// The address in a `... listening address=<ip:port> ...` log line (text format), or in a JSON
/// log line whose message is `listening` with an `address` field (`--log-format json`).
fn listening_address(line: &str) -> Option<SocketAddr> {
    if line.trim_start().starts_with('{') {
        let value: Value = serde_json::from_str(line).ok()?;
        let fields = value.get("fields").unwrap_or(&value);
        let message = fields.get("message").and_then(Value::as_str)?;
        if !message.contains("listening") {
            return None;
        }
        return fields.get("address")?.as_str()?.parse().ok();
    }
    let at = line.find("listening")?;
    let rest = &line[at..];
    let value = rest.split("address=").nth(1)?;
    let value = value
        .split(|c: char| c.is_whitespace() || c == ',' || c == '"')
        .find(|s| !s.is_empty())?;
    value.parse().ok()
}

impl Tracker {
    /// Starts the daemon on `127.0.0.1:0` with `config` (TOML) in a new temporary directory.
    pub fn start(config: &str) -> Tracker {
        Tracker::start_in(temp_dir(), config, &["127.0.0.1:0"])
    }

    /// Starts the daemon with `config` written to `dir/tracker.toml`, one `--listen` per address.
    pub fn start_in(dir: tempfile::TempDir, config: &str, listen: &[&str]) -> Tracker {
        Tracker::start_with_args(dir, config, listen, &[])
    }

    /// As [`Tracker::start_in`], with extra command-line arguments.
    pub fn start_with_args(
        dir: tempfile::TempDir,
        config: &str,
        listen: &[&str],
        extra: &[&str],
    ) -> Tracker {
        let config_path = write_file(dir.path(), "tracker.toml", config);
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_segswarm-tracker"));
        cmd.arg("--config").arg(&config_path);
        for addr in listen {
            cmd.arg("--listen").arg(addr);
        }
        cmd.args(["--log-level", "info"])
            .args(extra)
            .env("NO_COLOR", "1")
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn segswarm-tracker");
        let stderr = child.stderr.take().expect("piped stderr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                eprintln!("[tracker] {line}");
                sink.lock().unwrap().push(line);
            }
        });
        let mut tracker = Tracker {
            child: Some(child),
            dir,
            config_path,
            addrs: Vec::new(),
            log,
        };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let addrs: Vec<SocketAddr> = tracker
                .log_lines()
                .iter()
                .filter_map(|l| listening_address(l))
                .collect();
            if addrs.len() >= listen.len() {
                tracker.addrs = addrs;
                return tracker;
            }
            if let Some(status) = tracker.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "segswarm-tracker exited with {status} before listening; log:\n{}",
                    tracker.log_lines().join("\n")
                );
            }
            assert!(
                Instant::now() < deadline,
                "segswarm-tracker did not log `listening address=` for {listen:?} within 15 s; log:\n{}",
                tracker.log_lines().join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The first bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    /// `ws://<addr>/`.
    pub fn ws_url(&self) -> String {
        format!("ws://{}/", self.addr())
    }

    /// Every stderr line so far, ANSI escapes removed.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits until a stderr line satisfies `pred` and returns it.
    pub async fn wait_log(&self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        eventually(what, STEP, || async {
            self.log_lines().into_iter().find(|l| pred(l))
        })
        .await
    }

    /// The process id.
    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Sends a signal (`libc::SIGHUP`, `libc::SIGTERM`, ...) to the daemon.
    #[allow(unsafe_code)] // kill(2) is an FFI call.
    pub fn signal(&self, signal: libc::c_int) {
        // SAFETY: kill(2) with the pid of our own child process.
        let rc = unsafe { libc::kill(self.pid(), signal) };
        assert_eq!(rc, 0, "kill({}, {signal})", self.pid());
    }

    /// Waits for the daemon to exit and returns its exit status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "segswarm-tracker did not exit within {timeout:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// GET `target` over plain HTTP on the first address.
    pub async fn get(&self, target: &str) -> HttpResponse {
        http_get(self.addr(), target).await
    }

    /// The current `/metrics`.
    pub async fn metrics(&self) -> Metrics {
        let response = self.get("/metrics").await;
        assert_eq!(response.status, 200, "GET /metrics");
        Metrics(String::from_utf8(response.body).expect("metrics are UTF-8"))
    }

    /// The current `/stats.json`.
    pub async fn stats(&self) -> Value {
        let response = self.get("/stats.json").await;
        assert_eq!(response.status, 200, "GET /stats.json");
        serde_json::from_slice(&response.body).expect("stats.json is JSON")
    }

    /// A WebSocket client connected to `ws://<addr>/`.
    pub async fn ws(&self) -> Ws {
        Ws::connect(self.addr()).await
    }
}

impl Drop for Tracker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or panics after `timeout` naming `what`.
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Ids

/// A 20-byte id (info_hash, peer_id, offer_id).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Id(pub [u8; 20]);

impl Id {
    /// Random bytes, including bytes above 0x7f (sent as characters U+0080..U+00FF).
    pub fn random() -> Id {
        Id(rand::random())
    }

    /// The binary-string form used on the WebSocket wire: one character per byte.
    pub fn bin(&self) -> String {
        self.0.iter().map(|&b| char::from(b)).collect()
    }

    /// Lowercase hex, as in `/stats.json`.
    pub fn hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Decodes a binary string; panics if it is not one.
    pub fn from_bin(s: &str) -> Id {
        let bytes: Vec<u8> = s
            .chars()
            .map(|c| u8::try_from(u32::from(c)).expect("binary string character above U+00FF"))
            .collect();
        Id(bytes
            .try_into()
            .unwrap_or_else(|b: Vec<u8>| panic!("binary string of {} bytes, not 20", b.len())))
    }

    /// Percent-encoding of the raw bytes for an HTTP query.
    pub fn url(&self) -> String {
        url_encode(&self.0)
    }
}

/// Percent-encodes every byte that is not unreserved (RFC 3986).
pub fn url_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for &b in bytes {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Messages

/// An announce without offers: `event` None leaves the field out; `left` None leaves it out (leecher).
pub fn announce(info_hash: Id, peer_id: Id, event: Option<&str>, left: Option<u64>) -> Value {
    let mut msg = json!({
        "action": "announce",
        "info_hash": info_hash.bin(),
        "peer_id": peer_id.bin(),
        "numwant": 0,
        "uploaded": 0,
        "downloaded": 0,
    });
    if let Some(event) = event {
        msg["event"] = json!(event);
    }
    if let Some(left) = left {
        msg["left"] = json!(left);
    }
    msg
}

/// An SDP offer object whose text names `tag`, so that relays can be told apart.
pub fn sdp_offer(tag: &str) -> Value {
    json!({"type": "offer", "sdp": format!("v=0\r\no=- {tag} 2 IN IP4 127.0.0.1\r\ns=-\r\n")})
}

/// An SDP answer object naming `tag`.
pub fn sdp_answer(tag: &str) -> Value {
    json!({"type": "answer", "sdp": format!("v=0\r\no=- {tag} 2 IN IP4 127.0.0.1\r\ns=-\r\n")})
}

/// An announce (event `started`, leecher) carrying `offers` as `(offer_id, sdp)`.
pub fn announce_with_offers(info_hash: Id, peer_id: Id, offers: &[(Id, Value)]) -> Value {
    let mut msg = announce(info_hash, peer_id, Some("started"), Some(100));
    msg["numwant"] = json!(offers.len());
    msg["offers"] = offers
        .iter()
        .map(|(id, sdp)| json!({"offer": sdp, "offer_id": id.bin()}))
        .collect();
    msg
}

/// An answer from `peer_id` to `to_peer_id`'s offer `offer_id`.
pub fn answer(info_hash: Id, peer_id: Id, to_peer_id: Id, offer_id: Id, sdp: Value) -> Value {
    json!({
        "action": "announce",
        "info_hash": info_hash.bin(),
        "peer_id": peer_id.bin(),
        "to_peer_id": to_peer_id.bin(),
        "offer_id": offer_id.bin(),
        "answer": sdp,
    })
}

/// A scrape: `None` leaves `info_hash` out (full scrape).
pub fn scrape(info_hashes: Option<&[Id]>) -> Value {
    match info_hashes {
        None => json!({"action": "scrape"}),
        Some([one]) => json!({"action": "scrape", "info_hash": one.bin()}),
        Some(many) => json!({
            "action": "scrape",
            "info_hash": many.iter().map(Id::bin).collect::<Vec<_>>(),
        }),
    }
}

/// `(complete, incomplete)` of `info_hash` in a scrape response, `None` when it is not listed.
pub fn scrape_entry(response: &Value, info_hash: Id) -> Option<(u64, u64)> {
    let entry = response.get("files")?.get(info_hash.bin())?;
    Some((
        entry["complete"].as_u64().expect("complete is a number"),
        entry["incomplete"]
            .as_u64()
            .expect("incomplete is a number"),
    ))
}

// ---------------------------------------------------------------------------------------------
// WebSocket client

/// What arrived on a WebSocket.
#[derive(Debug)]
pub enum Event {
    /// A text message that is JSON.
    Json(Value),
    /// A close frame (with its code and reason, if any).
    Close(Option<CloseFrame>),
    /// The stream ended or failed without a close frame.
    Ended(String),
    /// Nothing arrived in time.
    Timeout,
}

/// A WebSocket client over any stream (plain TCP or TLS).
pub struct Ws<S = TcpStream> {
    /// The underlying tokio-tungstenite stream.
    pub inner: WebSocketStream<S>,
}

/// Options of a WebSocket connection.
#[derive(Default, Clone)]
pub struct WsOptions<'a> {
    /// The request path; `/` when `None`.
    pub path: Option<&'a str>,
    /// The `Origin` header.
    pub origin: Option<&'a str>,
    /// The local address to connect from (another 127.x address, to act as another IP).
    pub source_ip: Option<IpAddr>,
    /// Extra handshake headers (e.g. `X-Forwarded-For`).
    pub headers: &'a [(&'a str, &'a str)],
    /// `SO_RCVBUF` of the client socket, to make a small receive window (a slow reader).
    pub recv_buffer: Option<u32>,
}

/// Opens a TCP connection to `addr`, from `source_ip` when given.
pub async fn tcp_connect(
    addr: SocketAddr,
    source_ip: Option<IpAddr>,
) -> std::io::Result<TcpStream> {
    tcp_connect_with(addr, source_ip, None).await
}

/// As [`tcp_connect`], with `SO_RCVBUF` set to `recv_buffer` when given.
pub async fn tcp_connect_with(
    addr: SocketAddr,
    source_ip: Option<IpAddr>,
    recv_buffer: Option<u32>,
) -> std::io::Result<TcpStream> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    if let Some(size) = recv_buffer {
        socket.set_recv_buffer_size(size)?;
    }
    if let Some(ip) = source_ip {
        socket.bind(SocketAddr::new(ip, 0))?;
    }
    tokio::time::timeout(STEP, socket.connect(addr))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "connect timed out"))?
}

impl Ws<TcpStream> {
    /// Connects to `ws://addr/`; panics on failure.
    pub async fn connect(addr: SocketAddr) -> Ws {
        Ws::try_connect(addr, WsOptions::default())
            .await
            .unwrap_or_else(|e| panic!("WebSocket connection to {addr}: {e}"))
    }

    /// Connects with options; the handshake error (e.g. an HTTP refusal) is returned.
    pub async fn try_connect(
        addr: SocketAddr,
        options: WsOptions<'_>,
    ) -> Result<Ws, tokio_tungstenite::tungstenite::Error> {
        let stream = tcp_connect_with(addr, options.source_ip, options.recv_buffer).await?;
        let url = format!("ws://{addr}{}", options.path.unwrap_or("/"));
        Ws::handshake_with(stream, &url, options.origin, options.headers).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Ws<S> {
    /// Runs the WebSocket handshake for `url` on an open stream.
    pub async fn handshake(
        stream: S,
        url: &str,
        origin: Option<&str>,
    ) -> Result<Ws<S>, tokio_tungstenite::tungstenite::Error> {
        Ws::handshake_with(stream, url, origin, &[]).await
    }

    /// As [`Ws::handshake`], with extra request headers.
    pub async fn handshake_with(
        stream: S,
        url: &str,
        origin: Option<&str>,
        headers: &[(&str, &str)],
    ) -> Result<Ws<S>, tokio_tungstenite::tungstenite::Error> {
        let mut request = url.into_client_request()?;
        if let Some(origin) = origin {
            request.headers_mut().insert(
                "origin",
                HeaderValue::from_str(origin).expect("origin header"),
            );
        }
        for (name, value) in headers {
            let name =
                tokio_tungstenite::tungstenite::http::HeaderName::from_bytes(name.as_bytes())
                    .expect("header name");
            request
                .headers_mut()
                .append(name, HeaderValue::from_str(value).expect("header value"));
        }
        let (inner, _response) =
            tokio::time::timeout(STEP, tokio_tungstenite::client_async(request, stream))
                .await
                .map_err(|_| {
                    tokio_tungstenite::tungstenite::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "WebSocket handshake timed out",
                    ))
                })??;
        Ok(Ws { inner })
    }

    /// Sends a JSON text message.
    pub async fn send_json(&mut self, value: &Value) {
        self.send(Message::text(value.to_string())).await;
    }

    /// Sends any message; panics if the connection is already gone.
    pub async fn send(&mut self, message: Message) {
        self.inner
            .send(message)
            .await
            .expect("send a WebSocket message");
    }

    /// Sends any message, returning the error instead of panicking.
    pub async fn try_send(
        &mut self,
        message: Message,
    ) -> Result<(), tokio_tungstenite::tungstenite::Error> {
        self.inner.send(message).await
    }

    /// The next message (pings and pongs skipped) within `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> Event {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let next = match tokio::time::timeout_at(deadline, self.inner.next()).await {
                Err(_) => return Event::Timeout,
                Ok(next) => next,
            };
            match next {
                None => return Event::Ended("stream ended".into()),
                Some(Err(e)) => return Event::Ended(e.to_string()),
                Some(Ok(Message::Text(text))) => {
                    let value = serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                        panic!("tracker sent a text message that is not JSON ({e}): {text}")
                    });
                    return Event::Json(value);
                }
                Some(Ok(Message::Close(frame))) => return Event::Close(frame),
                Some(Ok(Message::Binary(b))) => {
                    panic!("tracker sent a binary message of {} bytes", b.len())
                }
                Some(Ok(_)) => continue,
            }
        }
    }

    /// The next JSON message within [`STEP`]; panics on anything else.
    pub async fn next_json(&mut self) -> Value {
        match self.next_event(STEP).await {
            Event::Json(v) => v,
            other => panic!("expected a JSON message, got {other:?}"),
        }
    }

    /// Sends `msg` and returns the next JSON message.
    pub async fn request(&mut self, msg: &Value) -> Value {
        self.send_json(msg).await;
        self.next_json().await
    }

    /// Sends an announce and checks that the reply is an announce response (not a failure).
    pub async fn announce_ok(&mut self, msg: &Value) -> Value {
        let reply = self.request(msg).await;
        assert!(
            reply.get("failure reason").is_none(),
            "announce {msg} failed: {reply}"
        );
        assert_eq!(reply["action"], "announce", "reply to {msg}: {reply}");
        assert_eq!(
            reply["info_hash"], msg["info_hash"],
            "reply to {msg}: {reply}"
        );
        reply
    }

    /// Asserts that no JSON message arrives within [`QUIET`].
    pub async fn expect_quiet(&mut self) {
        match self.next_event(QUIET).await {
            Event::Timeout => {}
            other => panic!("expected no message, got {other:?}"),
        }
    }

    /// Sends a close frame and waits (bounded) for the server's.
    pub async fn close(mut self) {
        let _ = self.inner.close(None).await;
        let _ =
            tokio::time::timeout(STEP, async { while self.inner.next().await.is_some() {} }).await;
    }
}

/// Checks that a WebSocket connection attempt was refused in a way a client can see: the upgrade
/// answered with an HTTP error status, or the connection accepted and then closed with a close
/// frame whose reason is `reason`. A connection that stays usable fails the check.
pub async fn assert_refused(
    attempt: Result<Ws, tokio_tungstenite::tungstenite::Error>,
    reason: &str,
    probe: &Value,
) {
    use tokio_tungstenite::tungstenite::Error;
    match attempt {
        Err(Error::Http(response)) => {
            assert!(
                response.status().as_u16() >= 400,
                "refusal with HTTP status {}",
                response.status()
            );
        }
        Err(other) => panic!("expected an HTTP refusal or a close frame ({reason:?}), got {other}"),
        Ok(mut ws) => {
            // Accepted: the server must close it with a reason, before or after a message.
            let _ = ws.try_send(Message::text(probe.to_string())).await;
            loop {
                match ws.next_event(STEP).await {
                    Event::Close(Some(frame)) => {
                        assert_eq!(frame.reason.as_str(), reason, "close reason");
                        return;
                    }
                    Event::Json(v)
                        if v.get("failure reason").and_then(Value::as_str) == Some(reason) =>
                    {
                        continue
                    }
                    other => panic!("expected a close frame with reason {reason:?}, got {other:?}"),
                }
            }
        }
    }
}

/// `(complete, incomplete)` of `info_hash` as seen by a scrape on `ws`; a swarm the tracker does
/// not know is listed with zeros (as the reference tracker does) or left out, both read as `(0, 0)`.
pub async fn scrape_counts<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &mut Ws<S>,
    info_hash: Id,
) -> (u64, u64) {
    let reply = ws.request(&scrape(Some(&[info_hash]))).await;
    assert!(
        reply.get("failure reason").is_none(),
        "scrape failed: {reply}"
    );
    assert_eq!(reply["action"], "scrape", "scrape reply: {reply}");
    scrape_entry(&reply, info_hash).unwrap_or((0, 0))
}

/// Asserts that `reply` is a failure with exactly `reason`.
pub fn assert_failure(reply: &Value, reason: &str) {
    assert_eq!(
        reply.get("failure reason").and_then(Value::as_str),
        Some(reason),
        "expected failure reason {reason:?}, got {reply}"
    );
}

// ---------------------------------------------------------------------------------------------
// HTTP client

/// An HTTP response.
#[derive(Debug)]
pub struct HttpResponse {
    /// Status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body, de-chunked.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header named `name` (lowercase).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded as bencode.
    pub fn bencode(&self) -> bt_bencode::Value {
        bt_bencode::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not bencode ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }
}

/// GET `target` from `addr` over a new plain TCP connection.
pub async fn http_get(addr: SocketAddr, target: &str) -> HttpResponse {
    let stream = tcp_connect(addr, None)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    http_get_on(stream, &addr.to_string(), target).await
}

/// GET `target` from `addr` over a new plain TCP connection from `source_ip` (when given), with
/// extra request headers.
pub async fn http_get_with(
    addr: SocketAddr,
    target: &str,
    source_ip: Option<IpAddr>,
    headers: &[(&str, &str)],
) -> HttpResponse {
    let stream = tcp_connect(addr, source_ip)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    http_get_on_with(stream, &addr.to_string(), target, headers).await
}

/// GET `target` on an open stream (plain or TLS), `Connection: close`.
pub async fn http_get_on<S: AsyncRead + AsyncWrite + Unpin>(
    stream: S,
    host: &str,
    target: &str,
) -> HttpResponse {
    http_get_on_with(stream, host, target, &[]).await
}

/// As [`http_get_on`], with extra request headers.
pub async fn http_get_on_with<S: AsyncRead + AsyncWrite + Unpin>(
    mut stream: S,
    host: &str,
    target: &str,
    headers: &[(&str, &str)],
) -> HttpResponse {
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let request = format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: segswarm-test\r\n{extra}Connection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write HTTP request");
    let mut raw = Vec::new();
    tokio::time::timeout(STEP, stream.read_to_end(&mut raw))
        .await
        .unwrap_or_else(|_| panic!("HTTP response to GET {target} timed out"))
        .unwrap_or_else(|e| panic!("read HTTP response to GET {target}: {e}"));
    parse_http_response(&raw).unwrap_or_else(|| {
        panic!(
            "malformed HTTP response: {:?}",
            String::from_utf8_lossy(&raw)
        )
    })
}

/// Parses one HTTP response from the start of `raw` (the body cut at its Content-Length).
pub fn parse_http_response(raw: &[u8]) -> Option<HttpResponse> {
    let head_end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut body = raw[head_end + 4..].to_vec();
    let chunked = headers
        .iter()
        .any(|(n, v)| n == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    if chunked {
        body = dechunk(&body)?;
    } else if let Some((_, len)) = headers.iter().find(|(n, _)| n == "content-length") {
        body.truncate(len.parse().ok()?);
    }
    Some(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics

/// A `/metrics` page in the Prometheus text format.
pub struct Metrics(pub String);

impl Metrics {
    /// The value of sample `name` with exactly the label pairs `labels` (any order), if present.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        for line in self.0.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let Some((series, value)) = line.rsplit_once(' ') else {
                continue;
            };
            let (sample_name, label_text) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}').unwrap_or(rest)),
                None => (series, ""),
            };
            if sample_name != name {
                continue;
            }
            let mut found: Vec<(String, String)> = label_text
                .split(',')
                .filter(|p| !p.is_empty())
                .filter_map(|p| p.split_once('='))
                .map(|(k, v)| (k.trim().to_owned(), v.trim().trim_matches('"').to_owned()))
                .collect();
            let mut wanted: Vec<(String, String)> = labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect();
            found.sort();
            wanted.sort();
            if found == wanted {
                return value.trim().parse().ok();
            }
        }
        None
    }

    /// A counter or gauge value; an absent series counts as 0.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.get(name, labels).unwrap_or(0.0)
    }

    /// `segswarm_errors_total{kind}`.
    pub fn errors(&self, kind: &str) -> f64 {
        self.value("segswarm_errors_total", &[("kind", kind)])
    }

    /// `segswarm_messages_dropped_total{reason}`.
    pub fn dropped(&self, reason: &str) -> f64 {
        self.value("segswarm_messages_dropped_total", &[("reason", reason)])
    }
}

/// Waits until `/metrics` shows `segswarm_errors_total{kind}` at least `at_least`.
pub async fn wait_errors(tracker: &Tracker, kind: &str, at_least: f64) -> f64 {
    eventually(
        &format!("segswarm_errors_total{{kind=\"{kind}\"}} >= {at_least}"),
        STEP,
        || async {
            let v = tracker.metrics().await.errors(kind);
            (v >= at_least).then_some(v)
        },
    )
    .await
}
