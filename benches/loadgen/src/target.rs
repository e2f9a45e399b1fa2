//! The tracker under load: a `ws://` or `wss://` URL that must resolve to a loopback address, and
//! how to open one WebSocket connection to it (plain TCP or rustls).

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{bail, Context as _};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName, UnixTime};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;
use tokio_tungstenite::tungstenite::http::Uri;
use tokio_tungstenite::WebSocketStream;

/// One open WebSocket to the tracker.
pub type Ws = WebSocketStream<Conn>;

/// Where connections go and how they are secured.
pub struct Target {
    url: String,
    addr: SocketAddr,
    tls: Option<(TlsConnector, ServerName<'static>)>,
}

impl Target {
    /// Parses `url`, resolves it (loopback only) and prepares TLS for `wss://`.
    ///
    /// For `wss://`, either `insecure` (no certificate check) or `ca_file` (PEM roots) is required.
    pub fn new(url: &str, insecure: bool, ca_file: Option<&Path>) -> anyhow::Result<Target> {
        let uri: Uri = url.parse().with_context(|| format!("invalid URL {url}"))?;
        let tls = match uri.scheme_str() {
            Some("ws") => false,
            Some("wss") => true,
            other => bail!("URL scheme must be ws or wss, got {other:?}"),
        };
        let host = uri.host().context("URL has no host")?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .with_context(|| format!("{host} resolves to no address"))?;
        if !addr.ip().is_loopback() {
            bail!("refusing non-loopback target {addr}: this load generator only runs on loopback");
        }
        let tls = if tls {
            let config = client_config(insecure, ca_file)?;
            let name = ServerName::try_from(host.clone())
                .with_context(|| format!("invalid TLS server name {host}"))?;
            Some((TlsConnector::from(Arc::new(config)), name))
        } else {
            None
        };
        Ok(Target {
            url: url.to_owned(),
            addr,
            tls,
        })
    }

    /// The socket address connections go to.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Opens a TCP connection (TLS for `wss://`) and performs the WebSocket handshake.
    pub async fn connect(&self) -> anyhow::Result<Ws> {
        let tcp = TcpStream::connect(self.addr).await.context("tcp connect")?;
        tcp.set_nodelay(true).context("set TCP_NODELAY")?;
        let conn = match &self.tls {
            None => Conn::Plain(tcp),
            Some((connector, name)) => {
                let tls = connector
                    .connect(name.clone(), tcp)
                    .await
                    .context("TLS handshake")?;
                Conn::Tls(Box::new(tls))
            }
        };
        let (ws, _response) = tokio_tungstenite::client_async(self.url.as_str(), conn)
            .await
            .context("WebSocket handshake")?;
        Ok(ws)
    }
}

fn client_config(insecure: bool, ca_file: Option<&Path>) -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .context("TLS protocol versions")?;
    if let Some(path) = ca_file {
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(path)
            .with_context(|| format!("reading {}", path.display()))?
        {
            let cert = cert.with_context(|| format!("parsing {}", path.display()))?;
            roots.add(cert).context("adding CA certificate")?;
        }
        Ok(builder.with_root_certificates(roots).with_no_client_auth())
    } else if insecure {
        Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCert(provider)))
            .with_no_client_auth())
    } else {
        bail!("wss:// needs --ca-file PEM or --insecure")
    }
}

/// Accepts any server certificate (for `--insecure` against self-signed benchmark certificates),
/// but still checks handshake signatures so the TLS work is the same as with a real check.
#[derive(Debug)]
struct AcceptAnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// A client byte stream: plain TCP or TLS over TCP.
pub enum Conn {
    /// `ws://`
    Plain(TcpStream),
    /// `wss://` (boxed: the TLS state is large and most runs are plain).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Conn {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_flush(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Conn::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Conn::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}
