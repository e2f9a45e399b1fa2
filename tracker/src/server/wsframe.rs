//! A lean server-side WebSocket framing layer (RFC 6455) for the tracker's connections.
//!
//! Why not tungstenite's stream after the handshake: its read buffer keeps the capacity of the
//! largest message a connection ever sent (an announce with offers is several KiB) for the
//! connection's whole life, which alone exceeds the tracker's memory budget per peer. Here the
//! read buffer shrinks back to [`IDLE_READ_BUFFER`] bytes after each message and the write buffer
//! is released after each flush, so an idle connection holds a few hundred bytes. Outgoing
//! messages are batched into one write.
//!
//! A connection is a [`FrameReader`] and a [`FrameWriter`] over the two halves of the socket,
//! so the connection task keeps reading requests while a slow reader's socket is still taking
//! earlier messages.
//!
//! Scope: what a tracker needs and RFC 6455 requires of a server: masked client frames,
//! fragmentation, ping/pong, close handshake, UTF-8 validation of text, frame and message size
//! limits checked from the header before any payload is buffered. No extensions.
//!
//! Cancel safety: [`FrameReader::next`] and [`FrameWriter::write_some`] keep all state in
//! `self`, so both can be used in `tokio::select!`.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

/// Read buffer kept by an idle connection, bytes.
pub(crate) const IDLE_READ_BUFFER: usize = 256;
/// Write buffer capacity kept between flushes, bytes.
const KEPT_WRITE_BUFFER: usize = 0;
/// The read buffer grows by at most this much (or by what it already holds, whichever is more)
/// per read, so a frame header alone does not reserve the frame's whole length.
const READ_GROWTH: usize = 4096;

/// The longest header of a frame the server sends (unmasked, 64-bit length).
const MAX_SERVER_HEADER: usize = 10;

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

/// Why a connection cannot go on.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FrameError {
    /// The socket failed or closed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the TCP connection without a close frame.
    #[error("connection closed")]
    Eof,
    /// A frame or message above the configured limit.
    #[error("message too large")]
    TooLarge,
    /// A violation of RFC 6455 (unmasked frame, reserved bits, bad opcode, ...).
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A text message that is not UTF-8.
    #[error("text message is not UTF-8")]
    InvalidUtf8,
}

impl FrameError {
    /// The close code to send for this error, if a close frame makes sense.
    pub fn close_code(&self) -> Option<u16> {
        match self {
            FrameError::TooLarge => Some(1009),
            FrameError::Protocol(_) => Some(1002),
            FrameError::InvalidUtf8 => Some(1007),
            FrameError::Io(_) | FrameError::Eof => None,
        }
    }
}

