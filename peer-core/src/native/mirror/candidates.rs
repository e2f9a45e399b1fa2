//! An origin's candidate videos for the strategies, read from its REST API.
//!
//! Per check, each PeerTube origin is asked for the lists the configured strategies need
//! (`most-views` → `-views`, `trending` → `-trending`, `recently-added` → `-publishedAt`;
//! `count` = the configuration's `list_count`); the lists are merged by uuid (a video's trending
//! rank is its position in `-trending`). The lists carry no sizes, so the details of each listed
//! VOD the mirror does not hold yet are read once (`/api/v1/videos/{uuid}`, the HLS files'
//! `size`s) and remembered while the video stays listed. Any failure fails the whole refresh: the
//! caller keeps the origin's previous candidates.

use std::collections::{BTreeMap, BTreeSet};

use super::strategy::{Candidate, OriginCandidates, Strategy};
use crate::native::peertube::{PeerTubeClient, PeerTubeError};
use crate::peertube::{VideoId, VideoRef, VideoSort};

/// The list a strategy reads, if any: `most-watched-now` reads `-trending` (recent views, the
/// closest list to "watched now") for its candidates, then the tracker for their peers
/// ([`super::scrape`]); `manual` nothing.
pub fn sort_of(strategy: Strategy) -> Option<VideoSort> {
    match strategy {
        Strategy::MostViews => Some(VideoSort::MostViews),
        Strategy::RecentlyAdded => Some(VideoSort::RecentlyPublished),
        Strategy::Trending | Strategy::MostWatchedNow => Some(VideoSort::Trending),
        Strategy::Manual => None,
    }
}

/// Reads one PeerTube origin's candidates; remembers the sizes it learnt.
#[derive(Debug, Default)]
pub struct CandidateReader {
    /// HLS bytes of each video whose details were read, by uuid.
    sizes: BTreeMap<String, u64>,
}

impl CandidateReader {
    /// Lists `instance` (`scheme://host[:port]`) by `sorts`, `count` videos each, and reads the
    /// size of each listed VOD not in `held`. `origin` is the origin as configured (kept in the
    /// result).
    pub async fn read(
        &mut self,
        client: &PeerTubeClient,
        origin: &str,
        instance: &str,
        sorts: &BTreeSet<VideoSort>,
        count: u32,
        held: &BTreeSet<String>,
    ) -> Result<OriginCandidates, PeerTubeError> {
        let mut videos: Vec<Candidate> = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        for &sort in sorts {
            let listed = client.list_videos(instance, sort, count).await?;
            for (rank, v) in listed.into_iter().enumerate() {
                let i = *index.entry(v.uuid.clone()).or_insert_with(|| {
                    videos.push(Candidate {
                        uuid: v.uuid.clone(),
                        views: v.views,
                        trending_rank: None,
                        published_at: v.published_at,
                        bytes: 0,
                        is_live: v.is_live,
                        peers: 0,
                    });
                    videos.len() - 1
                });
                if sort == VideoSort::Trending {
                    videos[i].trending_rank = u32::try_from(rank).ok();
                }
            }
        }
        self.sizes.retain(|uuid, _| index.contains_key(uuid));
        for c in &mut videos {
            if c.is_live || held.contains(&c.uuid) {
                continue;
            }
            if let Some(&bytes) = self.sizes.get(&c.uuid) {
                c.bytes = bytes;
                continue;
            }
            let video = VideoRef {
                instance: instance.to_owned(),
                id: VideoId::Uuid(c.uuid.clone()),
            };
            let details = client.video(&video).await?;
            c.bytes = details.hls_bytes();
            self.sizes.insert(c.uuid.clone(), c.bytes);
        }
        Ok(OriginCandidates {
            origin: origin.to_owned(),
            videos,
        })
    }
}
