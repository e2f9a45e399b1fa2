//! The `segswarm` command line.

mod mirror;
mod native_cli;
mod play;
mod seed;
mod simulate;

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
    /// Simulate a swarm of viewers (deterministic for a given seed) and report offload and stalls.
    Simulate(simulate::SimulateArgs),
    /// Seed an HLS directory to its swarms (one per stream); with --http, also serve it as the origin.
    Seed(seed::SeedArgs),
    /// Play an HLS stream through the swarm, headless, and report bytes by source and stalls.
    Play(play::PlayArgs),
    /// Mirror origins' most watched videos into a bounded cache; list, add, remove manual entries.
    Mirror(mirror::MirrorArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Simulate(args) => simulate::run_command(args),
        Command::Seed(args) => seed::run_command(args),
        Command::Play(args) => play::run_command(args),
        Command::Mirror(args) => mirror::run_command(args),
    }
}