/// A complete message received.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Incoming<'a> {
    /// A text message.
    Text(&'a str),
    /// A binary message (length only; the tracker refuses them).
    Binary(usize),
    /// A ping with its payload (answer it with [`FrameWriter::queue_pong`]).
    Ping(&'a [u8]),
    /// A pong.
    Pong,
    /// The peer closed, with this status code if it gave one (echo it with
    /// [`FrameWriter::queue_close`]); nothing more will be read.
    Close(Option<u16>),
}

/// A parsed frame header.
struct Header {
    fin: bool,
    opcode: u8,
    mask: [u8; 4],
    header_len: usize,
    payload_len: usize,
}

/// One server-side WebSocket connection over `S`, split into its reading and writing sides.
pub(crate) struct WsConn<S> {
    /// Messages from the client.
    pub reader: FrameReader<ReadHalf<S>>,
    /// Frames to the client.
    pub writer: FrameWriter<WriteHalf<S>>,
}

impl<S: AsyncRead + AsyncWrite> WsConn<S> {
    /// Wraps an upgraded connection; `leftover` is what the HTTP layer read past the handshake.
    pub fn new(io: S, leftover: Vec<u8>, max_frame: usize, max_message: usize) -> WsConn<S> {
        let (read, write) = tokio::io::split(io);
        WsConn {
            reader: FrameReader {
                io: read,
                rbuf: leftover,
                consumed: 0,
                partial: None,
                assembled: Vec::new(),
                max_frame,
                max_message,
                closed: false,
            },
            writer: FrameWriter {
                io: write,
                wbuf: Vec::new(),
                pong: None,
                wpos: 0,
            },
        }
    }
}

/// The reading side: client frames in, complete messages out.
pub(crate) struct FrameReader<R> {
    io: R,
    rbuf: Vec<u8>,
    /// Bytes at the front of `rbuf` that belong to the message last returned.
    consumed: usize,
    /// A fragmented message being assembled: opcode and payload so far.
    partial: Option<(u8, Vec<u8>)>,
    /// The last message when it was assembled from fragments.
    assembled: Vec<u8>,
    max_frame: usize,
    max_message: usize,
    closed: bool,
}

impl<R: AsyncRead + Unpin> FrameReader<R> {
    /// Parses the frame header at the start of `buf`, if complete.
    fn parse_header(&self, buf: &[u8]) -> Result<Option<Header>, FrameError> {
        if buf.len() < 2 {
            return Ok(None);
        }
        let (b0, b1) = (buf[0], buf[1]);
        if b0 & 0x70 != 0 {
            return Err(FrameError::Protocol("reserved bits set"));
        }
        if b1 & 0x80 == 0 {
            return Err(FrameError::Protocol("unmasked client frame"));
        }
        let fin = b0 & 0x80 != 0;
        let opcode = b0 & 0x0F;
        let (len, mut pos) = match b1 & 0x7F {
            126 => {
                if buf.len() < 4 {
                    return Ok(None);
                }
                (u64::from(u16::from_be_bytes([buf[2], buf[3]])), 4)
            }
            127 => {
                if buf.len() < 10 {
                    return Ok(None);
                }
                let mut b = [0u8; 8];
                b.copy_from_slice(&buf[2..10]);
                (u64::from_be_bytes(b), 10)
            }
            n => (u64::from(n), 2),
        };
        if opcode >= 8 && (!fin || len > 125) {
            return Err(FrameError::Protocol("bad control frame"));
        }
        if len > self.max_frame as u64 {
            return Err(FrameError::TooLarge);
        }
        if buf.len() < pos + 4 {
            return Ok(None);
        }
        let mut mask = [0u8; 4];
        mask.copy_from_slice(&buf[pos..pos + 4]);
        pos += 4;
        Ok(Some(Header {
            fin,
            opcode,
            mask,
            header_len: pos,
            payload_len: len as usize,
        }))
    }

    /// Waits for the next complete message.
    pub async fn next(&mut self) -> Result<Incoming<'_>, FrameError> {
        if self.closed {
            return Err(FrameError::Eof);
        }
        // Release the message returned last time.
        if self.consumed > 0 {
            self.rbuf.drain(..self.consumed);
            self.consumed = 0;
        }
        if !self.assembled.is_empty() || self.assembled.capacity() > 0 {
            self.assembled = Vec::new();
        }
        if self.rbuf.is_empty() && self.rbuf.capacity() > IDLE_READ_BUFFER {
            self.rbuf = Vec::new();
        }
        loop {
            if let Some(header) = self.parse_header(&self.rbuf)? {
                let total = header.header_len + header.payload_len;
                if self.rbuf.len() >= total {
                    let start = header.header_len;
                    unmask(&mut self.rbuf[start..total], header.mask);
                    match self.frame(header, total)? {
                        Some(kind) => return self.message(kind, start, total),
                        None => continue,
                    }
                }
                // Grow toward the frame's length as its bytes arrive (doubling), not at once on
                // the header's word.
                let missing = total - self.rbuf.len();
                self.rbuf
                    .reserve(missing.min(self.rbuf.len().max(READ_GROWTH)));
            } else if self.rbuf.capacity() - self.rbuf.len() < 64 {
                self.rbuf.reserve(IDLE_READ_BUFFER);
            }
            let n = self.io.read_buf(&mut self.rbuf).await?;
            if n == 0 {
                self.closed = true;
                return Err(FrameError::Eof);
            }
        }
    }

    /// Handles a complete frame occupying `rbuf[..total]`. Returns the kind of the complete
    /// message to hand out, or `None` when the frame was absorbed (a fragment).
    fn frame(&mut self, header: Header, total: usize) -> Result<Option<MessageKind>, FrameError> {
        let start = header.header_len;
        match header.opcode {
            OP_TEXT | OP_BINARY => {
                if self.partial.is_some() {
                    return Err(FrameError::Protocol("new message inside a fragmented one"));
                }
                if header.fin {
                    self.consumed = total;
                    return Ok(Some(if header.opcode == OP_TEXT {
                        MessageKind::TextInPlace
                    } else {
                        MessageKind::Binary(header.payload_len)
                    }));
                }
                let payload = self.rbuf[start..total].to_vec();
                self.rbuf.drain(..total);
                self.partial = Some((header.opcode, payload));
                Ok(None)
            }
            OP_CONTINUATION => {
                let Some((opcode, mut payload)) = self.partial.take() else {
                    return Err(FrameError::Protocol("continuation without a message"));
                };
                if payload.len() + header.payload_len > self.max_message {
                    return Err(FrameError::TooLarge);
                }
                payload.extend_from_slice(&self.rbuf[start..total]);
                self.rbuf.drain(..total);
                if !header.fin {
                    self.partial = Some((opcode, payload));
                    return Ok(None);
                }
                let len = payload.len();
                self.assembled = payload;
                Ok(Some(if opcode == OP_TEXT {
                    MessageKind::TextAssembled
                } else {
                    MessageKind::Binary(len)
                }))
            }
            OP_PING => {
                self.consumed = total;
                Ok(Some(MessageKind::Ping))
            }
            OP_PONG => {
                self.rbuf.drain(..total);
                Ok(Some(MessageKind::Pong))
            }
            OP_CLOSE => {
                if header.payload_len == 1 {
                    return Err(FrameError::Protocol("close frame with a one-byte payload"));
                }
                let code = (header.payload_len >= 2)
                    .then(|| u16::from_be_bytes([self.rbuf[start], self.rbuf[start + 1]]));
                if code.is_some_and(|code| !may_be_sent(code)) {
                    return Err(FrameError::Protocol("invalid close code"));
                }
                self.rbuf.drain(..total);
                self.closed = true;
                Ok(Some(MessageKind::Close(code)))
            }
            _ => Err(FrameError::Protocol("unknown opcode")),
        }
    }

    fn message(
        &self,
        kind: MessageKind,
        start: usize,
        total: usize,
    ) -> Result<Incoming<'_>, FrameError> {
        Ok(match kind {
            MessageKind::TextInPlace => Incoming::Text(
                simdutf8::basic::from_utf8(&self.rbuf[start..total])
                    .map_err(|_| FrameError::InvalidUtf8)?,
            ),
            MessageKind::TextAssembled => Incoming::Text(
                simdutf8::basic::from_utf8(&self.assembled).map_err(|_| FrameError::InvalidUtf8)?,
            ),
            MessageKind::Binary(n) => Incoming::Binary(n),
            MessageKind::Ping => Incoming::Ping(&self.rbuf[start..total]),
            MessageKind::Pong => Incoming::Pong,
            MessageKind::Close(code) => Incoming::Close(code),
        })
    }
}

