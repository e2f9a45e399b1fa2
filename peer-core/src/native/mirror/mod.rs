//! The mirror (`segswarm mirror`): follows origins, keeps a bounded cache of the videos its
//! strategies pick, and serves them.
//!
//! - [`config`]: the settings, from TOML, every one defaulted;
//! - [`strategy`]: which videos to add, keep and expire (pure, deterministic);
//! - [`state`]: what is mirrored, in an SQLite database that survives restarts;
//! - [`cache`]: the files on disk, bounded in bytes, written atomically, reconciled with the
//!   database on start;
//! - [`candidates`]: an origin's videos read from its REST API, for the strategies;
//! - [`scrape`]: the peers in the candidates' swarms, from the tracker, for `most-watched-now`;
//! - [`fetch`]: one video copied, verified, into the cache and recorded;
//! - [`swarms`]: the mirrored videos seeded over WebRTC in their origin's swarms;
//! - [`metrics`]: the figures, as Prometheus text and JSON;
//! - [`admin`]: the admin listener serving them and the manual entries' endpoint (loopback by
//!   default);
//! - [`admin_client`]: `segswarm mirror list|add|remove`'s requests to it;
//! - [`manual`]: manual entries, added and removed by watch URL;
//! - [`reload`]: a configuration reloaded while running (SIGHUP), what applies at once;
//! - [`daemon`]: the loop: check the origins, apply the plan, serve the cache over HTTP and
//!   WebRTC.

pub mod admin;
pub mod admin_client;
pub mod cache;
pub mod candidates;
pub mod config;
pub mod daemon;
pub mod fetch;
pub mod manual;
pub mod metrics;
pub mod reload;
pub mod scrape;
pub mod state;
pub mod strategy;
pub mod swarms;

pub use admin::{AdminCommand, AdminServer, AdminSettings};
pub use config::{ConfigError, MirrorConfig, OriginSpec, StrategyConfig};
pub use daemon::{CheckReport, DaemonError, DaemonSettings, MirrorDaemon};
pub use manual::ManualError;
pub use metrics::{Figures, MirrorMetrics};
pub use reload::ReloadReport;
pub use strategy::{plan, Candidate, Entry, OriginCandidates, Plan, Strategy};
pub use swarms::{SwarmError, SwarmSettings, Swarms};
