//! The browser driver in headless Chromium (`wasm-bindgen-test`); see wasm-peer/README.md.
#![cfg(target_arch = "wasm32")]

use std::future::Future;
use std::time::Duration;

use segswarm_wasm::error::WebError;
use segswarm_wasm::fetch::{fetch_from, Abort};
use segswarm_wasm::rtc::{RtcPeer, RtcSettings};
use segswarm_wasm::timer::{sleep, timeout, Timeout};
use wasm_bindgen_test::*;

wasm_bindgen_test_configure!(run_in_browser);

const MESSAGE: usize = 64 * 1024;

/// Two peers in this page, signalled by handing the SDP across: returns both open channels and
/// keeps the peers alive with them.
async fn pair(
    settings: RtcSettings,
) -> (
    (RtcPeer, segswarm_wasm::rtc::DataChannel),
    (RtcPeer, segswarm_wasm::rtc::DataChannel),
) {
    let mut a = RtcPeer::new(settings.clone()).expect("peer a");
    let mut b = RtcPeer::new(settings).expect("peer b");
    let offer = a.create_offer().await.expect("offer");
    assert!(
        offer.contains("a=candidate"),
        "offer has its candidates: {offer}"
    );
    let answer = b.accept_offer(&offer).await.expect("answer");
    assert!(answer.contains("a=candidate"), "answer has its candidates");
    a.accept_answer(&answer).await.expect("accept answer");
    let ca = a.open_channel().await.expect("a's channel opens");
    let cb = b.open_channel().await.expect("b's channel opens");
    assert_eq!(ca.label(), cb.label());
    assert_eq!(ca.label().len(), 40);
    ((a, ca), (b, cb))
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

#[wasm_bindgen_test]
async fn data_channel_carries_one_mebibyte_in_64_kib_messages() {
    let mut settings = RtcSettings::default();
    // Small enough that 1 MiB has to wait for `bufferedamountlow` several times.
    settings.channel.send_buffer_bytes = 128 * 1024;
    settings.channel.buffered_amount_low_threshold = 32 * 1024;
    let ((_a, ca), (_b, cb)) = pair(settings).await;
    let data = pattern(1024 * 1024);
    let sender = async {
        let mut max_buffered = 0;
        for chunk in data.chunks(MESSAGE) {
            ca.send(chunk).await.expect("send");
            max_buffered = max_buffered.max(ca.buffered_amount());
        }
        max_buffered
    };
    let receiver = async {
        let mut got = Vec::new();
        let mut messages = 0;
        while got.len() < data.len() {
            let m = cb.recv().await.expect("channel open while receiving");
            assert!(m.len() <= MESSAGE);
            messages += 1;
            got.extend_from_slice(&m);
        }
        (got, messages)
    };
    let both = async {
        let mut s = std::pin::pin!(sender);
        let mut r = std::pin::pin!(receiver);
        let (mut max_buffered, mut received) = (None, None);
        std::future::poll_fn(|cx| {
            if max_buffered.is_none() {
                if let std::task::Poll::Ready(v) = s.as_mut().poll(cx) {
                    max_buffered = Some(v);
                }
            }
            if received.is_none() {
                if let std::task::Poll::Ready(v) = r.as_mut().poll(cx) {
                    received = Some(v);
                }
            }
            match (max_buffered, received.take()) {
                (Some(m), Some(v)) => std::task::Poll::Ready((m, v)),
                (_, v) => {
                    received = v;
                    std::task::Poll::Pending
                }
            }
        })
        .await
    };
    let (max_buffered, (got, messages)) = timeout(Duration::from_secs(30), both)
        .await
        .expect("1 MiB within 30 s");
    assert_eq!(messages, 16);
    assert_eq!(got.len(), data.len());
    assert!(got == data, "bytes arrive intact and in order");
    // Back-pressure: the sender never queued much more than its limit plus one message.
    assert!(
        max_buffered as usize <= 128 * 1024 + MESSAGE,
        "bufferedAmount peaked at {max_buffered}"
    );
}

#[wasm_bindgen_test]
async fn oversized_message_is_refused_and_close_reaches_the_other_side() {
    let ((_a, ca), (b, cb)) = pair(RtcSettings::default()).await;
    let err = ca.send(&vec![0u8; MESSAGE + 1]).await.unwrap_err();
    assert_eq!(
        err,
        WebError::TooLarge {
            len: MESSAGE + 1,
            max: MESSAGE
        }
    );
    ca.send(b"last").await.expect("send");
    assert_eq!(cb.recv().await.as_deref(), Some(&b"last"[..]));
    // Closing b (peer and channel) ends a's channel: recv returns None, send fails.
    drop(cb);
    drop(b);
    let end = timeout(Duration::from_secs(10), ca.recv()).await;
    assert_eq!(end, Some(None), "a sees the channel close");
    assert!(ca.is_closed());
    assert_eq!(ca.send(b"x").await, Err(WebError::ChannelClosed));
}

#[wasm_bindgen_test]
async fn unanswered_offer_times_out_opening() {
    let mut settings = RtcSettings::default();
    settings.channel.open_timeout = Duration::from_millis(300);
    let mut a = RtcPeer::new(settings).expect("peer");
    let _offer = a.create_offer().await.expect("offer");
    assert_eq!(
        a.open_channel().await.err(),
        Some(WebError::Timeout("the data channel to open"))
    );
}

const FIXTURE: &[u8] = include_bytes!("data/range.txt");
// The test runner serves files of the crate directory besides its own.
const FIXTURE_URL: &str = "/tests/data/range.txt";

/// Reads the whole body of `fetch_from(url, from)`.
async fn fetch_body(
    url: &str,
    from: u64,
    abort: &Abort,
) -> Result<(u16, Option<u64>, Vec<u8>), WebError> {
    fetch_range(url, from, None, abort).await
}

/// Reads the whole body of `fetch_from(url, from, end)`.
async fn fetch_range(
    url: &str,
    from: u64,
    end: Option<u64>,
    abort: &Abort,
) -> Result<(u16, Option<u64>, Vec<u8>), WebError> {
    let mut body = fetch_from(url, from, end, &abort.signal()).await?;
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next_chunk().await? {
        bytes.extend_from_slice(&chunk);
    }
    Ok((body.status, body.content_length, bytes))
}

#[wasm_bindgen_test]
async fn fetch_resumes_from_a_byte() {
    let abort = Abort::new().expect("controller");
    let (status, length, bytes) = fetch_body(FIXTURE_URL, 24, &abort).await.expect("fetch");
    assert_eq!(bytes, &FIXTURE[24..]);
    assert!(bytes.starts_with(b"0123456789"));
    // The runner's server ignores Range (200, leading bytes dropped here); Chromium's HTTP cache
    // answers later range requests for the cached file itself with a 206 (Content-Range path).
    assert!(status == 200 || status == 206, "status {status}");
    assert!(
        length.is_none_or(|l| l == (FIXTURE.len() - 24) as u64),
        "{length:?}"
    );

    let (_, _, whole) = fetch_body(FIXTURE_URL, 0, &abort).await.expect("fetch");
    assert_eq!(whole, FIXTURE);
}

/// A byte-range segment (`#EXT-X-BYTERANGE`): exactly bytes `from..end`, whether the server
/// answers the `Range` (206) or sends the whole file (200: cut here).
#[wasm_bindgen_test]
async fn fetch_reads_a_byte_range() {
    let abort = Abort::new().expect("controller");
    let (status, length, bytes) = fetch_range(FIXTURE_URL, 24, Some(30), &abort)
        .await
        .expect("fetch");
    assert_eq!(bytes, &FIXTURE[24..30]);
    assert!(status == 200 || status == 206, "status {status}");
    assert!(length.is_none_or(|l| l == 6), "{length:?}");
    let (_, _, head) = fetch_range(FIXTURE_URL, 0, Some(5), &abort)
        .await
        .expect("fetch");
    assert_eq!(head, &FIXTURE[..5]);
}

#[wasm_bindgen_test]
async fn fetch_errors_name_the_cause() {
    let abort = Abort::new().expect("controller");
    // Resuming past the end: 416 when answered with a range, nothing left of a full 200.
    let beyond = fetch_body(FIXTURE_URL, 1000, &abort).await;
    assert!(
        matches!(&beyond, Err(WebError::Status(416)))
            || matches!(&beyond, Ok((_, _, b)) if b.is_empty()),
        "{beyond:?}"
    );
    let missing = fetch_body("/tests/data/missing.bin", 0, &abort).await;
    assert_eq!(missing, Err(WebError::Status(404)));
    abort.abort();
    let aborted = fetch_body(FIXTURE_URL, 0, &abort).await;
    assert_eq!(aborted, Err(WebError::Aborted));
}

#[wasm_bindgen_test]
async fn timeout_fires_and_a_dropped_one_does_not() {
    use std::cell::Cell;
    use std::rc::Rc;
    let fired = Rc::new(Cell::new(0u32));
    let f1 = Rc::clone(&fired);
    let _kept = Timeout::new(Duration::from_millis(20), move || f1.set(f1.get() + 1));
    let f2 = Rc::clone(&fired);
    let dropped = Timeout::new(Duration::from_millis(20), move || f2.set(f2.get() + 10));
    drop(dropped);
    sleep(Duration::from_millis(150)).await;
    assert_eq!(fired.get(), 1);
}
