//! Tracker settings. Every limit is a named field here with its default documented;
//! `segswarm-tracker --print-config` prints the effective configuration as TOML.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Errors from reading a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration; `line` is 1-based.
    #[error("{path}:{line}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The line of the error (1-based), 0 when unknown.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A value is out of its allowed range.
    #[error("invalid setting {field}: {message}")]
    Invalid {
        /// The setting, as `section.name`.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// The whole tracker configuration.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Sockets, workers, TLS.
    pub server: ServerConfig,
    /// Protocol timing and relay behaviour.
    pub protocol: ProtocolConfig,
    /// Caps that protect the tracker from abuse.
    pub limits: LimitsConfig,
    /// info_hash and Origin allow/deny lists.
    pub access: AccessConfig,
    /// `/metrics` and `/stats.json`.
    pub metrics: MetricsConfig,
}

/// Sockets, workers and TLS.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Addresses to listen on, IPv4 and/or IPv6. Default `["0.0.0.0:8000"]`.
    pub listen: Vec<SocketAddr>,
    /// Worker threads serving connections; 0 means one per CPU core. One more thread accepts
    /// connections and completes TLS handshakes. Default 0.
    pub workers: usize,
    /// PEM certificate chain for native `wss://` and `https://`; TLS is on when both files are set.
    /// Reloaded on SIGHUP. Default none.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key matching `tls_cert_file`. Default none.
    pub tls_key_file: Option<PathBuf>,
    /// Seconds given to connections to close after SIGTERM/SIGINT. Default 5.
    pub shutdown_grace_secs: u64,
    /// Behind a reverse proxy (nginx, as PeerTube runs it at `/tracker/socket`): take the client
    /// IP address from the last `X-Forwarded-For` entry, or else `X-Real-IP`, instead of the TCP
    /// peer. It is used for the per-IP limits and as the address of HTTP announce peers: a
    /// WebSocket counts against `limits.max_connections_per_ip` of that address from its
    /// upgrade request on; plain HTTP requests (a proxy may reuse one connection for many
    /// clients) are limited per address by the HTTP announce rate only. Turn on only when every
    /// connection comes through a proxy that sets these headers, since clients can write them
    /// too. Default false.
    pub trust_forwarded_for: bool,
    /// TLS handshakes in progress at once on the accepting thread; a TLS connection arriving
    /// while this many are under way is closed at accept, before any TLS work, and counted in
    /// `segswarm_errors_total{kind="tls_handshakes_full"}`. Default 1024.
    pub max_tls_handshakes: usize,
    /// Time allowed for a TLS handshake, seconds. Default 10.
    pub tls_handshake_timeout_secs: u64,
    /// An HTTP connection whose response takes no byte for this long (a client that sends
    /// requests and never reads the responses) is closed, seconds. Default 10.
    pub http_write_timeout_secs: u64,
}

/// Protocol timing and relay behaviour.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProtocolConfig {
    /// Re-announce interval sent to clients, seconds. Default 120 (as the reference tracker).
    pub announce_interval_secs: u64,
    /// A peer that has not announced for this long is removed from its swarm, seconds. Default 180.
    pub peer_timeout_secs: u64,
    /// Most offers relayed from one announce (extra offers are ignored). Default 10.
    pub max_offers: usize,
    /// Relay an answer only if the tracker delivered the matching offer to the answering peer
    /// within `offer_ttl_secs` (anti-spoofing). Default true.
    pub check_answers: bool,
    /// How long a delivered offer can be answered, seconds. Default 120.
    pub offer_ttl_secs: u64,
    /// The server pings a WebSocket that has been silent this long, seconds. Default 30.
    pub ping_interval_secs: u64,
    /// A connection silent for this long (no message, no pong) is closed, seconds. Default 120.
    pub idle_timeout_secs: u64,
    /// Peers returned by an HTTP announce when the client gives no `numwant`. Default 50.
    pub http_default_numwant: usize,
    /// Most peers returned by one HTTP announce. Default 200.
    pub http_max_numwant: usize,
    /// Answer a scrape without info_hash with every swarm. Default false.
    pub allow_full_scrape: bool,
    /// Delivered-but-unanswered offers remembered per peer for `check_answers`; the oldest is
    /// forgotten first. Default 20.
    pub max_pending_offers_per_peer: usize,
    /// A peer_id held by one WebSocket connection is refused to another (ids are public: every
    /// relayed offer carries one) unless the holder has closed, or has sent nothing — not even
    /// the pong to the server's ping — for this long, seconds: then it is taken for a dead
    /// socket the server has not noticed yet, and a client that reconnects with its peer_id
    /// gets it. At least twice `ping_interval_secs`, so a live client has answered a ping.
    /// Default 60.
    pub peer_id_takeover_after_secs: u64,
}

