//! The HTTP origin (`native::origin`) against real HTTP clients on loopback: reqwest for ordinary
//! requests, a raw TCP socket for paths a client library would normalise away.

use std::path::Path;
use std::time::Duration;

use segswarm_core::native::origin::{Origin, OriginConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn client() -> reqwest::Client {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("reqwest client")
}

/// A directory with a playlist, a segment of `seg_len` patterned bytes, a manifest, a
/// subdirectory, and a secret file next to (outside) the served root.
fn fixture(seg_len: usize) -> (tempfile::TempDir, std::path::PathBuf, Vec<u8>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let root = dir.path().join("www");
    std::fs::create_dir_all(root.join("v0")).unwrap();
    std::fs::write(
        root.join("index.m3u8"),
        "#EXTM3U\n#EXT-X-TARGETDURATION:4\n#EXTINF:4,\nseg0.ts\n#EXT-X-ENDLIST\n",
    )
    .unwrap();
    let seg: Vec<u8> = (0..seg_len).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(root.join("seg0.ts"), &seg).unwrap();
    std::fs::write(root.join("v0/seg 1.m4s"), b"fmp4 fragment").unwrap();
    std::fs::write(root.join("segments-sha256.json"), b"{}").unwrap();
    std::fs::write(dir.path().join("secret.txt"), b"top secret").unwrap();
    (dir, root, seg)
}

async fn start(root: &Path) -> Origin {
    Origin::start(OriginConfig::new(root, "127.0.0.1:0".parse().unwrap()))
        .await
        .expect("start the origin")
}

/// Sends a raw HTTP/1.1 request and returns the whole response as text.
async fn raw(origin: &Origin, request: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(origin.local_addr())
        .await
        .expect("connect");
    s.write_all(request.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out))
        .await
        .expect("response within 5 s")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn serves_playlists_and_segments_with_types_and_cors() {
    let (_dir, root, seg) = fixture(300_000);
    let origin = start(&root).await;
    let base = origin.base_url();
    let c = client();

    let r = c
        .get(format!("{base}index.m3u8"))
        .header("Origin", "https://player.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "application/vnd.apple.mpegurl");
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(h["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .contains("Content-Range"));
    assert_eq!(h["cache-control"], "no-cache");
    assert_eq!(h["accept-ranges"], "bytes");
    assert!(r.text().await.unwrap().starts_with("#EXTM3U"));

    let r = c.get(format!("{base}seg0.ts")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/mp2t");
    assert_eq!(
        r.headers()["content-length"],
        seg.len().to_string().as_str()
    );
    assert!(r.headers().get("cache-control").is_none());
    assert_eq!(r.bytes().await.unwrap().as_ref(), seg.as_slice());

    let r = c.get(format!("{base}v0/seg%201.m4s")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "video/iso.segment");
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"fmp4 fragment");

    let r = c
        .get(format!("{base}segments-sha256.json?v=3"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    // Read the body: the origin counts body bytes as it sends them, so the count below would
    // otherwise race the last response.
    assert_eq!(r.bytes().await.unwrap().len(), 2);

    let stats = origin.stats();
    assert_eq!(stats.ok, 4);
    assert_eq!(
        stats.body_bytes,
        (seg.len() + 13 + 2) as u64 + std::fs::metadata(root.join("index.m3u8")).unwrap().len()
    );
    origin.shutdown().await;
}

#[tokio::test]
async fn range_requests() {
    let (_dir, root, seg) = fixture(200_000);
    let origin = start(&root).await;
    let url = format!("{}seg0.ts", origin.base_url());
    let c = client();

    let r = c
        .get(&url)
        .header("Range", "bytes=1000-70999")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 1000-70999/200000");
    assert_eq!(r.headers()["content-length"], "70000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &seg[1000..71000]);

    // Open-ended (what a resuming viewer sends) and suffix ranges.
    let r = c
        .get(&url)
        .header("Range", "bytes=150000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 150000-199999/200000");
    assert_eq!(r.bytes().await.unwrap().as_ref(), &seg[150_000..]);
    let r = c
        .get(&url)
        .header("Range", "bytes=-10")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 206);
    assert_eq!(r.bytes().await.unwrap().as_ref(), &seg[199_990..]);

    // Past the end: 416 with the size.
    let r = c
        .get(&url)
        .header("Range", "bytes=200000-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */200000");
    assert_eq!(r.headers()["access-control-allow-origin"], "*");

    // Malformed and multi-range headers are ignored: the whole file.
    for bad in ["bytes=9-3", "bytes=0-1,5-6", "pages=1-2"] {
        let r = c.get(&url).header("Range", bad).send().await.unwrap();
        assert_eq!(r.status(), 200, "{bad}");
        assert_eq!(r.bytes().await.unwrap().len(), seg.len(), "{bad}");
    }
    assert_eq!(origin.stats().range_not_satisfiable, 1);
    origin.shutdown().await;
}

#[tokio::test]
async fn head_options_and_methods() {
    let (_dir, root, seg) = fixture(5000);
    let origin = start(&root).await;
    let url = format!("{}seg0.ts", origin.base_url());
    let c = client();

    let r = c.head(&url).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["content-length"],
        seg.len().to_string().as_str()
    );
    assert_eq!(r.headers()["content-type"], "video/mp2t");
    assert!(r.bytes().await.unwrap().is_empty());

    let r = c
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://player.example")
        .header("Access-Control-Request-Method", "GET")
        .header("Access-Control-Request-Headers", "range")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("GET"));
    assert_eq!(r.headers()["access-control-allow-headers"], "range");

    let r = c.post(&url).body("x").send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers()["allow"].to_str().unwrap().contains("HEAD"));
    // The file was not touched.
    assert_eq!(std::fs::read(root.join("seg0.ts")).unwrap(), seg);
    origin.shutdown().await;
}

#[tokio::test]
async fn nothing_outside_the_root_and_no_directories() {
    let (dir, root, _seg) = fixture(100);
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), root.join("link.ts")).unwrap();
    let origin = start(&root).await;

    for path in [
        "/../secret.txt",
        "/%2e%2e/secret.txt",
        "/v0/%2E%2E/%2E%2E/secret.txt",
        "/v0/..%2f..%2fsecret.txt",
        "/..\\secret.txt",
        "/link.ts",
        "/v0",
        "/v0/",
        "/",
        "/missing.ts",
    ] {
        let resp = raw(
            &origin,
            &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(
            resp.starts_with("HTTP/1.1 404") || resp.starts_with("HTTP/1.1 400"),
            "{path}: {resp}"
        );
        assert!(!resp.contains("top secret"), "{path} leaked the file");
    }
    // An absolute-form request target cannot escape either.
    let resp = raw(
        &origin,
        "GET http://x/../secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(!resp.contains("top secret"), "{resp}");
    origin.shutdown().await;
}

#[tokio::test]
async fn large_file_streams_intact_and_shutdown_stops_listening() {
    let (_dir, root, _) = fixture(10);
    let big: Vec<u8> = (0..6_000_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(root.join("big.mp4"), &big).unwrap();
    let origin = start(&root).await;
    let addr = origin.local_addr();
    let c = client();
    // Three clients at once.
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let c = c.clone();
        let url = format!("{}big.mp4", origin.base_url());
        tasks.push(tokio::spawn(async move {
            c.get(url).send().await.unwrap().bytes().await.unwrap()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().as_ref(), big.as_slice());
    }
    assert_eq!(origin.stats().body_bytes, 3 * big.len() as u64);
    origin.shutdown().await;
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}

/// A client that connects from `from` (a loopback address), sends `request` and reads the answer
/// for at most `wait`; `None` if nothing complete came back in time.
async fn raw_from(origin: &Origin, from: [u8; 4], request: &str, wait: Duration) -> Option<String> {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(std::net::SocketAddr::from((from, 0)))
        .expect("bind");
    let attempt = async {
        let mut s = socket.connect(origin.local_addr()).await.ok()?;
        s.write_all(request.as_bytes()).await.ok()?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await.ok()?;
        Some(String::from_utf8_lossy(&out).into_owned())
    };
    tokio::time::timeout(wait, attempt).await.ok().flatten()
}

const GET_PLAYLIST: &str = "GET /index.m3u8 HTTP/1.1\r\nHost: o\r\nConnection: close\r\n\r\n";

/// Opens a connection that sends `request` (if any) and then never reads.
/// Waits (at most 5 s) until the origin serves `n` connections.
async fn connections_open(origin: &Origin, n: u64) {
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while origin.stats().connections_open < n {
        assert!(
            std::time::Instant::now() < deadline,
            "{n} connections not open: {:?}",
            origin.stats()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn never_reads(origin: &Origin, request: Option<&str>) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .set_recv_buffer_size(4096)
        .expect("small receive buffer");
    let mut s = socket.connect(origin.local_addr()).await.expect("connect");
    if let Some(r) = request {
        s.write_all(r.as_bytes()).await.expect("write");
    }
    s
}

/// Issue 11 item 14: clients that ask for a large file and never read hold every connection slot;
/// they are closed once their writes stall for `write_timeout`, and other viewers are served.
#[tokio::test]
async fn clients_that_never_read_are_closed_and_others_are_served() {
    let (_dir, root, _) = fixture(1000);
    std::fs::write(root.join("big.bin"), vec![7u8; 32 * 1024 * 1024]).unwrap();
    let mut config = OriginConfig::new(&root, "127.0.0.1:0".parse().unwrap());
    config.max_connections = 4;
    config.write_timeout = Duration::from_millis(500);
    let origin = Origin::start(config).await.expect("start");
    let mut stuck = Vec::new();
    for _ in 0..4 {
        let get = "GET /big.bin HTTP/1.1\r\nHost: o\r\n\r\n";
        stuck.push(never_reads(&origin, Some(get)).await);
    }
    connections_open(&origin, 4).await;
    let started = std::time::Instant::now();
    let mut served = None;
    while started.elapsed() < Duration::from_secs(8) {
        match raw_from(
            &origin,
            [127, 0, 0, 1],
            GET_PLAYLIST,
            Duration::from_secs(2),
        )
        .await
        {
            Some(r) if r.starts_with("HTTP/1.1 200") => {
                served = Some(r);
                break;
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let r = served.expect("a viewer was served while four clients never read");
    assert!(r.contains("#EXTM3U"), "{r}");
    // The first stalled write to time out freed the slot that served the viewer; the other three
    // follow within the same timeout.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while origin.stats().write_timeouts < 4 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(origin.stats().write_timeouts, 4, "{:?}", origin.stats());
    drop(stuck);
}

/// Over `max_connections`, a new connection is accepted and answered `503` at once instead of
/// waiting unseen in the kernel's queue.
#[tokio::test]
async fn connections_over_the_cap_are_refused_at_once() {
    let (_dir, root, _) = fixture(1000);
    let mut config = OriginConfig::new(&root, "127.0.0.1:0".parse().unwrap());
    config.max_connections = 2;
    let origin = Origin::start(config).await.expect("start");
    let idle = [
        never_reads(&origin, None).await,
        never_reads(&origin, None).await,
    ];
    connections_open(&origin, 2).await;
    let r = raw_from(
        &origin,
        [127, 0, 0, 1],
        GET_PLAYLIST,
        Duration::from_secs(2),
    )
    .await
    .expect("an answer within 2 s");
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    assert_eq!(origin.stats().refused_busy, 1, "{:?}", origin.stats());
    drop(idle);
}

/// One address may hold at most `max_connections_per_ip`; others are still served.
#[tokio::test]
async fn one_address_cannot_take_every_connection() {
    let (_dir, root, _) = fixture(1000);
    let mut config = OriginConfig::new(&root, "127.0.0.1:0".parse().unwrap());
    config.max_connections_per_ip = 2;
    let origin = Origin::start(config).await.expect("start");
    let idle = [
        never_reads(&origin, None).await,
        never_reads(&origin, None).await,
    ];
    connections_open(&origin, 2).await;
    let r = raw_from(
        &origin,
        [127, 0, 0, 1],
        GET_PLAYLIST,
        Duration::from_secs(2),
    )
    .await
    .expect("an answer within 2 s");
    assert!(r.starts_with("HTTP/1.1 503"), "{r}");
    let r = raw_from(
        &origin,
        [127, 0, 0, 2],
        GET_PLAYLIST,
        Duration::from_secs(2),
    )
    .await
    .expect("an answer within 2 s");
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(origin.stats().refused_per_ip, 1, "{:?}", origin.stats());
    drop(idle);
}
