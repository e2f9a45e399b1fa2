//! Peer counts of an origin's swarms, for `most-watched-now`: the tracker's WebSocket scrape.
//!
//! For each candidate video the [`ScrapeReader`] learns once (while the video stays listed) the
//! info hashes of its streams, as its players derive them (the id scheme of the instance's
//! version, the master playlist's streams) and the first WebSocket tracker of its `trackerUrls`.
//! Each check it asks each tracker, in one connection, `{"action":"scrape","info_hash":[...]}`
//! for every candidate's info hashes (PeerTube's tracker is private: it answers only for the info
//! hashes of its own videos, which these are), and a video's peers are the seeders and leechers
//! of its streams added up, less the mirror itself in the streams it seeds. A video whose swarms
//! cannot be derived, or a tracker that fails, counts 0 peers (logged).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;

use super::strategy::OriginCandidates;
use crate::id_scheme::IdScheme;
use crate::native::peertube::{PeerTubeClient, ResolvedVideo};
use crate::peertube::id_scheme_for_version;
use crate::stream::master_playlist_streams;

/// Limits of the scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScrapeSettings {
    /// Time allowed for one tracker's connection and answers. Default 5 s.
    pub timeout: Duration,
    /// Largest tracker message read, bytes. Default 1 MiB.
    pub max_message_bytes: usize,
    /// Info hashes per scrape message (segswarm-tracker's default cap). Default 64.
    pub info_hashes_per_message: usize,
    /// Largest master playlist read to derive a video's info hashes, bytes. Default 1 MiB.
    pub max_master_bytes: u64,
    /// Most streams counted per video. Default 16.
    pub max_streams_per_video: usize,
}

impl Default for ScrapeSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_message_bytes: 1024 * 1024,
            info_hashes_per_message: 64,
            max_master_bytes: 1024 * 1024,
            max_streams_per_video: 16,
        }
    }
}

/// The swarms of one video.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoSwarms {
    /// The tracker asked.
    pub tracker: String,
    /// The info hashes of its streams (20 ASCII characters each).
    pub info_hashes: Vec<String>,
}

/// The info hashes of `video`'s streams as its players derive them from `master` (its master
/// playlist's text), with `id_scheme`.
pub fn video_swarms(
    video: &ResolvedVideo,
    master: &str,
    id_scheme: IdScheme,
    max_streams: usize,
) -> Result<VideoSwarms, String> {
    let tracker = video
        .ws_trackers
        .first()
        .cloned()
        .ok_or("no WebSocket tracker in trackerUrls")?;
    let swarm = id_scheme
        .swarm(None, Some(&video.details.uuid), &video.master_url)
        .map_err(|e| e.to_string())?;
    let info_hashes: Vec<String> = master_playlist_streams(master)
        .into_iter()
        .take(max_streams)
        .map(|s| {
            let hash = id_scheme.identity(swarm, s.key()).info_hash;
            String::from_utf8_lossy(&hash).into_owned()
        })
        .collect();
    if info_hashes.is_empty() {
        return Err("no stream in the master playlist".into());
    }
    Ok(VideoSwarms {
        tracker,
        info_hashes,
    })
}

/// Asks `tracker` for the seeders and leechers of each of `info_hashes`; the answers by info hash.
pub async fn scrape(
    tracker: &str,
    info_hashes: &[String],
    settings: &ScrapeSettings,
) -> Result<BTreeMap<String, u64>, String> {
    let work = async {
        let mut ws_config = WebSocketConfig::default();
        ws_config.max_message_size = Some(settings.max_message_bytes);
        ws_config.max_frame_size = Some(settings.max_message_bytes);
        let (mut socket, _) =
            tokio_tungstenite::connect_async_with_config(tracker, Some(ws_config), false)
                .await
                .map_err(|e| e.to_string())?;
        let mut counts = BTreeMap::new();
        for chunk in info_hashes.chunks(settings.info_hashes_per_message.max(1)) {
            let ask = json!({"action": "scrape", "info_hash": chunk}).to_string();
            socket
                .send(Message::text(ask))
                .await
                .map_err(|e| e.to_string())?;
            loop {
                let msg = socket
                    .next()
                    .await
                    .ok_or("the tracker closed the connection")?
                    .map_err(|e| e.to_string())?;
                let Message::Text(text) = msg else { continue };
                let v: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| format!("answer: {e}"))?;
                if let Some(reason) = v.get("failure reason").and_then(|r| r.as_str()) {
                    return Err(format!(
                        "tracker: {}",
                        reason.chars().take(200).collect::<String>()
                    ));
                }
                if v.get("action").and_then(|a| a.as_str()) != Some("scrape") {
                    continue;
                }
                let files = v.get("files").and_then(|f| f.as_object());
                for (hash, f) in files.into_iter().flatten() {
                    if !chunk.contains(hash) {
                        continue;
                    }
                    let n = |k: &str| f.get(k).and_then(serde_json::Value::as_u64).unwrap_or(0);
                    counts.insert(hash.clone(), n("complete").saturating_add(n("incomplete")));
                }
                break;
            }
        }
        let _ = socket.close(None).await;
        Ok(counts)
    };
    tokio::time::timeout(settings.timeout, work)
        .await
        .map_err(|_| format!("no answer within {:?}", settings.timeout))?
}