/// Caps that protect the tracker from abuse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Open connections in total (WebSocket and HTTP). Default 100000.
    pub max_connections: usize,
    /// Open connections from one IP address. Default 512.
    pub max_connections_per_ip: usize,
    /// Announces one WebSocket connection may send per second, averaged (token bucket). Default 10.
    pub max_announces_per_sec: u32,
    /// Announces one WebSocket connection may send in a burst. Default 40.
    pub announce_burst: u32,
    /// Swarms one WebSocket connection may join. Default 100.
    pub max_swarms_per_connection: usize,
    /// Peers in one swarm; further new peers are refused. Default 10000.
    pub max_peers_per_swarm: usize,
    /// Largest WebSocket message, bytes. Default 65536.
    pub max_message_bytes: usize,
    /// Largest WebSocket frame, bytes. Default 65536.
    pub max_frame_bytes: usize,
    /// Largest HTTP request head, bytes. Default 8192.
    pub max_http_request_bytes: usize,
    /// Messages (relayed offers and answers, replies to its own requests) queued for one
    /// connection while its socket is still taking earlier ones; when the queue is full further
    /// messages for it are dropped and counted in
    /// `segswarm_messages_dropped_total{reason="queue_full"}`. Default 256.
    pub max_outbound_queue: usize,
    /// Bytes of messages queued for one connection (as `max_outbound_queue`, in bytes; one
    /// message larger than this is still queued when the queue is empty). The connection's
    /// write buffer holds at most one such batch plus one pong, one ping and a close frame.
    /// Default 262144 (256 KiB).
    pub max_outbound_queue_bytes: usize,
    /// A connection whose outbound queue stays full (nothing could be written to it) for this
    /// long is closed as too slow, seconds; 0 closes it at the first dropped message.
    /// Default 10.
    pub slow_consumer_timeout_secs: u64,
    /// HTTP announces accepted from one client IP address per second, averaged (token bucket;
    /// the address is the forwarded one with `server.trust_forwarded_for`). Default 10.
    pub max_http_announces_per_ip_per_sec: u32,
    /// HTTP announces one client IP address may send in a burst. Default 40.
    pub http_announce_burst_per_ip: u32,
    /// HTTP scrapes accepted from one client IP address per second, averaged (a bucket of their
    /// own, so scrapes never use up announces). Default 10.
    pub max_http_scrapes_per_ip_per_sec: u32,
    /// HTTP scrapes one client IP address may send in a burst. Default 40.
    pub http_scrape_burst_per_ip: u32,
    /// Distinct info_hashes in one scrape (WebSocket or HTTP); duplicates count once, and a
    /// longer list is refused with `too many info_hashes in one scrape`. Default 64.
    pub max_scrape_info_hashes: usize,
    /// Pings one WebSocket connection may send per second, averaged (token bucket); further
    /// pings are not answered and are counted in
    /// `segswarm_messages_dropped_total{reason="control_flood"}`. However many arrive while a
    /// pong waits to be written, one pong (to the latest) is pending. Default 5.
    pub max_pings_per_sec: u32,
    /// Pings one WebSocket connection may send in a burst. Default 20.
    pub ping_burst: u32,
    /// IPv6 clients are counted per network of this prefix length for every per-IP limit
    /// (one host usually holds a whole /64). 128 counts single addresses. Default 64.
    pub ipv6_prefix_len: u8,
}

