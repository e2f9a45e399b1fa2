//! The native HTTP fetcher against a small HTTP/1.1 server in this test, on 127.0.0.1. Each path
//! prefix behaves differently: `/good/` serves bytes with Range support, `/fail/` answers 500,
//! `/cut/` closes halfway through the body, `/stall/` stops sending, `/hang/` never answers,
//! `/badrange/` answers a Range with the wrong `Content-Range`, `/norange/` ignores Range, `/slow/`
//! drips the body.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use segswarm_core::native::http::{FetchEvent, FetchRequest, HttpError, HttpFetcher, HttpSettings};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const SIZE: usize = 1_000_000;

fn data() -> Vec<u8> {
    (0..SIZE)
        .map(|i| (i % 251) as u8 ^ (i >> 10) as u8)
        .collect()
}

/// (path, Range header) of every request the server got.
type Log = Arc<Mutex<Vec<(String, Option<String>)>>>;

struct TestServer {
    addr: SocketAddr,
    log: Log,
}

impl TestServer {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let log: Log = Arc::default();
        let l = log.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, l.clone()));
            }
        });
        Self { addr, log }
    }

    fn base(&self, prefix: &str) -> String {
        format!("http://{}/{prefix}/", self.addr)
    }

    fn requests(&self) -> Vec<(String, Option<String>)> {
        self.log.lock().expect("log").clone()
    }
}

fn parse_range(h: &str, len: usize) -> Option<(usize, usize)> {
    let spec = h.strip_prefix("bytes=")?;
    let (a, b) = spec.split_once('-')?;
    let a: usize = a.parse().ok()?;
    let b: usize = if b.is_empty() {
        len - 1
    } else {
        b.parse().ok()?
    };
    (a <= b && b < len).then_some((a, b))
}

