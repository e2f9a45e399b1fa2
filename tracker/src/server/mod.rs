//! The network runtime: listeners (one per listen address, IPv4 and IPv6) served by an
//! accepting thread that also completes TLS handshakes (see `front`), HTTP and WebSocket on one
//! port (hyper answers HTTP and the upgrade handshake, then a lean framing layer of our own
//! carries the WebSocket, see `wsframe`), connection caps, periodic expiry, reload and
//! graceful shutdown.
//!
//! Protocol decisions are made by [`crate::swarm::Roster`]; this module only moves bytes,
//! enforces limits and keeps the counters. Each WebSocket connection is one task on the worker
//! runtime with a small bounded outbox that other connections push relayed offers and answers
//! into.

mod forwarded;
mod front;
mod http;
mod open_conn;
mod outbox;
mod ratelimit;
#[cfg(test)]
mod tests;
pub mod tls;
mod write_timeout;
mod ws;
mod wsframe;

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use dashmap::DashMap;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tracing::{debug, error, info};

use crate::access::{Access, AccessError};
use crate::config::Config;
use crate::metrics::{Metrics, MetricsError};
use crate::protocol::{ErrorKind, Id20};
use crate::swarm::{ConnId, Roster, RosterSettings};
use open_conn::OpenConn;
use ratelimit::IpRateLimiter;

/// The server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS certificate or key could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// An info_hash list could not be loaded.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The metrics registry could not be built.
    #[error("metrics: {0}")]
    Metrics(#[from] MetricsError),
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The accepting thread could not be started.
    #[error("cannot start the accepting thread: {0}")]
    Runtime(std::io::Error),
}

/// Entry point: [`Server::start`].
#[derive(Debug)]
pub struct Server;

/// A started server; dropping it without [`RunningServer::shutdown`] leaves it running until the
/// runtime ends.
#[derive(Debug)]
pub struct RunningServer {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    tasks: Vec<JoinHandle<()>>,
    /// Resolves once the listeners are closed.
    listeners_closed: tokio::sync::oneshot::Receiver<()>,
}

