//! segswarm-tracker: a WebTorrent WebSocket tracker with BitTorrent HTTP announce/scrape on the same port.
//!
//! Modules, one concept each:
//! - [`config`]: every setting and limit, with documented defaults, loaded from TOML;
//! - [`protocol`]: parsing and encoding of WebSocket JSON messages and HTTP bencoded responses;
//! - [`swarm`]: the roster of peers per info_hash, offer/answer relay decisions, expiry;
//! - [`access`]: info_hash allow/deny lists and Origin checks;
//! - [`metrics`]: the Prometheus registry, `/metrics` and `/stats.json`;
//! - [`server`]: the tokio accept loop, WebSocket and HTTP on one port, TLS, limits, shutdown.

pub mod access;
pub mod config;
pub mod metrics;
pub mod protocol;
pub mod server;
pub mod swarm;
