//! PeerTube, seen from a seeder: what a video URL names, what the REST API answers, and which swarm
//! id scheme the instance's players use. Pure parsing and decisions (sans-IO); the HTTP side is in
//! `native::peertube`.
//!
//! - [`video_url`]: watch and API URLs (`/w/<shortUUID>`, `/videos/watch/<uuid>`,
//!   `/api/v1/videos/<id>`) parsed into an instance and a video id;
//! - [`api`]: the JSON of `/api/v1/videos/{id}` and `/api/v1/config` (the fields segswarm reads,
//!   unknown fields ignored), in the shapes of PeerTube's `packages/models`;
//! - [`video_list`]: the JSON of `/api/v1/videos?sort=...` (what a mirror's strategies read);
//! - [`version`]: `serverVersion` → the [`crate::id_scheme::IdScheme`] of that instance's players.

pub mod api;
pub mod version;
pub mod video_list;
pub mod video_url;

pub use api::{
    parse_server_config, parse_video_details, ApiError, Redundancy, ServerConfig,
    StreamingPlaylist, VideoDetails, VideoFile, VideoState,
};
pub use version::{id_scheme_for_version, ServerVersion, VersionError};
pub use video_list::{parse_video_list, ListedVideo, VideoSort};
pub use video_url::{parse_video_url, VideoId, VideoRef, VideoUrlError};
