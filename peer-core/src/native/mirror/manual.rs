//! Manual entries: PeerTube watch URLs the operator asked for, mirrored until removed.
//!
//! They come from the configuration's `manual` list (added at each start, retried at each check
//! until their origin answers) and from `segswarm mirror add|remove` at run time (through the
//! admin listener, [`super::admin`]). Each is recorded in the database with strategy `manual`
//! and no expiry, so it survives a restart and no strategy evicts it. A video is mirrored only
//! from a followed origin: its instance must be one of the configured PeerTube origins.

use serde_json::{json, Value};

use super::state::{EntryRecord, StateError};
use crate::native::peertube::{PeerTubeClient, PeerTubeError};
use crate::peertube::video_url::{parse_video_url, VideoUrlError};
use crate::peertube::{VideoId, VideoRef};

/// Why a manual entry could not be added or removed.
#[derive(Debug, thiserror::Error)]
pub enum ManualError {
    /// Not a PeerTube video URL.
    #[error(transparent)]
    Url(#[from] VideoUrlError),
    /// The video's instance is not a followed origin.
    #[error("{instance} is not a followed origin (add it to `origins`)")]
    NotFollowed {
        /// The instance.
        instance: String,
    },
    /// The origin's API did not describe the video.
    #[error(transparent)]
    Api(#[from] PeerTubeError),
    /// The video is not mirrored as a manual entry.
    #[error("{0} is not a manual entry")]
    NotManual(String),
    /// The database.
    #[error(transparent)]
    State(#[from] StateError),
}

impl ManualError {
    /// Whether the request was wrong (rather than the origin or the database failing).
    pub fn is_bad_request(&self) -> bool {
        matches!(
            self,
            ManualError::Url(_) | ManualError::NotFollowed { .. } | ManualError::NotManual(_)
        )
    }
}

/// A watch URL parsed: the video and its instance.
pub fn parse_manual_url(url: &str) -> Result<VideoRef, ManualError> {
    Ok(parse_video_url(url)?)
}

/// The video's uuid: from the URL when it carries one, otherwise asked of the instance.
pub async fn uuid_of(client: &PeerTubeClient, video: &VideoRef) -> Result<String, ManualError> {
    match &video.id {
        VideoId::Uuid(u) => Ok(u.clone()),
        _ => Ok(client.video(video).await?.uuid),
    }
}

/// What `GET /mirrors` answers: one object per mirrored video (uuid, origin, strategy, since
/// and until in Unix seconds, until `null` for manual entries, bytes, hits (HTTP `GET`s with a
/// body so far; P2P requests are not counted yet), served).
pub fn listing_json(records: &[EntryRecord], served: &std::collections::BTreeSet<String>) -> Value {
    Value::Array(
        records
            .iter()
            .map(|r| {
                let e = &r.entry;
                json!({
                    "uuid": e.uuid,
                    "origin": e.origin,
                    "strategy": e.strategy.as_str(),
                    "since": e.since,
                    "until": e.until,
                    "bytes": e.bytes,
                    "hits": r.hits,
                    "served": served.contains(&e.uuid),
                })
            })
            .collect(),
    )
}
