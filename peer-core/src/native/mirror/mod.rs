//! The mirror (`segswarm mirror`): follows origins, keeps a bounded cache of the videos its
//! strategies pick, and serves them.
//!
//! - [`config`]: the settings, from TOML, every one defaulted;
//! - [`strategy`]: which videos to add, keep and expire (pure, deterministic);
//! - [`state`]: what is mirrored, in an SQLite database that survives restarts;
//! - [`cache`]: the files on disk, bounded in bytes, written atomically, reconciled with the
//!   database on start.

pub mod cache;
pub mod config;
pub mod state;
pub mod strategy;

pub use config::{ConfigError, MirrorConfig, OriginSpec, StrategyConfig};
pub use strategy::{plan, Candidate, Entry, OriginCandidates, Plan, Strategy};
