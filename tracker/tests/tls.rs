//! Native TLS: a certificate generated in the test, `wss://` and `https://` round trips on the same
//! port, and the certificate replaced on SIGHUP.

use crate::common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use common::*;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// A self-signed certificate for `localhost` and 127.0.0.1, written as PEM files into `dir`.
fn make_cert(dir: &Path) -> CertificateDer<'static> {
    let key =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .expect("generate a certificate");
    write_file(dir, "cert.pem", &key.cert.pem());
    write_file(dir, "key.pem", &key.signing_key.serialize_pem());
    key.cert.der().clone()
}

/// A client that trusts only `cert`.
fn client_config(cert: &CertificateDer<'static>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.clone()).expect("add the test root");
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

async fn tls_connect(
    addr: SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<TlsStream<TcpStream>> {
    let tcp = tcp_connect(addr, None).await?;
    let name = ServerName::try_from("localhost").expect("server name");
    tokio::time::timeout(
        STEP,
        tokio_rustls::TlsConnector::from(config).connect(name, tcp),
    )
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "TLS handshake timed out"))?
}

#[tokio::test]
async fn wss_and_https_round_trips_and_certificate_reload() {
    let dir = temp_dir();
    let first = make_cert(dir.path());
    let config = format!(
        "[server]\ntls_cert_file = {:?}\ntls_key_file = {:?}\n",
        dir.path().join("cert.pem").display().to_string(),
        dir.path().join("key.pem").display().to_string()
    );
    let tracker = Tracker::start_in(dir, &config, &["127.0.0.1:0"]);
    let addr = tracker.addr();
    let trust_first = client_config(&first);

    // wss://: announce and an offer relayed between two TLS clients.
    let ih = Id::random();
    let (a, b) = (Id::random(), Id::random());
    let url = format!("wss://localhost:{}/", addr.port());
    let mut wa = Ws::handshake(
        tls_connect(addr, trust_first.clone()).await.expect("TLS"),
        &url,
        None,
    )
    .await
    .expect("wss handshake");
    let mut wb = Ws::handshake(
        tls_connect(addr, trust_first.clone()).await.expect("TLS"),
        &url,
        None,
    )
    .await
    .expect("wss handshake");
    wa.announce_ok(&announce(ih, a, Some("started"), None))
        .await;
    let offer_id = Id::random();
    wb.announce_ok(&announce_with_offers(
        ih,
        b,
        &[(offer_id, sdp_offer("tls"))],
    ))
    .await;
    let relayed = wa.next_json().await;
    assert_eq!(relayed["offer_id"], offer_id.bin(), "{relayed}");
    assert_eq!(relayed["peer_id"], b.bin(), "{relayed}");

    // https:// on the same port.
    let stream = tls_connect(addr, trust_first.clone()).await.expect("TLS");
    let health = http_get_on(stream, "localhost", "/health").await;
    assert_eq!((health.status, health.text().trim()), (200, "ok"));
    let stream = tls_connect(addr, trust_first.clone()).await.expect("TLS");
    let scrape = http_get_on(
        stream,
        "localhost",
        &format!("/scrape?info_hash={}", ih.url()),
    )
    .await;
    let b = scrape.bencode();
    let entry = b
        .get("files")
        .and_then(|f| f.as_dict())
        .and_then(|f| f.get(&ih.0[..]));
    assert!(entry.is_some(), "{b:?}");

    // A plain-text client on the TLS port gets no tracker service.
    let plain = Ws::try_connect(addr, WsOptions::default()).await;
    assert!(plain.is_err(), "plain WebSocket accepted on the TLS port");

    // Replace the certificate and reload: new connections present the new one.
    let second = make_cert(tracker.dir.path());
    tracker.signal(libc::SIGHUP);
    let trust_second = client_config(&second);
    eventually(
        "the new certificate is served after SIGHUP",
        STEP,
        || async {
            tls_connect(addr, trust_second.clone())
                .await
                .ok()
                .map(|_| ())
        },
    )
    .await;
    assert!(
        tls_connect(addr, trust_first.clone()).await.is_err(),
        "the old certificate is still served"
    );
    // Connections opened before the reload keep working.
    assert_eq!(scrape_counts(&mut wa, ih).await, (0, 2));
}

#[tokio::test]
async fn half_open_tls_handshakes_are_capped_and_closed_at_accept() {
    use tokio::io::AsyncReadExt;
    let dir = temp_dir();
    let cert = make_cert(dir.path());
    let config = format!(
        "[server]\ntls_cert_file = {:?}\ntls_key_file = {:?}\nmax_tls_handshakes = 4\n",
        dir.path().join("cert.pem").display().to_string(),
        dir.path().join("key.pem").display().to_string()
    );
    let tracker = Tracker::start_in(dir, &config, &["127.0.0.1:0"]);
    let addr = tracker.addr();
    // Four clients open TCP and never send a ClientHello.
    let mut half_open = Vec::new();
    for _ in 0..4 {
        half_open.push(tcp_connect(addr, None).await.expect("connect"));
    }
    // Once the four are accepted, a fifth is closed at once, before any TLS.
    eventually(
        "a connection over the cap is closed at accept",
        STEP,
        || async {
            let mut tcp = tcp_connect(addr, None).await.ok()?;
            let mut byte = [0u8; 1];
            match tokio::time::timeout(std::time::Duration::from_millis(500), tcp.read(&mut byte))
                .await
            {
                Ok(Ok(0)) | Ok(Err(_)) => Some(()),
                _ => None,
            }
        },
    )
    .await;
    // When the half-open ones go away, clients get through again.
    drop(half_open);
    let trust = client_config(&cert);
    let tls = eventually("a TLS client gets through", STEP, || async {
        tls_connect(addr, trust.clone()).await.ok()
    })
    .await;
    let url = format!("wss://localhost:{}/", addr.port());
    let mut ws = Ws::handshake(tls, &url, None).await.expect("wss handshake");
    assert_eq!(scrape_counts(&mut ws, Id::random()).await, (0, 0));
    let stream = tls_connect(addr, trust.clone()).await.expect("TLS");
    let metrics = Metrics(http_get_on(stream, "localhost", "/metrics").await.text());
    assert!(metrics.errors("tls_handshakes_full") >= 1.0);
}
