//! Seeding a PeerTube video from its instance: resolve it through the REST API ([`client`]) and
//! mirror its HLS files, verified, into a cache directory the directory
//! [`crate::native::seeder::Seeder`] can seed ([`mirror`]).
//!
//! The pure parts (URL forms, API shapes, version → id scheme) are in [`crate::peertube`].

pub mod client;
pub mod mirror;

pub use client::{PeerTubeClient, PeerTubeError, PeerTubeSettings, ResolvedVideo};
pub use mirror::{BaseStats, MirrorError, MirrorSettings, MirrorStats, RemoteMirror, SyncReport};
