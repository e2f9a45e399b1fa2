//! The `segswarm-tracker` daemon.

fn main() -> anyhow::Result<()> {
    let config = segswarm_tracker::config::Config::default();
    print!("{}", config.to_toml());
    Ok(())
}