/// info_hash and Origin allow/deny lists.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AccessConfig {
    /// Private mode: only info_hashes listed in this file are tracked. One info_hash a line, as 40 hex
    /// digits or the 20-character string clients send; `#` starts a comment. Reloaded on SIGHUP.
    /// Default none (every info_hash allowed).
    pub info_hash_allow_file: Option<PathBuf>,
    /// info_hashes that are refused, same format. Reloaded on SIGHUP. Default none.
    pub info_hash_deny_file: Option<PathBuf>,
    /// If not empty, only WebSocket connections whose `Origin` header is listed are accepted
    /// (exact match, e.g. `https://video.example`). Default empty.
    pub origin_allow: Vec<String>,
    /// WebSocket connections with one of these `Origin` headers are refused. Default empty.
    pub origin_deny: Vec<String>,
}

/// `/metrics` and `/stats.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// Serve `/metrics`, `/stats.json` and `/health`. Default true.
    pub enabled: bool,
    /// Number of busiest swarms listed in `/stats.json`. Default 20.
    pub stats_top_swarms: usize,
    /// The busiest swarms of `/stats.json` are ranked at most once per this many seconds and
    /// served from that ranking in between (totals are always current), so a flood of
    /// requests does not cost a pass over every swarm each. Default 1.
    pub stats_cache_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: vec![SocketAddr::from(([0, 0, 0, 0], 8000))],
            workers: 0,
            tls_cert_file: None,
            tls_key_file: None,
            shutdown_grace_secs: 5,
            trust_forwarded_for: false,
            max_tls_handshakes: 1024,
            tls_handshake_timeout_secs: 10,
            http_write_timeout_secs: 10,
        }
    }
}

impl Default for ProtocolConfig {
    fn default() -> Self {
        ProtocolConfig {
            announce_interval_secs: 120,
            peer_timeout_secs: 180,
            max_offers: 10,
            check_answers: true,
            offer_ttl_secs: 120,
            ping_interval_secs: 30,
            idle_timeout_secs: 120,
            http_default_numwant: 50,
            http_max_numwant: 200,
            allow_full_scrape: false,
            max_pending_offers_per_peer: 20,
            peer_id_takeover_after_secs: 60,
        }
    }
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_connections: 100_000,
            max_connections_per_ip: 512,
            max_announces_per_sec: 10,
            announce_burst: 40,
            max_swarms_per_connection: 100,
            max_peers_per_swarm: 10_000,
            max_message_bytes: 64 * 1024,
            max_frame_bytes: 64 * 1024,
            max_http_request_bytes: 8 * 1024,
            max_outbound_queue: 256,
            max_outbound_queue_bytes: 256 * 1024,
            slow_consumer_timeout_secs: 10,
            max_http_announces_per_ip_per_sec: 10,
            http_announce_burst_per_ip: 40,
            max_http_scrapes_per_ip_per_sec: 10,
            http_scrape_burst_per_ip: 40,
            max_scrape_info_hashes: 64,
            max_pings_per_sec: 5,
            ping_burst: 20,
            ipv6_prefix_len: 64,
        }
    }
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            stats_top_swarms: 20,
            stats_cache_secs: 1,
        }
    }
}

