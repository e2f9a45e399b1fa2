//! The mirror daemon's loop: follow the origins, apply the strategies' plan to the cache and the
//! database, serve what is recorded over HTTP and seed it over WebRTC.
//!
//! [`MirrorDaemon::start`] opens the database and the cache (reconciling them: a file that does
//! not match its record is deleted and its video fetched again), and serves every recorded,
//! verified file at once under `<base>/<uuid>/<origin's file name>` ([`crate::native::origin`]
//! with [`crate::native::origin::OriginConfig::served_files`]: nothing else under the cache
//! directory is reachable). [`MirrorDaemon::check`] reads each due origin's candidates, plans,
//! records the plan, evicts what expired (leaving its swarms), fetches what was added (or is
//! still missing), and seeds each served video in its origin's swarms ([`super::swarms`]; a
//! video served from disk after a restart is resolved again through the API when its origin is
//! next read).
//! An origin that fails is retried after a [`Backoff`] delay, its previous candidates kept, the
//! cache served meanwhile. [`MirrorDaemon::run`] checks every `check_interval_secs` until told
//! to stop, and copies the servers' figures into [`MirrorMetrics`] every second (served on the
//! admin listener, [`super::admin`]), and answers the admin listener's `/mirrors` requests
//! between checks. Manual entries ([`super::manual`]) are added with
//! [`MirrorDaemon::add_manual`] and removed with [`MirrorDaemon::remove_manual`].

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use hyper::StatusCode;
use serde_json::json;
use tokio::sync::{mpsc, watch};

use super::admin::{AdminCommand, AdminRequest, AdminServer, AdminSettings};
use super::cache::{Cache, CacheError};
use super::candidates::{sort_of, CandidateReader};
use super::config::{parse_origin, ConfigError, MirrorConfig, OriginSpec};
use super::fetch::{clear_files, fetch_entry, resolve_entry, FetchError, FetchSettings};
use super::manual::{listing_json, parse_manual_url, uuid_of, ManualError};
use super::metrics::{Figures, MirrorMetrics};
use super::reload::{merge, ReloadReport};
use super::scrape::{ScrapeReader, ScrapeSettings};
use super::state::{State, StateError};
use super::strategy::{plan, Entry, OriginCandidates, Strategy};
use super::swarms::{SwarmSettings, Swarms};
use crate::backoff::{Backoff, BackoffConfig};
use crate::native::origin::{Origin, OriginConfig, OriginError, ServedFiles};
use crate::native::peertube::{PeerTubeClient, PeerTubeError, PeerTubeSettings, ResolvedVideo};
use crate::native::seeder::SeederStats;

/// Settings of the daemon that are not in the configuration file.
#[derive(Debug, Clone, Default)]
pub struct DaemonSettings {
    /// The REST client's timeouts and answer limit. Defaults of [`PeerTubeSettings`].
    pub api: PeerTubeSettings,
    /// Limits of each fetch. Defaults of [`FetchSettings`].
    pub fetch: FetchSettings,
    /// Delays before retrying an origin that failed. Defaults of [`BackoffConfig`] (1 s, doubling,
    /// at most 30 s, full jitter).
    pub retry: BackoffConfig,
    /// The seeders' WebRTC, tracker and rescan settings. Defaults of [`SwarmSettings`].
    pub swarms: SwarmSettings,
    /// Limits of the admin listener. Defaults of [`AdminSettings`].
    pub admin: AdminSettings,
    /// Limits of the tracker scrape of `most-watched-now`. Defaults of [`ScrapeSettings`].
    pub scrape: ScrapeSettings,
}

