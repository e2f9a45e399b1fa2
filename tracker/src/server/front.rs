//! The front door: a thread of its own that accepts connections and completes their TLS
//! handshakes, then hands each connection to the worker runtime that serves it.
//!
//! Under a flood the worker runtime's run queues hold thousands of busy connection tasks, and
//! a task waits a whole turn of them every time it is woken. A new client's accept and TLS
//! handshake take several such wake-ups, so on the workers alone it waited seconds for them.
//! Here they run on a runtime that has nothing else to do.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Handle;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tracing::{debug, error, warn};

use super::{serve, Shared};

/// A TCP stream that can move from the runtime that accepted it to the one that serves it.
#[derive(Debug)]
pub(crate) struct HandoffStream {
    /// `None` only if moving failed; every operation then fails.
    tcp: Option<TcpStream>,
}

impl HandoffStream {
    /// Registers the socket with the runtime this is called on, instead of the one it was
    /// registered with.
    fn move_to_current_runtime(&mut self) -> io::Result<()> {
        let tcp = self.tcp.take().ok_or_else(moved_out)?;
        self.tcp = Some(TcpStream::from_std(tcp.into_std()?)?);
        Ok(())
    }

    fn tcp(self: Pin<&mut Self>) -> io::Result<Pin<&mut TcpStream>> {
        match &mut self.get_mut().tcp {
            Some(tcp) => Ok(Pin::new(tcp)),
            None => Err(moved_out()),
        }
    }
}

fn moved_out() -> io::Error {
    io::Error::new(io::ErrorKind::NotConnected, "socket lost in the hand-off")
}

impl AsyncRead for HandoffStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.tcp() {
            Ok(tcp) => tcp.poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for HandoffStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.tcp() {
            Ok(tcp) => tcp.poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.tcp() {
            Ok(tcp) => tcp.poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.tcp() {
            Ok(tcp) => tcp.poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.tcp() {
            Ok(tcp) => tcp.poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

/// The running front door.
pub(super) struct FrontDoor {
    /// A task on the worker runtime; aborting it (or the end of that runtime) stops the thread.
    pub keeper: JoinHandle<()>,
    /// Resolves once the thread has stopped accepting and closed its listeners.
    pub closed: oneshot::Receiver<()>,
}

/// Starts the front-door thread accepting on `listeners`; connections are served on the
/// runtime of `workers`. The thread ends when the server shuts down, when that runtime ends,
/// or when [`FrontDoor::keeper`] is aborted.
pub(super) fn start(
    shared: Arc<Shared>,
    listeners: Vec<std::net::TcpListener>,
    workers: Handle,
) -> io::Result<FrontDoor> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Resolves when the worker runtime drops this task (aborted, or the runtime was shut
    // down): a server whose runtime is gone stops accepting.
    let (alive, workers_gone) = oneshot::channel::<()>();
    let (closed_tx, closed) = oneshot::channel();
    let keeper = workers.spawn(async move {
        let _alive = alive;
        std::future::pending::<()>().await
    });
    std::thread::Builder::new()
        .name("segswarm-accept".into())
        .spawn(move || {
            runtime.block_on(async move {
                let mut loops = tokio::task::JoinSet::new();
                for listener in listeners {
                    match TcpListener::from_std(listener) {
                        Ok(listener) => {
                            loops.spawn(accept_loop(shared.clone(), listener, workers.clone()));
                        }
                        Err(e) => error!(error = %e, "listener lost"),
                    }
                }
                tokio::select! {
                    _ = async { while loops.join_next().await.is_some() {} } => {}
                    _ = workers_gone => {}
                }
                // Dropping the accept loops closed the listeners.
                drop(loops);
                let _ = closed_tx.send(());
            });
        })?;
    Ok(FrontDoor { keeper, closed })
}

/// Counts one TLS handshake in progress for as long as it lives.
struct HandshakeSlot(Arc<AtomicUsize>);

impl HandshakeSlot {
    /// A place among `limit` handshakes, if one is free.
    fn take(in_progress: &Arc<AtomicUsize>, limit: usize) -> Option<HandshakeSlot> {
        let mut current = in_progress.load(Ordering::Acquire);
        loop {
            if current >= limit {
                return None;
            }
            match in_progress.compare_exchange_weak(
                current,
                current + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some(HandshakeSlot(in_progress.clone())),
                Err(now) => current = now,
            }
        }
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

async fn accept_loop(shared: Arc<Shared>, listener: TcpListener, workers: Handle) {
    let mut shutdown = shared.shutdown.subscribe();
    let handshakes = Arc::new(AtomicUsize::new(0));
    let max_handshakes = shared.config.server.max_tls_handshakes;
    let handshake_timeout = Duration::from_secs(shared.config.server.tls_handshake_timeout_secs);
    loop {
        let (tcp, remote) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(pair) => pair,
                Err(e) => {
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        if *shutdown.borrow() {
            break;
        }
        let acceptor = shared.tls_acceptor();
        // A flood of clients that open TLS and never finish the handshake must not hold the
        // accepting thread: over the cap, close before any TLS work.
        let handshake = match &acceptor {
            Some(_) => match HandshakeSlot::take(&handshakes, max_handshakes) {
                Some(slot) => Some(slot),
                None => {
                    shared
                        .metrics
                        .error(crate::protocol::ErrorKind::TlsHandshakesFull);
                    debug!(%remote, "TLS handshakes at the cap: closed at accept");
                    continue;
                }
            },
            None => None,
        };
        let _ = tcp.set_nodelay(true);
        // Behind a proxy the client address is in the request headers: counted per IP then.
        let ip = (!shared.config.server.trust_forwarded_for).then_some(remote.ip());
        let slot = shared.admit(ip);
        if slot.is_none() {
            shared
                .metrics
                .error(crate::protocol::ErrorKind::ConnectionLimit);
            debug!(%remote, "connection over the limit");
        }
        let mut stream = HandoffStream { tcp: Some(tcp) };
        let shared = shared.clone();
        match acceptor {
            Some(acceptor) => {
                let workers = workers.clone();
                tokio::spawn(async move {
                    let done =
                        tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await;
                    drop(handshake);
                    match done {
                        Ok(Ok(mut tls)) => {
                            workers.spawn(async move {
                                if tls.get_mut().0.move_to_current_runtime().is_ok() {
                                    serve(shared, tls, remote, slot).await;
                                }
                            });
                        }
                        Ok(Err(e)) => debug!(%remote, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%remote, "TLS handshake timed out"),
                    }
                });
            }
            None => {
                workers.spawn(async move {
                    if stream.move_to_current_runtime().is_ok() {
                        serve(shared, stream, remote, slot).await;
                    }
                });
            }
        }
    }
}

/// Binds a listener; IPv6 sockets are IPv6-only so `0.0.0.0` and `[::]` can share a port.
pub(super) fn bind(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let domain = socket2::Domain::for_address(addr);
    let socket = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}