/// Learns the candidates' swarms and scrapes their trackers. See the module documentation.
#[derive(Debug, Default)]
pub struct ScrapeReader {
    /// By uuid; `None` when they cannot be derived (not tried again while listed).
    swarms: BTreeMap<String, Option<VideoSwarms>>,
}

impl ScrapeReader {
    /// Sets the `peers` of every candidate of `candidates` (videos of the PeerTube instance
    /// `instance`); `seeded` are the videos the mirror itself seeds.
    pub async fn count_peers(
        &mut self,
        client: &PeerTubeClient,
        instance: &str,
        candidates: &mut OriginCandidates,
        seeded: &BTreeSet<String>,
        settings: &ScrapeSettings,
    ) {
        let listed: BTreeSet<String> = candidates.videos.iter().map(|c| c.uuid.clone()).collect();
        self.swarms.retain(|uuid, _| listed.contains(uuid));
        for uuid in &listed {
            if self.swarms.contains_key(uuid) {
                continue;
            }
            let learnt = learn(client, instance, uuid, settings).await;
            if let Err(e) = &learnt {
                tracing::warn!(%uuid, error = %e, "swarms of the video unknown; counted 0 peers");
            }
            self.swarms.insert(uuid.clone(), learnt.ok());
        }
        let mut by_tracker: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for s in self.swarms.values().flatten() {
            by_tracker
                .entry(s.tracker.as_str())
                .or_default()
                .extend(s.info_hashes.iter().cloned());
        }
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        for (tracker, hashes) in by_tracker {
            match scrape(tracker, &hashes, settings).await {
                Ok(c) => counts.extend(c),
                Err(e) => tracing::warn!(%tracker, error = %e, "scrape failed; counted 0 peers"),
            }
        }
        for c in &mut candidates.videos {
            let Some(Some(s)) = self.swarms.get(&c.uuid) else {
                continue;
            };
            let mut peers = s
                .info_hashes
                .iter()
                .filter_map(|h| counts.get(h))
                .fold(0u64, |a, n| a.saturating_add(*n));
            if seeded.contains(&c.uuid) {
                peers = peers.saturating_sub(s.info_hashes.len() as u64);
            }
            c.peers = u32::try_from(peers).unwrap_or(u32::MAX);
        }
    }
}

/// Resolves `uuid` and reads its master playlist to derive its swarms.
async fn learn(
    client: &PeerTubeClient,
    instance: &str,
    uuid: &str,
    settings: &ScrapeSettings,
) -> Result<VideoSwarms, String> {
    let watch_url = format!("{}/videos/watch/{uuid}", instance.trim_end_matches('/'));
    let video = client
        .resolve(&watch_url, Some(IdScheme::default()))
        .await
        .map_err(|e| e.to_string())?;
    if video.details.uuid != uuid {
        return Err("the API answered another video".into());
    }
    let id_scheme = id_scheme_for_version(&video.server_version).map_err(|e| e.to_string())?;
    let master = client
        .get_bounded(&video.master_url, None, settings.max_master_bytes)
        .await
        .map_err(|e| e.to_string())?;
    let text = std::str::from_utf8(&master.bytes).map_err(|_| "master playlist is not UTF-8")?;
    video_swarms(&video, text, id_scheme, settings.max_streams_per_video)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A WebSocket server on loopback that answers the first message with `replies`, then
    /// stays silent; its `ws://` URL.
    async fn tracker(replies: Vec<String>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let url = format!("ws://{}", listener.local_addr().expect("address"));
        tokio::spawn(async move {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
                return;
            };
            let _ = ws.next().await;
            for r in replies {
                let _ = ws.send(Message::text(r)).await;
            }
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        url
    }

    fn settings() -> ScrapeSettings {
        ScrapeSettings {
            timeout: Duration::from_millis(500),
            max_message_bytes: 4096,
            ..ScrapeSettings::default()
        }
    }

    #[tokio::test]
    async fn answers_are_read_and_hostile_ones_refused() {
        let asked = vec!["a".repeat(20)];
        let good = json!({"action": "scrape", "files": {
            "aaaaaaaaaaaaaaaaaaaa": {"complete": 2, "incomplete": u64::MAX},
            "not asked": {"complete": 9},
        }})
        .to_string();
        let url = tracker(vec![r#"{"action":"announce","interval":120}"#.into(), good]).await;
        let counts = scrape(&url, &asked, &settings()).await.expect("counts");
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            vec![(asked[0].clone(), u64::MAX)]
        );

        let wrong_types =
            json!({"action": "scrape", "files": {"aaaaaaaaaaaaaaaaaaaa": {"complete": "x"}}});
        let url = tracker(vec![wrong_types.to_string()]).await;
        assert_eq!(
            scrape(&url, &asked, &settings()).await.expect("counts")[&asked[0]],
            0
        );

        for (reply, why) in [
            ("not json".to_owned(), "answer"),
            (
                r#"{"failure reason":"private tracker"}"#.to_owned(),
                "private tracker",
            ),
            ("x".repeat(10_000), ""),
        ] {
            let url = tracker(vec![reply]).await;
            let e = scrape(&url, &asked, &settings()).await.unwrap_err();
            assert!(e.contains(why), "{e}");
        }
        let silent = tracker(Vec::new()).await;
        let e = scrape(&silent, &asked, &settings()).await.unwrap_err();
        assert!(e.contains("no answer"), "{e}");
        let e = scrape("ws://127.0.0.1:1", &asked, &settings())
            .await
            .unwrap_err();
        assert!(!e.is_empty());
    }
}
