//! What the native commands (`segswarm seed`, `segswarm play`) share: the tracker and WebRTC
//! network flags, and the logging and tokio runtime they run on.

use std::future::Future;
use std::net::SocketAddr;

use anyhow::Context;
use segswarm::core::native::rtc::RtcSettings;

/// Tracker and WebRTC network flags.
#[derive(clap::Args, Debug)]
pub struct NetArgs {
    /// WebSocket tracker URL (`ws://` or `wss://`); repeat for several trackers.
    #[arg(long = "tracker", required = true)]
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