/// The writing side: frames are queued into one buffer and written in as few writes as the
/// socket allows. A pong waits beside the buffer until what is being written has gone out;
/// pings that arrive meanwhile replace its payload, so a burst of pings costs one pong.
pub(crate) struct FrameWriter<W> {
    io: W,
    wbuf: Vec<u8>,
    /// The payload of the pong to write next.
    pong: Option<Box<[u8]>>,
    /// Bytes at the front of `wbuf` already written (a write interrupted by a timeout or a
    /// cancelled flush resumes here, so no byte goes out twice).
    wpos: usize,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    fn queue_frame(&mut self, opcode: u8, payload: &[u8]) {
        let len = payload.len();
        self.wbuf.push(0x80 | opcode);
        if len < 126 {
            self.wbuf.push(len as u8);
        } else if len <= usize::from(u16::MAX) {
            self.wbuf.push(126);
            self.wbuf.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            self.wbuf.push(127);
            self.wbuf.extend_from_slice(&(len as u64).to_be_bytes());
        }
        self.wbuf.extend_from_slice(payload);
    }

    /// Whether queued bytes (or a pong) wait to be written.
    pub fn has_pending(&self) -> bool {
        !self.wbuf.is_empty() || self.pong.is_some()
    }

    /// Makes room for `messages` text frames of `bytes` bytes in all, so a batch is copied
    /// into the write buffer once instead of growing it frame by frame.
    pub fn reserve_text(&mut self, messages: usize, bytes: usize) {
        self.wbuf.reserve(bytes + messages * MAX_SERVER_HEADER);
    }

    /// Queues a text message.
    pub fn queue_text(&mut self, text: &str) {
        self.queue_frame(OP_TEXT, text.as_bytes());
    }

    /// Queues a ping.
    pub fn queue_ping(&mut self) {
        self.queue_frame(OP_PING, &[]);
    }

    /// Queues the pong answering a ping with `payload`, in place of a pong not yet written.
    pub fn queue_pong(&mut self, payload: &[u8]) {
        self.pong = Some(payload.into());
    }

