//! Prints the swarm ids and tracker info hashes that p2p-media-loader 2.3 players derive for each
//! stream of an HLS multivariant playlist, so a site can check that a seeder and its players meet
//! in the same swarms.
//!
//! `cargo run --example swarm_ids -- MASTER.m3u8 PLAYLIST_URL [SWARM_ID]`

use segswarm::core::stream::{master_playlist_streams, StreamIdentity};

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(url)) = (args.next(), args.next()) else {
        anyhow::bail!("usage: swarm_ids MASTER.m3u8 PLAYLIST_URL [SWARM_ID]");
    };
    let swarm_id = args.next();
    let playlist = std::fs::read_to_string(&path)?;
    let streams = master_playlist_streams(&playlist);
    if streams.is_empty() {
        anyhow::bail!("{path}: no variant or rendition found");
    }
    for stream in streams {
        let identity = StreamIdentity::new(
            swarm_id.as_deref(),
            &url,
            stream.stream_type,
            stream.short_id(),
        );
        println!(
            "{}\tinfo_hash={}\tswarm={}",
            stream.uri,
            identity.info_hash_str(),
            identity.stream_swarm_id
        );
    }
    Ok(())
}