/// Why the daemon could not start or go on.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The database.
    #[error(transparent)]
    State(#[from] StateError),
    /// The cache directory.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The HTTP server.
    #[error(transparent)]
    Http(#[from] OriginError),
    /// The REST client.
    #[error(transparent)]
    Client(#[from] PeerTubeError),
    /// The admin listener could not listen.
    #[error("admin listener on {addr}: {source}")]
    Admin {
        /// The address.
        addr: std::net::SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// A directory could not be created.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: std::path::PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// What one [`MirrorDaemon::check`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckReport {
    /// Origins whose candidates were read.
    pub refreshed: Vec<String>,
    /// Origins that failed, with why (their previous candidates kept).
    pub origin_failures: Vec<(String, String)>,
    /// Videos fetched and now served.
    pub fetched: Vec<String>,
    /// Videos that could not be fetched, with why (kept, to be fetched at a later check).
    pub fetch_failures: Vec<(String, String)>,
    /// Of those, the videos not fetched for want of room in the cache budget (nothing of them
    /// fetched; tried again when evictions or a larger `cache_bytes` make room).
    pub cache_full: Vec<String>,
    /// Videos dropped (expired); they left their swarms.
    pub evicted: Vec<String>,
    /// Videos that joined their origin's swarms.
    pub seeded: Vec<String>,
    /// Videos served but not seeded, with why (tried again when their origin is next read).
    pub seed_failures: Vec<(String, String)>,
    /// Manual entries of the configuration not recorded yet, with why (tried at every check).
    pub manual_failures: Vec<(String, String)>,
}

/// One followed origin.
#[derive(Debug)]
struct FollowedOrigin {
    /// As configured.
    url: String,
    /// `scheme://host[:port]` of a PeerTube instance.
    instance: String,
    reader: CandidateReader,
    /// Peer counts of its candidates, for `most-watched-now`.
    scraper: ScrapeReader,
    /// The last candidates read.
    last: Option<OriginCandidates>,
    backoff: Backoff,
    /// When it is read next.
    next_due: Instant,
}

/// The running mirror. See the module documentation.
#[derive(Debug)]
pub struct MirrorDaemon {
    config: MirrorConfig,
    settings: DaemonSettings,
    client: PeerTubeClient,
    state: State,
    cache: Cache,
    served: ServedFiles,
    http: Origin,
    swarms: Swarms,
    metrics: Arc<MirrorMetrics>,
    admin: Option<AdminServer>,
    /// The admin listener's `/mirrors` requests; taken by [`MirrorDaemon::run`].
    admin_requests: Option<mpsc::Receiver<AdminRequest>>,
    origins: Vec<FollowedOrigin>,
    /// The configuration's manual entries not recorded yet.
    manual_pending: BTreeSet<String>,
    /// Checks done since the start.
    checks: watch::Sender<u64>,
    /// HTTP requests of each video already added to its hits in the database.
    hits_recorded: BTreeMap<String, u64>,
    /// Configurations to reload ([`MirrorDaemon::reloader`]); taken by [`MirrorDaemon::run`].
    reloads: (
        mpsc::Sender<MirrorConfig>,
        Option<mpsc::Receiver<MirrorConfig>>,
    ),
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// `url` as a followed origin, due now; `None` (logged) for one that cannot be followed.
fn follow(url: &str, retry: &BackoffConfig) -> Option<FollowedOrigin> {
    match parse_origin(url) {
        Ok(OriginSpec::PeerTube(instance)) => Some(FollowedOrigin {
            url: url.to_owned(),
            instance,
            reader: CandidateReader::default(),
            scraper: ScrapeReader::default(),
            last: None,
            backoff: Backoff::new(retry.clone()),
            next_due: Instant::now(),
        }),
        Ok(OriginSpec::Hls(_)) => {
            tracing::warn!(origin = %url, "HLS master playlist origins are not mirrored yet");
            None
        }
        Err(e) => {
            tracing::warn!(origin = %url, error = %e, "origin ignored");
            None
        }
    }
}

fn create_dir(path: &std::path::Path) -> Result<(), DaemonError> {
    std::fs::create_dir_all(path).map_err(|source| DaemonError::Io {
        path: path.to_owned(),
        source,
    })
}

impl MirrorDaemon {
    /// How often [`MirrorDaemon::run`] copies the servers' figures into the metrics.
    const METRICS_REFRESH: Duration = Duration::from_secs(1);

    /// Opens the database and the cache, reconciles them, and starts serving. Must run inside a
    /// tokio runtime.
    pub async fn start(
        config: MirrorConfig,
        settings: DaemonSettings,
    ) -> Result<Self, DaemonError> {
        if let Some(dir) = config
            .database
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
        {
            create_dir(dir)?;
        }
        create_dir(&config.cache_dir)?;
        let mut state = State::open(&config.database)?;
        let records = state.files()?;
        let (cache, reconciled) = Cache::open(&config.cache_dir, config.cache_bytes, &records)?;
        // A video with a file missing or damaged is fetched again whole.
        let damaged: BTreeSet<String> = reconciled
            .dropped
            .iter()
            .map(|(uuid, path, why)| {
                tracing::warn!(%uuid, %path, %why, "mirrored file dropped; fetching the video again");
                uuid.clone()
            })
            .collect();
        for uuid in &damaged {
            let _ = cache.remove_video(uuid);
            clear_files(&mut state, uuid)?;
        }
        let served_set: BTreeSet<String> = reconciled
            .kept
            .iter()
            .filter(|(uuid, _)| !damaged.contains(uuid))
            .map(|(uuid, path)| format!("{uuid}/{path}"))
            .collect();
        tracing::info!(
            files = served_set.len(),
            bytes = reconciled.bytes,
            strays = reconciled.strays.len(),
            "mirror cache opened"
        );
        let served: ServedFiles = ServedFiles::default();
        *served
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = served_set;
        let mut http_config = OriginConfig::new(&config.cache_dir, config.listen);
        http_config.served_files = Some(served.clone());
        http_config.count_bytes_by_dir = true;
        let http = Origin::start(http_config).await?;
        let client = PeerTubeClient::new(settings.api.clone())?;
        let swarms = Swarms::new(
            settings.swarms.clone(),
            config.upload_bytes_per_sec,
            config.max_peers,
            config.max_seeded_videos,
        );
        let metrics = Arc::new(MirrorMetrics::new());
        let (commands, admin_requests) = mpsc::channel(settings.admin.max_pending_commands.max(1));
        let admin = match config.admin_listen {
            Some(addr) => Some(
                AdminServer::start(addr, metrics.clone(), commands, settings.admin.clone())
                    .await
                    .map_err(|source| DaemonError::Admin { addr, source })?,
            ),
            None => None,
        };
        let origins = config
            .origins
            .iter()
            .filter_map(|url| follow(url, &settings.retry))
            .collect();
        let manual_pending = config.manual.iter().cloned().collect();
        Ok(Self {
            config,
            settings,
            client,
            state,
            cache,
            served,
            http,
            swarms,
            metrics,
            admin,
            admin_requests: Some(admin_requests),
            origins,
            manual_pending,
            checks: watch::Sender::new(0),
            hits_recorded: BTreeMap::new(),
            reloads: {
                let (tx, rx) = mpsc::channel(1);
                (tx, Some(rx))
            },
        })
    }

    /// The base URL videos are served under: `<base><uuid>/<file>`.
    pub fn base_url(&self) -> String {
        self.http.base_url()
    }

    /// The cache's bytes stored and reserved.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The HTTP server's counters.
    pub fn http_stats(&self) -> crate::native::origin::OriginStatsSnapshot {
        self.http.stats()
    }

    /// The number of checks done since the start, updated as each ends.
    pub fn checks(&self) -> watch::Receiver<u64> {
        self.checks.subscribe()
    }

    /// The figures served on the admin listener.
    pub fn metrics(&self) -> &MirrorMetrics {
        &self.metrics
    }

    /// The admin listener's address, if there is one.
    pub fn admin_addr(&self) -> Option<std::net::SocketAddr> {
        self.admin.as_ref().map(AdminServer::local_addr)
    }

    /// Copies what the HTTP server and the seeders count into [`MirrorDaemon::metrics`].
    pub fn refresh_metrics(&self) {
        let p2p_bytes = self
            .swarms
            .stats()
            .into_iter()
            .map(|(uuid, s)| (uuid, s.uploaded_bytes()))
            .collect();
        self.metrics.observe(Figures {
            http_bytes: self.http.body_bytes_by_dir(),
            p2p_bytes,
            cache_bytes: self.cache.usage().stored,
            cache_entries: self.served_videos().len() as u64,
        });
    }

    /// Adds the HTTP requests served for each mirrored video since the last call to its hits in
    /// the database (those of a video no longer recorded are dropped).
    pub fn record_hits(&mut self) {
        for (uuid, n) in self.http.requests_by_dir() {
            let seen = self.hits_recorded.entry(uuid.clone()).or_default();
            let new = n.saturating_sub(*seen);
            *seen = n;
            if new > 0 {
                if let Err(e) = self.state.add_hits(&uuid, new) {
                    tracing::warn!(%uuid, error = %e, "hits not recorded");
                }
            }
        }
    }

    /// Each video seeded over WebRTC, with its seeder's statistics.
    pub fn seeder_stats(&self) -> BTreeMap<String, SeederStats> {
        self.swarms.stats()
    }

    /// The uuids of the videos served now.
    pub fn served_videos(&self) -> BTreeSet<String> {
        self.served
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .iter()
            .filter_map(|k| k.split('/').next().map(str::to_owned))
            .collect()
    }

    fn unserve(&self, uuid: &str) {
        let prefix = format!("{uuid}/");
        self.served
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .retain(|k| !k.starts_with(&prefix));
    }

    /// Reads the due origins, plans, records, evicts and fetches. See the module documentation.
    pub async fn check(&mut self) -> CheckReport {
        let mut report = CheckReport::default();
        let now = Instant::now();
        let held: BTreeSet<String> = match self.state.entries() {
            Ok(e) => e.into_iter().map(|r| r.entry.uuid).collect(),
            Err(e) => {
                tracing::error!(error = %e, "mirror database unreadable; check skipped");
                return report;
            }
        };
        let sorts: BTreeSet<_> = self
            .config
            .strategies
            .iter()
            .filter_map(|s| sort_of(s.strategy))
            .collect();
        let watched_now = self
            .config
            .strategies
            .iter()
            .any(|s| s.strategy == Strategy::MostWatchedNow);
        let seeded = self.swarms.seeded();
        for o in self.origins.iter_mut().filter(|o| o.next_due <= now) {
            let read = o
                .reader
                .read(
                    &self.client,
                    &o.url,
                    &o.instance,
                    &sorts,
                    self.config.list_count,
                    &held,
                )
                .await;
            match read {
                Ok(mut c) => {
                    if watched_now {
                        o.scraper
                            .count_peers(
                                &self.client,
                                &o.instance,
                                &mut c,
                                &seeded,
                                &self.settings.scrape,
                            )
                            .await;
                    }
                    o.last = Some(c);
                    o.backoff.reset();
                    o.next_due = now + Duration::from_secs(self.config.check_interval_secs);
                    report.refreshed.push(o.url.clone());
                }
                Err(e) => {
                    let delay = o.backoff.next_delay(None, rand::random::<f64>());
                    o.next_due = now + delay;
                    tracing::warn!(origin = %o.url, error = %e, retry_in = ?delay, "origin failed; previous candidates kept");
                    report.origin_failures.push((o.url.clone(), e.to_string()));
                }
            }
        }
        self.add_pending_manual(&mut report).await;
        let applied = self.apply_plan(&mut report);
        for uuid in &report.evicted {
            self.swarms.leave(uuid).await;
        }
        if let Err(e) = applied {
            tracing::error!(error = %e, "mirror database write failed; check stopped");
            return report;
        }
        self.fetch_missing(&mut report).await;
        self.seed_missing(&mut report).await;
        self.metrics.record_check(&report);
        self.refresh_metrics();
        self.record_hits();
        self.checks.send_modify(|n| *n += 1);
        report
    }

    /// Seeds `video` (served from the cache) in its origin's swarms.
    async fn seed(&mut self, video: &ResolvedVideo, report: &mut CheckReport) {
        let uuid = video.details.uuid.clone();
        match self.swarms.join(self.cache.root(), video).await {
            Ok(()) => report.seeded.push(uuid),
            Err(e) => {
                tracing::warn!(%uuid, error = %e, "mirrored video not seeded; served over HTTP only");
                report.seed_failures.push((uuid, e.to_string()));
            }
        }
    }

    /// Seeds the served videos that are not seeded yet (served from disk since a restart, or
    /// refused before) whose origin was read in this check, while there is room.
    async fn seed_missing(&mut self, report: &mut CheckReport) {
        let entries: Vec<Entry> = match self.state.entries() {
            Ok(e) => e.into_iter().map(|r| r.entry).collect(),
            Err(e) => {
                tracing::error!(error = %e, "mirror database unreadable; seeding skipped");
                return;
            }
        };
        let served = self.served_videos();
        let seeded = self.swarms.seeded();
        for entry in entries {
            if self.swarms.seeded().len() >= self.swarms.max_videos() {
                break;
            }
            let tried = report.seeded.contains(&entry.uuid)
                || report.seed_failures.iter().any(|(u, _)| *u == entry.uuid);
            if tried || seeded.contains(&entry.uuid) || !served.contains(&entry.uuid) {
                continue;
            }
            let Some(instance) = self
                .origins
                .iter()
                .find(|o| o.url == entry.origin && report.refreshed.contains(&o.url))
                .map(|o| o.instance.clone())
            else {
                continue;
            };
            match resolve_entry(&self.client, &entry, &instance).await {
                Ok(video) => self.seed(&video, report).await,
                Err(e) => report
                    .seed_failures
                    .push((entry.uuid.clone(), e.to_string())),
            }
        }
    }

    fn apply_plan(&mut self, report: &mut CheckReport) -> Result<(), StateError> {
        let candidates: Vec<OriginCandidates> =
            self.origins.iter().filter_map(|o| o.last.clone()).collect();
        let entries: Vec<_> = self.state.entries()?.into_iter().map(|r| r.entry).collect();
        let decided = plan(&self.config.strategies, &candidates, &entries, unix_now());
        self.state.apply(&decided)?;
        for e in &decided.expire {
            self.unserve(&e.uuid);
            if let Err(err) = self.cache.remove_video(&e.uuid) {
                tracing::warn!(uuid = %e.uuid, error = %err, "evicted video's files not deleted");
            }
            tracing::info!(uuid = %e.uuid, strategy = e.strategy.as_str(), "video evicted");
            report.evicted.push(e.uuid.clone());
        }
        Ok(())
    }

    /// Fetches every recorded entry without files whose origin is not waiting out a backoff.
    async fn fetch_missing(&mut self, report: &mut CheckReport) {
        let (entries, files) = match (self.state.entries(), self.state.files()) {
            (Ok(e), Ok(f)) => (e, f),
            (Err(e), _) | (_, Err(e)) => {
                tracing::error!(error = %e, "mirror database unreadable; fetches skipped");
                return;
            }
        };
        let with_files: BTreeSet<&str> = files.iter().map(|(u, _)| u.as_str()).collect();
        let by_url: BTreeMap<String, usize> = self
            .origins
            .iter()
            .enumerate()
            .map(|(i, o)| (o.url.clone(), i))
            .collect();
        let now = Instant::now();
        for record in entries {
            let entry = record.entry;
            if with_files.contains(entry.uuid.as_str()) {
                continue;
            }
            let Some(&i) = by_url.get(&entry.origin) else {
                continue;
            };
            if self.origins[i].next_due > now && self.origins[i].backoff.failures() > 0 {
                continue;
            }
            let instance = self.origins[i].instance.clone();
            let fetched = fetch_entry(
                &self.client,
                &self.cache,
                &mut self.state,
                &entry,
                &instance,
                &self.settings.fetch,
            )
            .await;
            match fetched {
                Ok(f) => {
                    self.served
                        .write()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .extend(
                            f.files
                                .iter()
                                .map(|file| format!("{}/{}", entry.uuid, file.path)),
                        );
                    tracing::info!(uuid = %entry.uuid, bytes = f.stored_bytes, strategy = entry.strategy.as_str(), "video mirrored");
                    report.fetched.push(entry.uuid.clone());
                    self.seed(&f.video, report).await;
                }
                Err(e) => {
                    if let FetchError::Cache(CacheError::Full {
                        needed,
                        free,
                        budget,
                    }) = &e
                    {
                        tracing::warn!(uuid = %entry.uuid, needed, free, budget, "cache full: video not fetched; the cache is served as it is (raise cache_bytes or lower the strategies' size_bytes)");
                        report.cache_full.push(entry.uuid.clone());
                    }
                    if e.is_origin_failure() {
                        let o = &mut self.origins[i];
                        let delay = o.backoff.next_delay(None, rand::random::<f64>());
                        o.next_due = now + delay;
                    }
                    tracing::warn!(uuid = %entry.uuid, error = %e, "fetch failed; retried later");
                    report
                        .fetch_failures
                        .push((entry.uuid.clone(), e.to_string()));
                }
            }
        }
    }

    /// Records the configuration's manual entries not recorded yet (once per start; an entry
    /// removed at run time is not added again before the next start).
    async fn add_pending_manual(&mut self, report: &mut CheckReport) {
        for url in std::mem::take(&mut self.manual_pending) {
            if let Err(e) = self.add_manual(&url).await {
                tracing::warn!(%url, error = %e, "manual entry not recorded; tried again at the next check");
                report.manual_failures.push((url.clone(), e.to_string()));
                if !e.is_bad_request() {
                    self.manual_pending.insert(url);
                }
            }
        }
    }

    /// Records the video of the watch URL `url` (of a followed PeerTube origin) as a manual
    /// entry: never expired, kept across restarts, fetched at the next check (its origin is made
    /// due now). A video another strategy holds becomes manual. Asks the origin's API for it.
    pub async fn add_manual(&mut self, url: &str) -> Result<Entry, ManualError> {
        let video = parse_manual_url(url)?;
        let followed = self
            .origins
            .iter_mut()
            .find(|o| o.instance == video.instance)
            .ok_or_else(|| ManualError::NotFollowed {
                instance: video.instance.clone(),
            })?;
        followed.next_due = Instant::now();
        let origin = followed.url.clone();
        let details = self.client.video(&video).await?;
        let entry = Entry {
            origin,
            uuid: details.uuid.clone(),
            strategy: Strategy::Manual,
            since: unix_now(),
            until: None,
            bytes: details.hls_bytes(),
        };
        self.state.upsert(&entry)?;
        tracing::info!(%url, uuid = %entry.uuid, "manual entry added");
        Ok(entry)
    }

    /// Drops the manual entry of the watch URL `url`: no longer served, its files deleted, its
    /// swarms left. Returns its uuid. Refuses a video held by a strategy.
    pub async fn remove_manual(&mut self, url: &str) -> Result<String, ManualError> {
        let video = parse_manual_url(url)?;
        let uuid = uuid_of(&self.client, &video).await?;
        let held = self.state.entry(&uuid)?;
        if held.is_none_or(|r| r.entry.strategy != Strategy::Manual) {
            return Err(ManualError::NotManual(uuid));
        }
        self.unserve(&uuid);
        clear_files(&mut self.state, &uuid)?;
        self.state.remove(&uuid)?;
        if let Err(e) = self.cache.remove_video(&uuid) {
            tracing::warn!(%uuid, error = %e, "removed video's files not deleted");
        }
        self.swarms.leave(&uuid).await;
        self.manual_pending.remove(url);
        tracing::info!(%url, %uuid, "manual entry removed");
        Ok(uuid)
    }

    /// What is mirrored, as `GET /mirrors` answers it ([`listing_json`]).
    pub fn mirrors_json(&self) -> Result<serde_json::Value, StateError> {
        Ok(listing_json(&self.state.entries()?, &self.served_videos()))
    }

    /// Answers an admin listener's `/mirrors` request.
    pub async fn answer_admin(&mut self, command: AdminCommand) -> (StatusCode, serde_json::Value) {
        let failed = |e: ManualError| {
            let status = if e.is_bad_request() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::BAD_GATEWAY
            };
            (status, json!({ "error": e.to_string() }))
        };
        match command {
            AdminCommand::List => {
                self.record_hits();
                match self.mirrors_json() {
                    Ok(v) => (StatusCode::OK, v),
                    Err(e) => (
                        StatusCode::INTERNAL_SERVER_ERROR,
                        json!({ "error": e.to_string() }),
                    ),
                }
            }
            AdminCommand::Add(url) => match self.add_manual(&url).await {
                Ok(e) => (
                    StatusCode::OK,
                    json!({ "added": e.uuid, "origin": e.origin, "note": "fetched at the next check" }),
                ),
                Err(e) => failed(e),
            },
            AdminCommand::Remove(url) => match self.remove_manual(&url).await {
                Ok(uuid) => (StatusCode::OK, json!({ "removed": uuid })),
                Err(e) => failed(e),
            },
        }
    }

    /// Applies a new configuration (SIGHUP) as [`super::reload`] says: the settings that take
    /// effect at once do, the others are reported and kept until a restart. A configuration
    /// that does not validate changes nothing.
    pub fn reload(&mut self, new: MirrorConfig) -> Result<ReloadReport, ConfigError> {
        new.validate()?;
        let (next, report) = merge(&self.config, &new);
        if next.origins != self.config.origins {
            let mut kept: BTreeMap<String, FollowedOrigin> = std::mem::take(&mut self.origins)
                .into_iter()
                .map(|o| (o.url.clone(), o))
                .collect();
            self.origins = next
                .origins
                .iter()
                .filter_map(|url| {
                    kept.remove(url)
                        .or_else(|| follow(url, &self.settings.retry))
                })
                .collect();
        }
        let added_manual = next
            .manual
            .iter()
            .filter(|u| !self.config.manual.contains(u));
        self.manual_pending.extend(added_manual.cloned());
        if next.check_interval_secs < self.config.check_interval_secs {
            let soonest = Instant::now() + Duration::from_secs(next.check_interval_secs);
            for o in &mut self.origins {
                o.next_due = o.next_due.min(soonest);
            }
        }
        self.cache.set_budget(next.cache_bytes);
        self.config = next;
        tracing::info!(applied = ?report.applied, ignored_until_restart = ?report.ignored_until_restart, "mirror configuration reloaded");
        Ok(report)
    }

    /// Where to send a configuration for the running loop to [`MirrorDaemon::reload`] (what the
    /// SIGHUP handler does); the loop takes one at a time, between checks.
    pub fn reloader(&self) -> mpsc::Sender<MirrorConfig> {
        self.reloads.0.clone()
    }

    /// Makes every origin due now: the next [`MirrorDaemon::check`] reads them all, backoffs
    /// included.
    pub fn make_all_due(&mut self) {
        let now = Instant::now();
        for o in &mut self.origins {
            o.next_due = now;
        }
    }

    /// When the next origin is due (in `check_interval_secs` when there is none).
    pub fn next_due(&self) -> Instant {
        self.origins
            .iter()
            .map(|o| o.next_due)
            .min()
            .unwrap_or_else(|| {
                Instant::now() + Duration::from_secs(self.config.check_interval_secs)
            })
    }

    /// Checks whenever an origin is due until `stop` completes, then stops serving.
    pub async fn run(mut self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut requests = self.admin_requests.take();
        let mut reloads = self.reloads.1.take();
        loop {
            let due = tokio::time::Instant::from_std(self.next_due());
            let wake = due.min(tokio::time::Instant::now() + Self::METRICS_REFRESH);
            let request = async {
                match requests.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            };
            let reload = async {
                match reloads.as_mut() {
                    Some(r) => r.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = &mut stop => break,
                Some((command, reply)) = request => {
                    let answer = self.answer_admin(command).await;
                    let _ = reply.send(answer);
                    continue;
                }
                Some(config) = reload => {
                    if let Err(e) = self.reload(config) {
                        tracing::error!(error = %e, "mirror configuration not reloaded; running on the previous one");
                    }
                    continue;
                }
                _ = tokio::time::sleep_until(wake) => {}
            }
            self.refresh_metrics();
            self.record_hits();
            if wake < due {
                continue;
            }
            tokio::select! {
                _ = &mut stop => break,
                _ = self.check() => {}
            }
        }
        self.shutdown().await;
    }

    /// Leaves every swarm and stops serving (open responses get the HTTP server's grace time).
    pub async fn shutdown(self) {
        self.swarms.shutdown().await;
        self.http.shutdown().await;
        tracing::info!("mirror stopped");
    }
}