    /// Queues a close frame: no payload without a code, else the code and a reason (cut to fit
    /// 123 bytes).
    pub fn queue_close(&mut self, code: Option<u16>, reason: &str) {
        let Some(code) = code else {
            self.queue_frame(OP_CLOSE, &[]);
            return;
        };
        let mut end = reason.len().min(123);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let mut payload = Vec::with_capacity(2 + end);
        payload.extend_from_slice(&code.to_be_bytes());
        payload.extend_from_slice(&reason.as_bytes()[..end]);
        self.queue_frame(OP_CLOSE, &payload);
    }

    /// Writes everything queued and releases the write buffer. Cancel-safe: if the future is
    /// dropped, what was written stays written and the rest goes out with the next flush.
    pub async fn flush(&mut self) -> Result<(), FrameError> {
        while !self.write_some().await? {}
        Ok(())
    }

    /// One write of what is queued (as much as the socket takes); `true` once everything
    /// queued is written and flushed (the write buffer is then released). Cancel-safe.
    pub async fn write_some(&mut self) -> Result<bool, FrameError> {
        if self.wpos == self.wbuf.len() {
            if let Some(payload) = self.pong.take() {
                self.wbuf.clear();
                self.wpos = 0;
                self.queue_frame(OP_PONG, &payload);
            }
        }
        if self.wpos < self.wbuf.len() {
            let n = self.io.write(&self.wbuf[self.wpos..]).await?;
            if n == 0 {
                return Err(std::io::Error::from(std::io::ErrorKind::WriteZero).into());
            }
            self.wpos += n;
            if self.wpos < self.wbuf.len() {
                return Ok(false);
            }
        }
        self.io.flush().await?;
        self.wbuf.clear();
        self.wpos = 0;
        if self.wbuf.capacity() > KEPT_WRITE_BUFFER {
            self.wbuf = Vec::new();
        }
        Ok(self.pong.is_none())
    }

    /// Flushes and shuts the write side down.
    pub async fn shutdown(&mut self) -> Result<(), FrameError> {
        self.flush().await?;
        self.io.shutdown().await?;
        Ok(())
    }
}

/// What [`FrameReader::frame`] completed.
enum MessageKind {
    TextInPlace,
    TextAssembled,
    Binary(usize),
    Ping,
    Pong,
    Close(Option<u16>),
}

