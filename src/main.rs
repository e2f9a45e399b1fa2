//! The `segswarm` command line.

use clap::{Parser, Subcommand};

/// segswarm: peer-to-peer delivery of HLS video segments.
#[derive(Parser, Debug)]
#[command(name = "segswarm", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print the tracker's default configuration.
    TrackerDefaults,
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::TrackerDefaults => {
            print!("{}", segswarm::tracker::config::Config::default().to_toml());
        }
    }
    Ok(())
}
