//! Data-channel framing: which messages are command parts and how a command is split and joined.
//!
//! A command part is a message that starts with `cstr` (first part) or `dstr` (continuation)
//! and ends with `cend` (last part) or `dend` (more parts follow). Every other message is raw
//! segment bytes. A payload that fits `max_message - 8` bytes goes out as one `cstr…cend`
//! message; a longer one is cut into `k` equal slices (`k = ⌈len / max⌉`, plus one if a slice
//! and its 8 marker bytes would not fit) framed `cstr…dend`, `dstr…dend`, …, `dstr…cend` —
//! p2p-media-loader 2.3.x's rule, reproduced so our messages are byte-identical to its own.
//!
//! Raw segment data is sent in slices of at most `max_message` bytes. As in p2p-media-loader, a
//! raw slice that happens to begin with a start marker and end with an end marker would be taken
//! for a command part by the receiver; the protocol has no escape for it.

use bytes::Bytes;

use super::command::{deserialize_command, serialize_command};
use super::{Command, WireError};

/// Length of each marker.
pub const MARKER_LEN: usize = 4;
/// Marker opening a command's first (or only) part.
pub const COMMAND_START: &[u8; MARKER_LEN] = b"cstr";
/// Marker closing a command's last (or only) part.
pub const COMMAND_END: &[u8; MARKER_LEN] = b"cend";
/// Marker opening a continuation part.
pub const PART_START: &[u8; MARKER_LEN] = b"dstr";
/// Marker closing a part that more parts follow.
pub const PART_END: &[u8; MARKER_LEN] = b"dend";

/// The largest data-channel message we send: p2p-media-loader's `webRtcMaxMessageSize` default
/// (64 KiB − 1), which bounds both its command parts and its raw segment slices.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 - 1;

/// Default bound on a reassembled command payload. The largest announcement our encoder writes
/// (two arrays of 255 groups of 255 ids) is about 135 KB; p2p-media-loader's real announcements
/// are far smaller.
pub const DEFAULT_MAX_COMMAND_BYTES: usize = 256 * 1024;

/// Encodes one command into the data-channel messages that carry it, each at most
/// [`MAX_MESSAGE_BYTES`].
pub fn encode_command(cmd: &Command) -> Vec<Vec<u8>> {
    encode_command_with_max(cmd, MAX_MESSAGE_BYTES)
}

/// Like [`encode_command`], with another message size limit (as p2p-media-loader's
/// `webRtcMaxMessageSize`); a limit below 9 is raised to 9, the least that carries a payload byte.
pub fn encode_command_with_max(cmd: &Command, max_message: usize) -> Vec<Vec<u8>> {
    frame_payload(&serialize_command(cmd), max_message)
}

/// Frames an unframed payload into command parts of at most `max_message` bytes.
pub fn frame_payload(payload: &[u8], max_message: usize) -> Vec<Vec<u8>> {
    let max = max_message.max(2 * MARKER_LEN + 1);
    let frames = 2 * MARKER_LEN;
    if payload.len() + frames <= max {
        return vec![frame(payload, COMMAND_START, COMMAND_END)];
    }
    let mut count = payload.len().div_ceil(max);
    if payload.len().div_ceil(count) + frames > max {
        count += 1;
    }
    let slice_len = payload.len().div_ceil(count);
    (0..count)
        .map(|i| {
            let from = (i * slice_len).min(payload.len());
            let to = ((i + 1) * slice_len).min(payload.len());
            let start = if i == 0 { COMMAND_START } else { PART_START };
            let end = if i == count - 1 {
                COMMAND_END
            } else {
                PART_END
            };
            frame(&payload[from..to], start, end)
        })
        .collect()
}

fn frame(body: &[u8], start: &[u8; MARKER_LEN], end: &[u8; MARKER_LEN]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 2 * MARKER_LEN);
    out.extend_from_slice(start);
    out.extend_from_slice(body);
    out.extend_from_slice(end);
    out
}

/// Splits a segment's bytes into the raw data-channel messages that follow `SegmentData`, each
/// at most [`MAX_MESSAGE_BYTES`].
pub fn segment_chunks(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    segment_chunks_with_max(data, MAX_MESSAGE_BYTES)
}

/// Like [`segment_chunks`] with another message size limit (at least 1).
pub fn segment_chunks_with_max(data: &[u8], max_message: usize) -> impl Iterator<Item = &[u8]> {
    data.chunks(max_message.max(1))
}

/// Whether a message is a command part (starts with a start marker, ends with an end marker).
pub fn is_command_part(message: &[u8]) -> bool {
    message.len() >= 2 * MARKER_LEN
        && (message.starts_with(COMMAND_START) || message.starts_with(PART_START))
        && (message.ends_with(COMMAND_END) || message.ends_with(PART_END))
}

/// What one incoming data-channel message amounted to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// A complete command (its last part just arrived).
    Command(Command),
    /// Raw segment bytes.
    SegmentBytes(Bytes),
}

/// Receiving side of the framing: joins command parts and decodes commands; passes raw segment
/// bytes through.
///
/// Errors are reported once and leave the decoder ready for the next command, as
/// p2p-media-loader does: a continuation without a first part is dropped; a first part while a
/// command is incomplete drops both the incomplete command and that part.
#[derive(Debug, Clone)]
pub struct MessageDecoder {
    pending: Option<Vec<u8>>,
    max_command_bytes: usize,
}

impl Default for MessageDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl MessageDecoder {
    /// A decoder bounding reassembled commands at [`DEFAULT_MAX_COMMAND_BYTES`].
    pub fn new() -> Self {
        Self::with_max_command_bytes(DEFAULT_MAX_COMMAND_BYTES)
    }

