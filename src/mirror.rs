//! `segswarm mirror`: follow origins, mirror what their strategies pick, serve it over HTTP and
//! seed it over WebRTC in the origins' swarms; figures on the admin listener.
//! `--print-config` prints every setting with its default; otherwise the daemon runs until
//! SIGTERM or Ctrl-C; SIGHUP reads the configuration again (`--config` and `--origin`) and
//! applies what can change while running (the log says what waits for a restart). `segswarm mirror list|add URL|remove URL` ask the running daemon, through
//! its admin listener (`admin_listen` of the same configuration), for its manual entries.

use std::path::PathBuf;

use anyhow::Context;
use segswarm::core::native::mirror::admin_client::{listing_text, send};
use segswarm::core::native::mirror::{AdminCommand, DaemonSettings, MirrorConfig, MirrorDaemon};

/// A request to the running daemon.
#[derive(clap::Subcommand, Debug)]
pub enum MirrorAction {
    /// Print what is mirrored: video, origin, strategy, since, until (Unix seconds), bytes, hits.
    List,
    /// Mirror a video (a PeerTube watch URL of a followed origin) until removed.
    Add {
        /// The watch URL.
        url: String,
    },
    /// Stop mirroring a video added with `add` (or listed in `manual`).
    Remove {
        /// The watch URL.
        url: String,
    },
}

#[derive(clap::Args, Debug)]
pub struct MirrorArgs {
    #[command(subcommand)]
    action: Option<MirrorAction>,
    /// The TOML configuration (`--print-config` prints every setting with its default).
    #[arg(long, value_name = "FILE", global = true)]
    config: Option<PathBuf>,
    /// An origin to follow, added to the configuration's: a PeerTube instance URL or an HLS
    /// master playlist URL. Repeat for several.
    #[arg(long = "origin", value_name = "URL")]
    origins: Vec<String>,
    /// Print the effective configuration as TOML and exit.
    #[arg(long)]
    print_config: bool,
}

/// The configuration: `--config` (or the defaults) with the `--origin` URLs added.
fn load_config(path: Option<&PathBuf>, origins: &[String]) -> anyhow::Result<MirrorConfig> {
    let mut config = match path {
        Some(path) => MirrorConfig::from_file(path)?,
        None => MirrorConfig::default(),
    };
    if !origins.is_empty() {
        config.origins.extend(origins.iter().cloned());
        config.validate().context("with the --origin URLs")?;
    }
    Ok(config)
}

/// On each SIGHUP, reads the configuration again and hands it to the daemon's loop.
#[cfg(unix)]
async fn reload_on_sighup(
    path: Option<PathBuf>,
    origins: Vec<String>,
    reloader: tokio::sync::mpsc::Sender<MirrorConfig>,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let Ok(mut hup) = signal(SignalKind::hangup()) else {
        return;
    };
    while hup.recv().await.is_some() {
        match load_config(path.as_ref(), &origins) {
            Ok(config) => {
                if reloader.send(config).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "SIGHUP: configuration not reloaded")
            }
        }
    }
}

pub fn run_command(args: MirrorArgs) -> anyhow::Result<()> {
    let config = load_config(args.config.as_ref(), &args.origins)?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    let runtime = tokio::runtime::Runtime::new().context("tokio runtime")?;
    if let Some(action) = args.action {
        let addr = config
            .admin_listen
            .context("admin_listen is \"off\" in the configuration: no daemon to ask")?;
        let command = match action {
            MirrorAction::List => AdminCommand::List,
            MirrorAction::Add { url } => AdminCommand::Add(url),
            MirrorAction::Remove { url } => AdminCommand::Remove(url),
        };
        let answer = runtime.block_on(send(addr, &command))?;
        if answer.is_array() {
            print!("{}", listing_text(&answer));
        } else {
            println!("{answer}");
        }
        return Ok(());
    }
    drop(runtime);
    // Logs on stderr (`RUST_LOG`), as the other commands.
    crate::native_cli::run_native(async {
        let daemon = MirrorDaemon::start(config, DaemonSettings::default()).await?;
        println!("mirror serving on {}", daemon.base_url());
        if let Some(addr) = daemon.admin_addr() {
            println!("admin listener: http://{addr}/metrics and http://{addr}/stats.json");
        }
        #[cfg(unix)]
        let reloads = tokio::spawn(reload_on_sighup(
            args.config.clone(),
            args.origins.clone(),
            daemon.reloader(),
        ));
        daemon.run(crate::seed::wait_for_signal()).await;
        #[cfg(unix)]
        reloads.abort();
        anyhow::Ok(())
    })
}
