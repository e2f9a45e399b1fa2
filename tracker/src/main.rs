//! The `segswarm-tracker` daemon: loads the configuration, starts the server on a multi-thread
//! runtime with `server.workers` threads, reloads lists and TLS on SIGHUP and shuts down
//! gracefully on SIGTERM/SIGINT.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, ValueEnum};
use segswarm_tracker::config::Config;
use segswarm_tracker::server::Server;
use tracing::info;

/// mimalloc instead of glibc's allocator: every relayed message is allocated on the worker that
/// reads the offer and freed on the worker that writes it, and glibc's arenas serialise such
/// cross-thread frees on a lock (a quarter of the tracker's time under aquatic's load tester
/// at 10,000 connections; see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// A WebTorrent (WebSocket) and BitTorrent HTTP tracker.
#[derive(Debug, Parser)]
#[command(name = "segswarm-tracker", version, about)]
struct Args {
    /// Address to listen on (repeatable; IPv4 or IPv6, e.g. `[::]:8000`). Replaces `server.listen`.
    #[arg(long = "listen", value_name = "ADDR")]
    listen: Vec<SocketAddr>,
    /// TOML configuration file.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Print the effective configuration (every default included) and exit.
    #[arg(long)]
    print_config: bool,
    /// Log filter: error, warn, info, debug, trace, or a tracing filter directive.
    #[arg(long, default_value = "info", env = "SEGSWARM_LOG")]
    log_level: String,
    /// Log format.
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut config = match &args.config {
        Some(path) => Config::from_file(path)?,
        None => Config::default(),
    };
    if !args.listen.is_empty() {
        config.server.listen = args.listen.clone();
    }
    config.validate()?;
    if args.print_config {
        print!("{}", config.to_toml());
        return Ok(());
    }
    init_logging(&args.log_level, args.log_format)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all().thread_name("segswarm-worker");
    if config.server.workers > 0 {
        runtime.worker_threads(config.server.workers);
    }
    let runtime = runtime.build().context("cannot start the runtime")?;
    runtime.block_on(run(config))
}

fn init_logging(level: &str, format: LogFormat) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .with_context(|| format!("invalid --log-level {level:?}"))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.with_ansi(false).init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}

async fn run(config: Config) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = signal(SignalKind::hangup()).context("SIGHUP handler")?;
    let mut terminate = signal(SignalKind::terminate()).context("SIGTERM handler")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("SIGINT handler")?;
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let server = Server::start(config).await?;
    info!(workers, "tracker started");
    loop {
        tokio::select! {
            _ = hangup.recv() => {
                info!("SIGHUP: reloading lists and TLS");
                server.reload();
            }
            _ = terminate.recv() => { info!("SIGTERM: shutting down"); break; }
            _ = interrupt.recv() => { info!("SIGINT: shutting down"); break; }
        }
    }
    server.shutdown().await;
    Ok(())
}
