//! Runs segswarm-tracker inside another program, announces one WebSocket peer to it and prints
//! what the tracker answers, then shuts it down.
//!
//! `cargo run --example embedded_tracker`

use futures_util::{SinkExt, StreamExt};
use segswarm::tracker::config::Config;
use segswarm::tracker::server::Server;
use tokio_tungstenite::tungstenite::Message;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut config = Config::default();
    config.server.listen = vec!["127.0.0.1:0".parse()?];
    let server = Server::start(config).await?;
    let addr = server.local_addrs()[0];
    println!("tracker listening on ws://{addr}");

    let (mut socket, _) = tokio_tungstenite::connect_async(format!("ws://{addr}")).await?;
    // info_hash and peer_id are 20-character binary strings in the WebTorrent protocol.
    let announce = serde_json::json!({
        "action": "announce",
        "info_hash": "example-info-hash-01",
        "peer_id": "-SS0001-example-peer",
        "numwant": 5,
        "event": "started",
        "offers": [],
    });
    socket.send(Message::text(announce.to_string())).await?;
    if let Some(reply) = socket.next().await {
        println!("tracker answered: {}", reply?);
    }
    socket.close(None).await?;

    server.shutdown().await;
    Ok(())
}