/// State shared by every task of one server.
pub(crate) struct Shared {
    pub config: Config,
    pub roster: Roster,
    pub metrics: Metrics,
    pub access: Access,
    pub tls: RwLock<Option<TlsAcceptor>>,
    /// Open WebSocket connections, as other connections' tasks see them.
    pub conns: DashMap<ConnId, Arc<OpenConn>>,
    next_conn: AtomicU64,
    open_total: AtomicUsize,
    per_ip: DashMap<IpAddr, usize>,
    /// HTTP announce rate per client IP.
    pub http_rate: IpRateLimiter,
    /// HTTP scrape rate per client IP.
    pub http_scrape_rate: IpRateLimiter,
    pub shutdown: watch::Sender<bool>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("listen", &self.config.server.listen)
            .field("open", &self.open_total.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn next_conn_id(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    fn tls_acceptor(&self) -> Option<TlsAcceptor> {
        self.tls.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Counts a new TCP connection against the caps; `None` if it is over a cap. Without `ip`
    /// (the client address is not known yet, behind a proxy) only the total is counted, and
    /// [`ConnSlot::claim_ip`] counts the address later.
    fn admit(self: &Arc<Self>, ip: Option<IpAddr>) -> Option<ConnSlot> {
        let total = self.open_total.fetch_add(1, Ordering::AcqRel);
        if total >= self.config.limits.max_connections {
            self.open_total.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let slot = ConnSlot {
            shared: self.clone(),
            ip: Mutex::new(None),
            transport: AtomicU8::new(TRANSPORT_HTTP),
        };
        self.metrics.http_connections.inc();
        match ip {
            // Dropping the slot releases the total and the gauge.
            Some(ip) if !slot.claim_ip(ip) => None,
            _ => Some(slot),
        }
    }

    /// The key `ip` is counted under by the per-IP limits: an IPv6 address stands for its
    /// network of `limits.ipv6_prefix_len` bits (IPv4-mapped addresses are IPv4).
    pub fn limit_key(&self, ip: IpAddr) -> IpAddr {
        ip_key(ip, self.config.limits.ipv6_prefix_len)
    }

    /// Counts one connection from `ip` against `max_connections_per_ip`; false if over it.
    fn count_ip(&self, ip: IpAddr) -> bool {
        let mut count = self.per_ip.entry(ip).or_insert(0);
        if *count >= self.config.limits.max_connections_per_ip {
            return false;
        }
        *count += 1;
        true
    }

    fn uncount_ip(&self, ip: IpAddr) {
        self.per_ip.remove_if_mut(&ip, |_, count| {
            *count = count.saturating_sub(1);
            *count == 0
        });
    }

    /// Re-reads the info_hash lists and the TLS certificate; failures keep the previous state.
    pub fn reload(&self) {
        match self.access.reload() {
            Ok(()) => {
                let lists = self.access.lists();
                info!(
                    allow = lists.allow.as_ref().map(|a| a.len()),
                    deny = lists.deny.len(),
                    "info_hash lists reloaded"
                );
            }
            Err(e) => error!(error = %e, "info_hash lists not reloaded; previous lists kept"),
        }
        if let (Some(cert), Some(key)) = (
            &self.config.server.tls_cert_file,
            &self.config.server.tls_key_file,
        ) {
            match tls::load_acceptor(cert, key) {
                Ok(acceptor) => {
                    *self.tls.write().unwrap_or_else(|e| e.into_inner()) = Some(acceptor);
                    info!("TLS certificate reloaded");
                }
                Err(e) => error!(error = %e, "TLS certificate not reloaded; previous one kept"),
            }
        }
    }
}

/// IPv4-mapped IPv6 addresses count as their IPv4 address.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}

/// `ip` as a per-IP limit counts it: IPv4 as it is, IPv6 cut to its first `v6_prefix` bits.
fn ip_key(ip: IpAddr, v6_prefix: u8) -> IpAddr {
    match canonical_ip(ip) {
        IpAddr::V6(v6) => {
            let bits = u32::from(v6_prefix.min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            IpAddr::V6((u128::from(v6) & mask).into())
        }
        v4 => v4,
    }
}

/// The distinct info_hashes of a scrape, or [`ErrorKind::TooManyInfoHashes`] when there are
/// more than `max`.
pub(crate) fn scrape_list(mut ids: Vec<Id20>, max: usize) -> Result<Vec<Id20>, ErrorKind> {
    ids.sort_unstable();
    ids.dedup();
    if ids.len() > max {
        return Err(ErrorKind::TooManyInfoHashes);
    }
    Ok(ids)
}

const TRANSPORT_HTTP: u8 = 0;
const TRANSPORT_WS: u8 = 1;

/// One admitted TCP connection; releases its place in the caps and gauges when dropped.
#[derive(Debug)]
pub(crate) struct ConnSlot {
    shared: Arc<Shared>,
    /// The address counted against `max_connections_per_ip`, once known.
    ip: Mutex<Option<IpAddr>>,
    transport: AtomicU8,
}

impl ConnSlot {
    /// The connection became a WebSocket.
    pub fn upgraded(&self) {
        if self.transport.swap(TRANSPORT_WS, Ordering::AcqRel) == TRANSPORT_HTTP {
            self.shared.metrics.http_connections.dec();
            self.shared.metrics.ws_connections.inc();
        }
    }

    /// Counts this connection against `ip`'s cap unless it is counted already (the TCP peer's
    /// address, or an address claimed before); false if `ip` is over the cap.
    pub fn claim_ip(&self, ip: IpAddr) -> bool {
        let ip = self.shared.limit_key(ip);
        let mut counted = self.ip.lock().unwrap_or_else(|e| e.into_inner());
        if counted.is_some() {
            return true;
        }
        if !self.shared.count_ip(ip) {
            return false;
        }
        *counted = Some(ip);
        true
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        match self.transport.load(Ordering::Acquire) {
            TRANSPORT_WS => self.shared.metrics.ws_connections.dec(),
            _ => self.shared.metrics.http_connections.dec(),
        }
        self.shared.open_total.fetch_sub(1, Ordering::AcqRel);
        let counted = self.ip.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(ip) = counted {
            self.shared.uncount_ip(ip);
        }
    }
}

impl Server {
    /// Loads lists and TLS, binds every listen address and starts serving on the current tokio
    /// runtime. Logs `listening address=<ip:port>` for each listener.
    pub async fn start(config: Config) -> Result<RunningServer, ServerError> {
        config.validate()?;
        let access = Access::new(&config.access)?;
        let tls = match (&config.server.tls_cert_file, &config.server.tls_key_file) {
            (Some(cert), Some(key)) => Some(tls::load_acceptor(cert, key)?),
            _ => None,
        };
        let (shutdown, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            roster: Roster::new(RosterSettings::from_config(&config)),
            metrics: Metrics::new()?,
            access,
            tls: RwLock::new(tls),
            conns: DashMap::new(),
            next_conn: AtomicU64::new(1),
            open_total: AtomicUsize::new(0),
            per_ip: DashMap::new(),
            http_rate: IpRateLimiter::default(),
            http_scrape_rate: IpRateLimiter::default(),
            shutdown,
            config,
        });
        let mut listeners = Vec::new();
        for addr in &shared.config.server.listen {
            let listener = front::bind(*addr).map_err(|source| ServerError::Bind {
                addr: *addr,
                source,
            })?;
            let local = listener.local_addr().map_err(|source| ServerError::Bind {
                addr: *addr,
                source,
            })?;
            listeners.push((listener, local));
        }
        let scheme = if shared.tls_acceptor().is_some() {
            "wss/https"
        } else {
            "ws/http"
        };
        let mut addrs = Vec::new();
        for (_, local) in &listeners {
            info!(address = %local, scheme, "listening");
            addrs.push(*local);
        }
        let listeners = listeners
            .into_iter()
            .map(|(listener, _)| listener)
            .collect();
        let front = front::start(shared.clone(), listeners, tokio::runtime::Handle::current())
            .map_err(ServerError::Runtime)?;
        let tasks = vec![front.keeper, tokio::spawn(expiry_loop(shared.clone()))];
        Ok(RunningServer {
            shared,
            addrs,
            tasks,
            listeners_closed: front.closed,
        })
    }
}

impl RunningServer {
    /// The bound addresses (with the real port when 0 was asked for).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.addrs.clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// Re-reads the info_hash lists and TLS certificate (as SIGHUP does). A broken file is
    /// logged and the previous state kept.
    pub fn reload(&self) {
        self.shared.reload();
    }

    /// The Prometheus text of `/metrics`.
    pub fn metrics_text(&self) -> String {
        self.shared.metrics.render(&self.shared.roster)
    }

    /// Stops accepting (the listeners are closed when it returns), sends close frames to every
    /// WebSocket, waits up to `server.shutdown_grace_secs` for connections to end and logs the
    /// final counters.
    pub async fn shutdown(self) {
        let shared = self.shared;
        shared.shutdown.send_replace(true);
        let grace = Duration::from_secs(shared.config.server.shutdown_grace_secs);
        let deadline = tokio::time::Instant::now() + grace;
        let _ = tokio::time::timeout_at(deadline, self.listeners_closed).await;
        while shared.open_total.load(Ordering::Acquire) > 0
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        for task in self.tasks {
            task.abort();
        }
        let totals = shared.roster.totals();
        let (messages_in, messages_out) = shared.metrics.message_totals();
        info!(
            connections_left = shared.open_total.load(Ordering::Acquire),
            swarms = totals.swarms,
            seeders = totals.seeders,
            leechers = totals.leechers,
            messages_in,
            messages_out,
            errors = shared.metrics.error_total(),
            "tracker stopped"
        );
    }
}

/// Serves HTTP on one connection until it closes or upgrades to WebSocket.
async fn serve<I>(shared: Arc<Shared>, io: I, remote: SocketAddr, slot: Option<ConnSlot>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    http::serve_connection(shared, io, remote, slot.map(Arc::new)).await;
}

/// Removes silent peers and expired offers periodically.
async fn expiry_loop(shared: Arc<Shared>) {
    let period = (shared
        .roster
        .settings()
        .peer_timeout
        .min(shared.roster.settings().offer_ttl)
        / 4)
    .clamp(Duration::from_millis(250), Duration::from_secs(30));
    let mut ticker = tokio::time::interval(period);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let limits = &shared.config.limits;
        shared.http_rate.prune(
            limits.max_http_announces_per_ip_per_sec,
            limits.http_announce_burst_per_ip,
            now,
        );
        shared.http_scrape_rate.prune(
            limits.max_http_scrapes_per_ip_per_sec,
            limits.http_scrape_burst_per_ip,
            now,
        );
        let report = shared.roster.expire(now);
        if report.peers > 0 || report.swarms > 0 {
            debug!(peers = report.peers, swarms = report.swarms, "expired");
        }
    }
}