async fn serve(mut sock: TcpStream, log: Log) {
    let mut buf = Vec::new();
    let mut tmp = [0u8; 1024];
    loop {
        let Ok(n) = sock.read(&mut tmp).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&tmp[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 16 * 1024 {
            break;
        }
    }
    let head = String::from_utf8_lossy(&buf).to_string();
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_owned();
    let range = head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.eq_ignore_ascii_case("range").then(|| v.trim().to_owned())
    });
    log.lock().expect("log").push((path.clone(), range.clone()));
    let body = data();
    let mode = path.split('/').nth(1).unwrap_or("").to_owned();
    let (status, start, end) = match (&range, mode.as_str()) {
        (_, "fail") => {
            let _ = sock
                .write_all(b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
            return;
        }
        (_, "hang") => {
            tokio::time::sleep(Duration::from_secs(30)).await;
            return;
        }
        (Some(r), m) if m != "norange" => match parse_range(r, SIZE) {
            Some((a, b)) => (206, a, b),
            None => {
                let _ = sock
                    .write_all(b"HTTP/1.1 416 Range Not Satisfiable\r\ncontent-length: 0\r\n\r\n")
                    .await;
                return;
            }
        },
        _ => (200, 0, SIZE - 1),
    };
    let len = end - start + 1;
    let mut head = if status == 206 {
        let (a, b) = if mode == "badrange" {
            (start + 1, end)
        } else {
            (start, end)
        };
        format!("HTTP/1.1 206 Partial Content\r\ncontent-range: bytes {a}-{b}/{SIZE}\r\n")
    } else {
        "HTTP/1.1 200 OK\r\n".to_owned()
    };
    head.push_str(&format!(
        "content-length: {len}\r\ncontent-type: video/mp2t\r\nconnection: close\r\n\r\n"
    ));
    if sock.write_all(head.as_bytes()).await.is_err() {
        return;
    }
    let slice = &body[start..=end];
    match mode.as_str() {
        "cut" => {
            let _ = sock.write_all(&slice[..len / 2]).await;
        }
        "stall" => {
            let _ = sock.write_all(&slice[..1000.min(len)]).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        }
        "slow" => {
            for piece in slice.chunks(1000) {
                if sock.write_all(piece).await.is_err() {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        _ => {
            let _ = sock.write_all(slice).await;
        }
    }
    let _ = sock.shutdown().await;
}

fn quick() -> HttpSettings {
    HttpSettings {
        request_timeout: Duration::from_secs(2),
        stall_timeout: Duration::from_millis(300),
        ..HttpSettings::default()
    }
}

/// Runs a fetch to the end: (bytes, events).
async fn run(fetcher: &HttpFetcher, req: FetchRequest) -> (Vec<u8>, Vec<FetchEvent>) {
    let mut handle = fetcher.fetch(req);
    let mut bytes = Vec::new();
    let mut events = Vec::new();
    let done = tokio::time::timeout(Duration::from_secs(20), async {
        while let Some(ev) = handle.next().await {
            if let FetchEvent::Chunk { data, .. } = &ev {
                bytes.extend_from_slice(data);
            }
            events.push(ev);
        }
    })
    .await;
    assert!(done.is_ok(), "fetch did not end within 20 s");
    (bytes, events)
}

fn failovers(events: &[FetchEvent]) -> Vec<(usize, HttpError, usize, u64)> {
    events
        .iter()
        .filter_map(|e| match e {
            FetchEvent::Failover {
                base,
                error,
                next_base,
                resume_from,
            } => Some((*base, error.clone(), *next_base, *resume_from)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn whole_segment_streams_in_order_with_progress() {
    let server = TestServer::start().await;
    let fetcher = HttpFetcher::new(&[&server.base("good")], quick()).expect("fetcher");
    let (bytes, events) = run(&fetcher, FetchRequest::new("v1/seg-1.ts")).await;
    assert!(bytes == data(), "bytes differ");
    assert!(matches!(
        events.first(),
        Some(FetchEvent::Response { base: 0, status: 200, total: Some(t), .. }) if *t == SIZE as u64
    ));
    let progress: Vec<u64> = events
        .iter()
        .filter_map(|e| match e {
            FetchEvent::Chunk { received, .. } => Some(*received),
            _ => None,
        })
        .collect();
    assert!(progress.len() > 1, "streamed in several chunks");
    assert!(progress.windows(2).all(|w| w[0] < w[1]), "progress grows");
    assert_eq!(progress.last(), Some(&(SIZE as u64)));
    assert_eq!(
        events.last(),
        Some(&FetchEvent::Done {
            base: 0,
            total: SIZE as u64
        })
    );
    assert_eq!(
        server.requests(),
        vec![("/good/v1/seg-1.ts".to_owned(), None)],
        "one plain GET"
    );
}

#[tokio::test]
async fn error_status_fails_over_to_the_mirror_which_stays_preferred() {
    let server = TestServer::start().await;
    let fetcher =
        HttpFetcher::new(&[&server.base("fail"), &server.base("good")], quick()).expect("fetcher");
    let (bytes, events) = run(&fetcher, FetchRequest::new("seg-2.ts")).await;
    assert!(bytes == data());
    assert_eq!(failovers(&events), vec![(0, HttpError::Status(500), 1, 0)]);
    assert_eq!(fetcher.preferred_base(), 1);
    let (bytes, events) = run(&fetcher, FetchRequest::new("seg-3.ts")).await;
    assert!(bytes == data());
    assert!(failovers(&events).is_empty());
    let paths: Vec<String> = server.requests().into_iter().map(|(p, _)| p).collect();
    assert_eq!(
        paths,
        ["/fail/seg-2.ts", "/good/seg-2.ts", "/good/seg-3.ts"]
    );
}

#[tokio::test]
async fn body_cut_short_resumes_on_the_mirror_with_a_range() {
    let server = TestServer::start().await;
    let fetcher =
        HttpFetcher::new(&[&server.base("cut"), &server.base("good")], quick()).expect("fetcher");
    let (bytes, events) = run(&fetcher, FetchRequest::new("seg.ts")).await;
    assert!(bytes == data(), "resumed bytes join up exactly");
    let f = failovers(&events);
    assert_eq!(f.len(), 1, "{f:?}");
    let (from, err, to, resume) = f[0].clone();
    assert_eq!((from, to), (0, 1));
    // hyper reports a body shorter than its Content-Length as a read error.
    assert!(
        matches!(err, HttpError::Request(_) | HttpError::ShortBody { .. }),
        "{err:?}"
    );
    assert!(resume > 0 && resume < SIZE as u64);
    assert_eq!(
        server.requests()[1],
        ("/good/seg.ts".to_owned(), Some(format!("bytes={resume}-"))),
        "the mirror is asked only for the missing bytes"
    );
    assert!(events.iter().any(|e| matches!(
        e,
        FetchEvent::Response {
            base: 1,
            status: 206,
            ..
        }
    )));
}

#[tokio::test]
async fn resume_from_and_byte_ranges_use_checked_206_answers() {
    let server = TestServer::start().await;
    let fetcher = HttpFetcher::new(&[&server.base("good")], quick()).expect("fetcher");
    let full = data();

    let req = FetchRequest {
        resume_from: 123_456,
        ..FetchRequest::new("a.ts")
    };
    let bytes = fetcher.fetch_bytes(req).await.expect("resume");
    assert!(bytes[..] == full[123_456..]);

    let req = FetchRequest {
        byte_range: Some(1000..5000),
        ..FetchRequest::new("b.mp4")
    };
    let bytes = fetcher.fetch_bytes(req).await.expect("byte range");
    assert!(bytes[..] == full[1000..5000]);

    let req = FetchRequest {
        byte_range: Some(1000..5000),
        resume_from: 3000,
        ..FetchRequest::new("c.mp4")
    };
    let bytes = fetcher.fetch_bytes(req).await.expect("byte range resumed");
    assert!(bytes[..] == full[4000..5000]);

    let ranges: Vec<Option<String>> = server.requests().into_iter().map(|(_, r)| r).collect();
    assert_eq!(
        ranges,
        [
            Some("bytes=123456-".to_owned()),
            Some("bytes=1000-4999".to_owned()),
            Some("bytes=4000-4999".to_owned())
        ]
    );
}

#[tokio::test]
async fn wrong_content_range_is_refused_and_a_200_that_ignores_range_is_trimmed() {
    let server = TestServer::start().await;
    let full = data();
    let fetcher = HttpFetcher::new(&[&server.base("badrange"), &server.base("good")], quick())
        .expect("fetcher");
    let req = FetchRequest {
        resume_from: 500,
        ..FetchRequest::new("x.ts")
    };
    let (bytes, events) = run(&fetcher, req).await;
    assert!(bytes[..] == full[500..]);
    let f = failovers(&events);
    assert!(
        matches!(&f[..], [(0, HttpError::BadContentRange { .. }, 1, 500)]),
        "{f:?}"
    );

    let fetcher = HttpFetcher::new(&[&server.base("norange")], quick()).expect("fetcher");
    let req = FetchRequest {
        resume_from: 777,
        ..FetchRequest::new("y.ts")
    };
    let (bytes, events) = run(&fetcher, req).await;
    assert!(
        bytes[..] == full[777..],
        "the first 777 bytes of the 200 body are skipped"
    );
    assert!(events
        .iter()
        .any(|e| matches!(e, FetchEvent::Response { status: 200, .. })));
}

#[tokio::test]
async fn stalled_and_hanging_bases_time_out_and_all_failing_reports_the_last_error() {
    let server = TestServer::start().await;
    let full = data();
    let fetcher = HttpFetcher::new(
        &[
            &server.base("stall"),
            &server.base("hang"),
            &server.base("good"),
        ],
        quick(),
    )
    .expect("fetcher");
    let started = std::time::Instant::now();
    let (bytes, events) = run(&fetcher, FetchRequest::new("z.ts")).await;
    assert!(bytes == full);
    let f = failovers(&events);
    assert_eq!(f.len(), 2, "{f:?}");
    assert_eq!(f[0].1, HttpError::Stalled(Duration::from_millis(300)));
    assert_eq!(f[0].3, 1000, "the stalled base's 1000 bytes are kept");
    assert_eq!(f[1].1, HttpError::Timeout(Duration::from_secs(2)));
    assert!(started.elapsed() < Duration::from_secs(10));

    let fetcher =
        HttpFetcher::new(&[&server.base("fail"), &server.base("fail")], quick()).expect("fetcher");
    let err = fetcher
        .fetch_bytes(FetchRequest::new("w.ts"))
        .await
        .expect_err("every base fails");
    assert_eq!(
        err,
        HttpError::AllFailed {
            attempts: 2,
            last: Box::new(HttpError::Status(500))
        }
    );
}

#[tokio::test]
async fn abort_stops_the_download() {
    let server = TestServer::start().await;
    let fetcher = HttpFetcher::new(&[&server.base("slow")], quick()).expect("fetcher");
    let mut handle = fetcher.fetch(FetchRequest::new("slow.ts"));
    let first = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match handle.next().await {
                Some(FetchEvent::Chunk { received, .. }) => return received,
                Some(_) => continue,
                None => panic!("fetch ended before its first chunk"),
            }
        }
    })
    .await
    .expect("first chunk");
    assert!(first < SIZE as u64);
    handle.abort();
    assert_eq!(handle.next().await, None, "no event after abort");
}

#[test]
fn bad_base_url_is_an_error() {
    assert!(matches!(
        HttpFetcher::new(&["not a url"], HttpSettings::default()),
        Err(HttpError::BadUrl(_))
    ));
}