    /// A decoder bounding reassembled command payloads at `max_command_bytes`.
    pub fn with_max_command_bytes(max_command_bytes: usize) -> Self {
        Self {
            pending: None,
            max_command_bytes,
        }
    }

    /// Whether part of a multi-part command has arrived and its end has not.
    pub fn is_joining(&self) -> bool {
        self.pending.is_some()
    }

    /// Takes one data-channel message. Returns `Ok(None)` for a command part that is not the last.
    pub fn push(&mut self, message: &[u8]) -> Result<Option<Incoming>, WireError> {
        if !is_command_part(message) {
            return Ok(Some(Incoming::SegmentBytes(Bytes::copy_from_slice(
                message,
            ))));
        }
        let is_first = message.starts_with(COMMAND_START);
        let is_last = message.ends_with(COMMAND_END);
        let body = &message[MARKER_LEN..message.len() - MARKER_LEN];
        let mut payload = match (self.pending.take(), is_first) {
            (None, false) => return Err(WireError::NoFirstPart),
            (Some(_), true) => return Err(WireError::IncompleteCommand),
            (None, true) => Vec::new(),
            (Some(p), false) => p,
        };
        if payload.len() + body.len() > self.max_command_bytes {
            return Err(WireError::TooLarge {
                limit: self.max_command_bytes,
            });
        }
        payload.extend_from_slice(body);
        if !is_last {
            self.pending = Some(payload);
            return Ok(None);
        }
        deserialize_command(&payload).map(|cmd| Some(Incoming::Command(cmd)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn announcement(n: i64) -> Command {
        Command::SegmentsAnnouncement {
            loaded: (0..n).map(|i| i * 7).collect(),
            loading_http: vec![-5, 1 << 40],
        }
    }

    #[test]
    fn small_command_is_one_message() {
        let msgs = encode_command(&Command::SegmentAbsent {
            segment: 1,
            request: 2,
        });
        assert_eq!(msgs, [b"cstr\x04i\x01\x01r\x01\x02cend".to_vec()]);
    }

    #[test]
    fn large_command_is_split_into_equal_framed_parts_and_joined() {
        let cmd = announcement(2000);
        let msgs = encode_command_with_max(&cmd, 200);
        assert!(msgs.len() > 2);
        assert!(msgs.iter().all(|m| m.len() <= 200));
        assert!(msgs[0].starts_with(b"cstr") && msgs[0].ends_with(b"dend"));
        assert!(msgs[1].starts_with(b"dstr") && msgs[1].ends_with(b"dend"));
        let last = msgs.last().unwrap();
        assert!(last.starts_with(b"dstr") && last.ends_with(b"cend"));
        let mut dec = MessageDecoder::new();
        for m in &msgs[..msgs.len() - 1] {
            assert_eq!(dec.push(m).unwrap(), None);
            assert!(dec.is_joining());
        }
        assert_eq!(dec.push(last).unwrap(), Some(Incoming::Command(cmd)));
        assert!(!dec.is_joining());
    }

    #[test]
    fn split_rule_adds_a_part_when_slices_plus_markers_overflow() {
        // 20-byte payload, limit 12: ⌈20/12⌉ = 2 slices of 10, +8 markers = 18 > 12 → 3 slices
        // of 7 (+8 = 15 > 12 still, but p2p-media-loader adds only one part), the last 6 bytes.
        let payload: Vec<u8> = (0..20).collect();
        let msgs = frame_payload(&payload, 12);
        let lens: Vec<usize> = msgs.iter().map(Vec::len).collect();
        assert_eq!(lens, [15, 15, 14]);
    }

    #[test]
    fn raw_bytes_pass_through_even_while_joining() {
        let mut dec = MessageDecoder::new();
        assert_eq!(
            dec.push(b"\x47raw").unwrap(),
            Some(Incoming::SegmentBytes(Bytes::from_static(b"\x47raw")))
        );
        assert_eq!(dec.push(b"cstr\x00\x01dend").unwrap(), None);
        assert_eq!(
            dec.push(b"cstr").unwrap(),
            Some(Incoming::SegmentBytes(Bytes::from_static(b"cstr")))
        );
        assert!(dec.is_joining());
    }

    #[test]
    fn bad_marker_sequences_are_errors_and_reset() {
        let mut dec = MessageDecoder::new();
        assert_eq!(dec.push(b"dstr\x00cend"), Err(WireError::NoFirstPart));
        assert_eq!(dec.push(b"cstr\x00dend").unwrap(), None);
        assert_eq!(dec.push(b"cstr\x00cend"), Err(WireError::IncompleteCommand));
        assert!(!dec.is_joining());
        assert!(matches!(
            dec.push(b"cstr\x00cend").unwrap(),
            Some(Incoming::Command(_))
        ));
    }

    #[test]
    fn reassembly_is_bounded() {
        let mut dec = MessageDecoder::with_max_command_bytes(10);
        assert_eq!(dec.push(b"cstr\x00\x01\x02\x03\x04\x05dend").unwrap(), None);
        assert_eq!(
            dec.push(b"dstr\x06\x07\x08\x09\x0acend"),
            Err(WireError::TooLarge { limit: 10 })
        );
        assert!(!dec.is_joining());
    }

    #[test]
    fn segment_chunks_respect_the_limit() {
        let data = vec![1u8; MAX_MESSAGE_BYTES * 2 + 5];
        let lens: Vec<usize> = segment_chunks(&data).map(<[u8]>::len).collect();
        assert_eq!(lens, [MAX_MESSAGE_BYTES, MAX_MESSAGE_BYTES, 5]);
        assert_eq!(segment_chunks(&[]).count(), 0);
    }
}
