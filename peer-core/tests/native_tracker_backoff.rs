//! Tracker reconnect backoff of the native hub against trackers that accept a WebSocket and close
//! it again (over capacity, shutting down): the backoff resets only after an accepted announce, and
//! a close with code 1013 or 1001 waits at least 30 s (issue 11 item 13).

use crate::support;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use segswarm_core::backoff::BackoffConfig;
use segswarm_core::native::tracker_hub::{LinkEvent, LinkEvents, TrackerHub, TrackerHubSettings};
use tokio::net::TcpListener;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::Message;

const IH: &str = "AAAAAAAAAAAAAAAAAAAA";

/// What the fake tracker does with one connection.
#[derive(Debug, Clone, Copy)]
enum Visit {
    /// Close at once with this code.
    Close(u16),
    /// Answer the first frame with an accepted announce, then close with 1000.
    AcceptAnnounceThenClose,
}

/// A WebSocket server that treats the n-th connection as `script[n]` (the last entry repeats).
async fn fake_tracker(script: Vec<Visit>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("ws://{}", listener.local_addr().expect("addr"));
    let script = Arc::new(Mutex::new(VecDeque::from(script)));
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let visit = {
                let mut s = script.lock().unwrap();
                if s.len() > 1 {
                    s.pop_front().unwrap()
                } else {
                    s[0]
                }
            };
            tokio::spawn(async move {
                let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                    return;
                };
                let code = match visit {
                    Visit::Close(code) => code,
                    Visit::AcceptAnnounceThenClose => {
                        while let Some(Ok(msg)) = ws.next().await {
                            if msg.is_text() {
                                break;
                            }
                        }
                        let reply = serde_json::json!({
                            "action": "announce", "info_hash": IH, "interval": 120,
                            "complete": 0, "incomplete": 1
                        });
                        let _ = ws.send(Message::Text(reply.to_string().into())).await;
                        1000
                    }
                };
                let _ = ws
                    .close(Some(CloseFrame {
                        code: CloseCode::from(code),
                        reason: "fake tracker".into(),
                    }))
                    .await;
                while let Some(Ok(_)) = ws.next().await {}
            });
        }
    });
    url
}

async fn next(events: &mut LinkEvents) -> LinkEvent {
    tokio::time::timeout(Duration::from_secs(10), events.recv())
        .await
        .expect("a link event within 10 s")
        .expect("hub running")
}

/// The `retry_in` of the next `Disconnected`, skipping `Connected` and frames.
async fn next_retry(events: &mut LinkEvents) -> Duration {
    loop {
        let ev = next(events).await;
        if let LinkEvent::Disconnected { retry_in, .. } = ev {
            return retry_in;
        }
    }
}

#[test]
fn a_tracker_that_accepts_and_closes_is_retried_with_growing_delays() {
    support::enter_private_network_namespace();
    support::runtime().block_on(async {
        let url = fake_tracker(vec![Visit::Close(1000)]).await;
        let hub = TrackerHub::new(TrackerHubSettings {
            backoff: BackoffConfig {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(5),
                jitter: 0.0,
                ..BackoffConfig::default()
            },
            ..TrackerHubSettings::default()
        });
        let (_link, mut events) = hub.join(&url, IH.as_bytes().try_into().unwrap());
        let mut delays = Vec::new();
        for _ in 0..4 {
            delays.push(next_retry(&mut events).await);
        }
        let ms: Vec<u128> = delays.iter().map(Duration::as_millis).collect();
        // Opening the socket is not success: every close counts as a failure.
        assert_eq!(ms, vec![50, 100, 200, 400], "retry delays {ms:?}");
    });
}

#[test]
fn an_accepted_announce_resets_the_backoff() {
    support::enter_private_network_namespace();
    support::runtime().block_on(async {
        let url = fake_tracker(vec![
            Visit::Close(1000),
            Visit::Close(1000),
            Visit::AcceptAnnounceThenClose,
        ])
        .await;
        let hub = TrackerHub::new(TrackerHubSettings {
            backoff: BackoffConfig {
                initial: Duration::from_millis(50),
                max: Duration::from_secs(5),
                jitter: 0.0,
                ..BackoffConfig::default()
            },
            ..TrackerHubSettings::default()
        });
        let (link, mut events) = hub.join(&url, IH.as_bytes().try_into().unwrap());
        let mut delays = Vec::new();
        while delays.len() < 3 {
            match next(&mut events).await {
                LinkEvent::Connected => link
                    .send(serde_json::json!({"action": "announce", "info_hash": IH}).to_string()),
                LinkEvent::Disconnected { retry_in, .. } => delays.push(retry_in.as_millis()),
                LinkEvent::Frame(_) => {}
            }
        }
        assert_eq!(delays, vec![50, 100, 50], "retry delays {delays:?}");
    });
}

#[test]
fn over_capacity_or_going_away_waits_at_least_thirty_seconds() {
    support::enter_private_network_namespace();
    support::runtime().block_on(async {
        for code in [1001u16, 1013] {
            let url = fake_tracker(vec![Visit::Close(code)]).await;
            // Default settings: what every client does.
            let hub = TrackerHub::default();
            let (_link, mut events) = hub.join(&url, IH.as_bytes().try_into().unwrap());
            let retry = next_retry(&mut events).await;
            assert!(
                retry >= Duration::from_secs(30),
                "close {code}: retry in {retry:?}"
            );
        }
    });
}