impl Config {
    /// Reads and validates a TOML file; errors name the file and line.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_owned(),
            source,
        })?;
        Config::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { line, message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                line,
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text (the path in errors is empty).
    pub fn from_toml(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            line: e
                .span()
                .map(|span| line_of_offset(text, span.start))
                .unwrap_or(0),
            message: e.message().to_owned(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The effective configuration as TOML, every default included.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("the configuration always serializes")
    }

    /// Checks values that TOML types alone cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_owned(),
            })
        };
        if self.server.listen.is_empty() {
            return invalid("server.listen", "at least one address is needed");
        }
        if self.server.tls_cert_file.is_some() != self.server.tls_key_file.is_some() {
            return invalid(
                "server.tls_cert_file",
                "tls_cert_file and tls_key_file are set together",
            );
        }
        if self.protocol.announce_interval_secs == 0 {
            return invalid("protocol.announce_interval_secs", "must be at least 1");
        }
        if self.protocol.peer_timeout_secs == 0 {
            return invalid("protocol.peer_timeout_secs", "must be at least 1");
        }
        if self.protocol.ping_interval_secs == 0 {
            return invalid("protocol.ping_interval_secs", "must be at least 1");
        }
        if self.protocol.idle_timeout_secs < self.protocol.ping_interval_secs {
            return invalid(
                "protocol.idle_timeout_secs",
                "must be at least ping_interval_secs",
            );
        }
        if self.protocol.http_default_numwant > self.protocol.http_max_numwant {
            return invalid(
                "protocol.http_default_numwant",
                "must not exceed http_max_numwant",
            );
        }
        if self.limits.max_frame_bytes > self.limits.max_message_bytes {
            return invalid(
                "limits.max_frame_bytes",
                "must not exceed max_message_bytes",
            );
        }
        if self.limits.max_announces_per_sec == 0 || self.limits.announce_burst == 0 {
            return invalid(
                "limits.max_announces_per_sec",
                "rate and burst must be at least 1",
            );
        }
        if self.limits.max_http_announces_per_ip_per_sec == 0
            || self.limits.http_announce_burst_per_ip == 0
        {
            return invalid(
                "limits.max_http_announces_per_ip_per_sec",
                "rate and burst must be at least 1",
            );
        }
        if self.limits.max_http_scrapes_per_ip_per_sec == 0
            || self.limits.http_scrape_burst_per_ip == 0
        {
            return invalid(
                "limits.max_http_scrapes_per_ip_per_sec",
                "rate and burst must be at least 1",
            );
        }
        if self.protocol.peer_id_takeover_after_secs < 2 * self.protocol.ping_interval_secs {
            return invalid(
                "protocol.peer_id_takeover_after_secs",
                "must be at least twice ping_interval_secs",
            );
        }
        if self.limits.max_pings_per_sec == 0 || self.limits.ping_burst == 0 {
            return invalid(
                "limits.max_pings_per_sec",
                "rate and burst must be at least 1",
            );
        }
        if self.limits.ipv6_prefix_len > 128 {
            return invalid("limits.ipv6_prefix_len", "must be at most 128");
        }
        if self.server.max_tls_handshakes == 0 {
            return invalid("server.max_tls_handshakes", "must be at least 1");
        }
        if self.server.tls_handshake_timeout_secs == 0 || self.server.http_write_timeout_secs == 0 {
            return invalid(
                "server.tls_handshake_timeout_secs",
                "timeouts must be at least 1 second",
            );
        }
        if self.limits.max_message_bytes < 1024 {
            return invalid("limits.max_message_bytes", "must be at least 1024");
        }
        Ok(())
    }

    /// `protocol.announce_interval_secs` as a duration.
    pub fn announce_interval(&self) -> Duration {
        Duration::from_secs(self.protocol.announce_interval_secs)
    }

    /// `protocol.peer_timeout_secs` as a duration.
    pub fn peer_timeout(&self) -> Duration {
        Duration::from_secs(self.protocol.peer_timeout_secs)
    }

    /// `limits.slow_consumer_timeout_secs` as a duration.
    pub fn slow_consumer_timeout(&self) -> Duration {
        Duration::from_secs(self.limits.slow_consumer_timeout_secs)
    }

    /// `protocol.offer_ttl_secs` as a duration.
    pub fn offer_ttl(&self) -> Duration {
        Duration::from_secs(self.protocol.offer_ttl_secs)
    }
}

/// 1-based line number of a byte offset in `text`.
pub(crate) fn line_of_offset(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_round_trip_through_toml() {
        let config = Config::default();
        let text = config.to_toml();
        assert_eq!(Config::from_toml(&text).unwrap(), config);
        assert!(text.contains("max_offers = 10"), "{text}");
    }

    #[test]
    fn empty_file_means_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_field_is_reported_with_its_line() {
        let err = Config::from_toml("[protocol]\nmax_offers = 3\nmax_offerz = 4\n").unwrap_err();
        match err {
            ConfigError::Parse { line, message, .. } => {
                assert_eq!(line, 3);
                assert!(message.contains("max_offerz"), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn inconsistent_values_are_refused() {
        let err = Config::from_toml("[limits]\nmax_frame_bytes = 200000\n").unwrap_err();
        assert!(matches!(
            err,
            ConfigError::Invalid {
                field: "limits.max_frame_bytes",
                ..
            }
        ));
    }
}
