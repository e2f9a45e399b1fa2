//! What the native commands (`segswarm seed`, `segswarm play`) share: the tracker and WebRTC
//! network flags, the swarm naming flags, and the logging and tokio runtime they run on.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::{bail, Context};
use segswarm::core::id_scheme::IdScheme;
use segswarm::core::native::rtc::RtcSettings;

/// How the swarms are named: the id scheme and its inputs.
#[derive(clap::Args, Debug)]
pub struct SwarmArgs {
    /// Swarm id scheme of the players to meet: `pml-2.3` (p2p-media-loader 2.3), `pml-2.2`
    /// (p2p-media-loader 2.2, the player of PeerTube 7.1 to 8.0) or `peertube` (PeerTube's
    /// `pt-v2-<uuid>-...-<resolution>` ids; needs --peertube-uuid).
    /// Default `pml-2.3`; with `segswarm seed --peertube`, the scheme of the instance's players
    /// (by its version).
    #[arg(long, value_parser = parse_id_scheme)]
    pub id_scheme: Option<IdScheme>,
    /// The PeerTube video's uuid (with --id-scheme peertube). Each variant's resolution is the
    /// smaller side of its RESOLUTION attribute, as PeerTube numbers its files.
    #[arg(long)]
    pub peertube_uuid: Option<String>,
    /// Explicit swarm id (p2p-media-loader `swarmId`), when the site gives its players one
    /// (pml-2.3 and pml-2.2 schemes).
    #[arg(long)]
    pub swarm_id: Option<String>,
}

fn parse_id_scheme(s: &str) -> Result<IdScheme, String> {
    s.parse()
        .map_err(|e: segswarm::core::id_scheme::IdSchemeError| e.to_string())
}

impl SwarmArgs {
    /// The id scheme given, or the default (`pml-2.3`).
    pub fn scheme(&self) -> IdScheme {
        self.id_scheme.unwrap_or_default()
    }

    /// Refuses flags that do not go together.
    pub fn check(&self) -> anyhow::Result<()> {
        match (self.scheme(), &self.peertube_uuid, &self.swarm_id) {
            (IdScheme::PeerTube, None, _) => bail!(
                "--id-scheme peertube needs --peertube-uuid UUID: PeerTube names each stream's \
                 swarm after the video's uuid (the `uuid` of /api/v1/videos/{{id}})"
            ),
            (IdScheme::PeerTube, Some(_), Some(_)) => bail!(
                "--swarm-id is not used by --id-scheme peertube (swarms are named after \
                 --peertube-uuid)"
            ),
            (IdScheme::Pml23 | IdScheme::Pml22, Some(_), _) => bail!(
                "--peertube-uuid goes with --id-scheme peertube (not {})",
                self.scheme()
            ),
            _ => Ok(()),
        }
    }
}

/// Tracker and WebRTC network flags.
#[derive(clap::Args, Debug)]
pub struct NetArgs {
    /// WebSocket tracker URL (`ws://` or `wss://`); repeat for several trackers (required, but
    /// for `segswarm seed --peertube`, which joins the instance's own tracker).
    #[arg(long = "tracker")]
    pub trackers: Vec<String>,
    /// Local UDP address for WebRTC; repeat for several (default 0.0.0.0:0: every non-loopback
    /// interface).
    #[arg(long = "udp")]
    pub udp: Vec<SocketAddr>,
    /// Offer loopback addresses as WebRTC candidates (single-host setups, tests; with
    /// `--udp 127.0.0.1:0` on a host without other interfaces).
    #[arg(long)]
    pub loopback_candidates: bool,
}

impl NetArgs {
    /// The trackers given; an error when there are none.
    pub fn required_trackers(&self) -> anyhow::Result<Vec<String>> {
        if self.trackers.is_empty() {
            bail!("give --tracker ws://HOST:PORT (the WebSocket tracker the players use)");
        }
        Ok(self.trackers.clone())
    }

    /// Applies the WebRTC flags to `rtc`.
    pub fn apply(&self, rtc: &mut RtcSettings) {
        if !self.udp.is_empty() {
            rtc.udp_addrs = self.udp.clone();
        }
        rtc.include_loopback_candidates = self.loopback_candidates;
    }
}

/// Logs to stderr (`RUST_LOG`, default: warnings, segswarm-core at info, the WebRTC crates'
/// errors only: they warn about routine ICE and DTLS events) and runs `main` on a multi-threaded
/// tokio runtime.
pub fn run_native<F>(main: F) -> anyhow::Result<()>
where
    F: Future<Output = anyhow::Result<()>>,
{
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "warn,segswarm_core=info,rtc=error,rtc_ice=error,rtc_dtls=error,webrtc=error".into()
            }),
        )
        .try_init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(main)
}