/// Whether `code` may appear in a close frame (RFC 6455 7.4 and the IANA registry): 1005, 1006
/// and 1015 are reserved for reporting and never sent, 1004 and 1016-2999 are unassigned.
fn may_be_sent(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

fn unmask(payload: &mut [u8], mask: [u8; 4]) {
    for (i, b) in payload.iter_mut().enumerate() {
        *b ^= mask[i & 3];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::WebSocketStream;

    async fn pair(
        max: usize,
    ) -> (
        WsConn<tokio::io::DuplexStream>,
        WebSocketStream<tokio::io::DuplexStream>,
    ) {
        let (a, b) = tokio::io::duplex(1 << 16);
        let client = WebSocketStream::from_raw_socket(
            b,
            Role::Client,
            Some(WebSocketConfig::default().max_frame_size(Some(1 << 20))),
        )
        .await;
        (WsConn::new(a, Vec::new(), max, max), client)
    }

    #[tokio::test]
    async fn text_both_ways_with_tungstenite() {
        let (mut server, mut client) = pair(1 << 17).await;
        let big = "é".repeat(40_000);
        let sent = big.clone();
        let client_task = tokio::spawn(async move {
            client.send(Message::text("hello")).await.unwrap();
            client.send(Message::text(sent)).await.unwrap();
            let one = client.next().await.unwrap().unwrap();
            let two = client.next().await.unwrap().unwrap();
            (client, one, two)
        });
        assert_eq!(server.reader.next().await.unwrap(), Incoming::Text("hello"));
        assert_eq!(
            server.reader.next().await.unwrap(),
            Incoming::Text(big.as_str())
        );
        server.writer.queue_text("one");
        server.writer.queue_text(&"x".repeat(70_000));
        server.writer.flush().await.unwrap();
        let (_client, one, two) = client_task.await.unwrap();
        assert_eq!(one, Message::text("one"));
        assert_eq!(two.into_text().unwrap().len(), 70_000);
        // Buffers are released between messages.
        assert!(server.next_is_pending().await);
        assert!(server.reader.rbuf.capacity() <= IDLE_READ_BUFFER);
        assert_eq!(server.writer.wbuf.capacity(), 0);
    }

    impl WsConn<tokio::io::DuplexStream> {
        async fn next_is_pending(&mut self) -> bool {
            tokio::time::timeout(std::time::Duration::from_millis(20), self.reader.next())
                .await
                .is_err()
        }
    }

    #[tokio::test]
    async fn fragments_ping_and_close() {
        let (mut server, mut client) = pair(1 << 16).await;
        use tokio_tungstenite::tungstenite::protocol::frame::{
            coding::Data, coding::OpCode, Frame,
        };
        let frag = |op, fin, s: &str| {
            let mut f = Frame::message(s.as_bytes().to_vec(), op, fin);
            f.header_mut().is_final = fin;
            Message::Frame(f)
        };
        client
            .send(frag(OpCode::Data(Data::Text), false, "ab"))
            .await
            .unwrap();
        client.send(Message::Ping(vec![7].into())).await.unwrap();
        client
            .send(frag(OpCode::Data(Data::Continue), true, "cd"))
            .await
            .unwrap();
        assert_eq!(
            server.reader.next().await.unwrap(),
            Incoming::Ping(&[7][..])
        );
        server.writer.queue_pong(&[7]);
        assert_eq!(server.reader.next().await.unwrap(), Incoming::Text("abcd"));
        server.writer.flush().await.unwrap();
        client
            .send(Message::Binary(vec![1, 2].into()))
            .await
            .unwrap();
        assert_eq!(server.reader.next().await.unwrap(), Incoming::Binary(2));
        client.close(None).await.unwrap();
        assert_eq!(server.reader.next().await.unwrap(), Incoming::Close(None));
        server.writer.queue_close(None, "");
        server.writer.shutdown().await.unwrap();
        drop(server);
        // The client sees the pong and the close reply.
        let mut saw_pong = false;
        while let Some(Ok(m)) = client.next().await {
            saw_pong |= matches!(m, Message::Pong(_));
        }
        assert!(saw_pong);
    }

    #[tokio::test]
    async fn oversized_frames_are_refused_from_the_header() {
        let (mut server, mut client) = pair(1024).await;
        client.send(Message::text("y".repeat(5000))).await.unwrap();
        let err = server.reader.next().await.unwrap_err();
        assert!(matches!(err, FrameError::TooLarge));
        assert_eq!(err.close_code(), Some(1009));
        assert!(
            server.reader.rbuf.capacity() < 2048,
            "payload never buffered"
        );
    }

    #[tokio::test]
    async fn close_frame_reaches_the_client_with_reason() {
        let (mut server, mut client) = pair(1024).await;
        server.writer.queue_close(Some(1008), "rate limit exceeded");
        server.writer.shutdown().await.unwrap();
        match client.next().await.unwrap().unwrap() {
            Message::Close(Some(frame)) => {
                assert_eq!(u16::from(frame.code), 1008);
                assert_eq!(frame.reason.as_str(), "rate limit exceeded");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_frame_header_alone_does_not_reserve_the_frame() {
        let (a, mut b) = tokio::io::duplex(1 << 16);
        let mut server = WsConn::new(a, Vec::new(), 1 << 16, 1 << 16);
        // A text frame header claiming 60,000 bytes, followed by 10 of them.
        let mut raw = vec![0x81, 0x80 | 126];
        raw.extend_from_slice(&60_000u16.to_be_bytes());
        raw.extend_from_slice(&[0; 4]);
        raw.extend_from_slice(&[b'a'; 10]);
        b.write_all(&raw).await.unwrap();
        assert!(server.next_is_pending().await);
        assert!(
            server.reader.rbuf.capacity() <= 2 * READ_GROWTH,
            "{} bytes reserved for 18 received",
            server.reader.rbuf.capacity()
        );
        // The rest arrives: the message is read whole.
        b.write_all(&[b'a'; 59_990]).await.unwrap();
        match server.reader.next().await.unwrap() {
            Incoming::Text(text) => assert_eq!(text.len(), 60_000),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn pings_while_a_write_waits_cost_one_pong() {
        let (mut server, mut client) = pair(1 << 16).await;
        server.writer.queue_text("first");
        for i in 0..50u8 {
            server.writer.queue_pong(&[i]);
        }
        server.writer.flush().await.unwrap();
        drop(server);
        let mut pongs = Vec::new();
        while let Some(Ok(m)) = client.next().await {
            if let Message::Pong(p) = m {
                pongs.push(p.to_vec());
            }
        }
        assert_eq!(pongs, vec![vec![49u8]], "one pong, to the latest ping");
    }

    #[tokio::test]
    async fn unmasked_frames_are_a_protocol_error() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut server = WsConn::new(a, Vec::new(), 1024, 1024);
        b.write_all(&[0x81, 0x02, b'h', b'i']).await.unwrap();
        assert!(matches!(
            server.reader.next().await.unwrap_err(),
            FrameError::Protocol("unmasked client frame")
        ));
    }
}
