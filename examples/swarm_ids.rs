//! Prints the swarm ids and tracker info hashes that players derive for each stream of an HLS
//! multivariant playlist under an id scheme (p2p-media-loader 2.3 by default), so a site can check
//! that a seeder and its players meet in the same swarms.
//!
//! `cargo run --example swarm_ids -- [--id-scheme pml-2.3|pml-2.2|peertube]
//! [--peertube-uuid UUID] MASTER.m3u8 PLAYLIST_URL [SWARM_ID]`
//!
//! For `peertube` the streams are named after the video uuid and each variant's resolution (the
//! smaller side of its `RESOLUTION`); PLAYLIST_URL and SWARM_ID are not used then.

use segswarm::core::id_scheme::IdScheme;
use segswarm::core::stream::master_playlist_streams;

const USAGE: &str = "usage: swarm_ids [--id-scheme pml-2.3|pml-2.2|peertube] \
                     [--peertube-uuid UUID] MASTER.m3u8 PLAYLIST_URL [SWARM_ID]";

fn main() -> anyhow::Result<()> {
    let mut scheme = IdScheme::default();
    let mut uuid = None;
    let mut positional = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--id-scheme" => {
                let name = args.next().ok_or_else(|| anyhow::anyhow!("{USAGE}"))?;
                scheme = name.parse()?;
            }
            "--peertube-uuid" => {
                uuid = Some(args.next().ok_or_else(|| anyhow::anyhow!("{USAGE}"))?)
            }
            _ => positional.push(arg),
        }
    }
    let mut positional = positional.into_iter();
    let (Some(path), Some(url)) = (positional.next(), positional.next()) else {
        anyhow::bail!("{USAGE}");
    };
    let swarm_id = positional.next();
    let swarm = scheme.swarm(swarm_id.as_deref(), uuid.as_deref(), &url)?;
    let playlist = std::fs::read_to_string(&path)?;
    let streams = master_playlist_streams(&playlist);
    if streams.is_empty() {
        anyhow::bail!("{path}: no variant or rendition found");
    }
    println!("# id scheme {scheme}");
    for stream in streams {
        let identity = scheme.identity(swarm, stream.key());
        let uri = if stream.uri.is_empty() {
            "(embedded audio, not a swarm of its own)"
        } else {
            &stream.uri
        };
        println!(
            "{uri}\tinfo_hash={}\tswarm={}",
            identity.info_hash_str(),
            identity.stream_swarm_id
        );
    }
    Ok(())
}
