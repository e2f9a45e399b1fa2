//! p2p-media-loader v2 data-channel protocol: commands, their binary serialization and the
//! `cstr`/`dstr` … `cend`/`dend` framing, byte for byte as p2p-media-loader-core 2.3.x.
//!
//! - [`value`]: typed values (integers, similar-int arrays, strings) inside a payload;
//! - [`command`]: a command's unframed payload (type byte and named fields);
//! - [`framing`]: splitting payloads into data-channel messages, joining them back, and telling
//!   command parts from raw segment bytes.
//!
//! Sending: [`encode_command`] for a command, [`segment_chunks`] for the segment bytes that follow
//! a `SegmentData`. Receiving: feed every message to a [`MessageDecoder`].
//! The encoder reproduces p2p-media-loader's bytes exactly (proven by fixtures written by the npm
//! package, see `tests/js_vectors.rs`); the decoder never panics and names what was malformed.
//!
//! Where we differ from p2p-media-loader, on purpose:
//! - its decoder is lenient (a truncated value reads as what is there, a value of the wrong
//!   type is stored anyway, an unknown command type is passed on); ours returns a [`WireError`],
//!   which the caller may treat as a protocol violation or ignore;
//! - its encoder writes an array group's member count and an array's group count modulo 256,
//!   so an announcement holding all 256 ids of one block (e.g. VOD segments 0..=255) comes out
//!   undecodable; ours splits groups at 255 members (identical bytes otherwise) and leaves out
//!   groups past 255 with a warning;
//! - reassembly of a multi-part command is bounded ([`DEFAULT_MAX_COMMAND_BYTES`]).

pub mod command;
pub mod framing;
pub mod value;

pub use command::{deserialize_command, serialize_command};
pub use framing::{
    encode_command, encode_command_with_max, frame_payload, is_command_part, segment_chunks,
    segment_chunks_with_max, Incoming, MessageDecoder, DEFAULT_MAX_COMMAND_BYTES,
    MAX_MESSAGE_BYTES,
};

/// What was wrong with a received message or payload.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// A command part whose payload is empty (no command type byte).
    #[error("empty command payload")]
    EmptyCommand,
    /// A command type byte other than 0..=5.
    #[error("unknown command type {0}")]
    UnknownCommand(u8),
    /// A value whose type nibble is not integer, similar-int array or string.
    #[error("unknown value type {type_code} in field '{field}'")]
    UnknownValueType {
        /// Field name byte.
        field: char,
        /// The type nibble found.
        type_code: u8,
    },
    /// A value that runs past the end of the payload.
    #[error("field '{field}' truncated: needs {needed} more bytes, {available} left")]
    Truncated {
        /// Field name byte.
        field: char,
        /// Bytes the value declares.
        needed: usize,
        /// Bytes left in the payload.
        available: usize,
    },
    /// A field the command requires is absent.
    #[error("command {command} lacks field '{field}'")]
    MissingField {
        /// Command type byte.
        command: u8,
        /// Field name byte.
        field: char,
    },
    /// A field holds a value of another type than the command needs.
    #[error("field '{field}' is not an {expected}")]
    WrongFieldType {
        /// Field name byte.
        field: char,
        /// The type the command needs.
        expected: &'static str,
    },
    /// An integer outside its field's range (ids beyond `i64`, negative sizes or offsets).
    #[error("field '{field}' out of range")]
    OutOfRange {
        /// Field name byte.
        field: char,
    },
    /// A continuation part (`dstr`) without a first part before it.
    #[error("command continuation part without a first part")]
    NoFirstPart,
    /// A first part (`cstr`) while an earlier command still lacked its last part.
    #[error("new command started before the previous one ended")]
    IncompleteCommand,
    /// A multi-part command longer than the decoder's bound.
    #[error("command payload exceeds {limit} bytes")]
    TooLarge {
        /// The bound.
        limit: usize,
    },
}

/// A segment's id on the wire (`externalId`): the media sequence number for live streams,
/// the playlist index for VOD.
pub type SegmentId = i64;

/// A request's id, chosen by the requesting peer and echoed in the answer.
pub type RequestId = i64;

/// One p2p-media-loader v2 peer command (the `c` field is the variant).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Command {
    /// `c = 0`: the full list of segments the sender holds (`l`) and is loading over HTTP (`p`).
    SegmentsAnnouncement {
        /// Loaded segments (`l`).
        loaded: Vec<SegmentId>,
        /// Segments being loaded over HTTP (`p`).
        loading_http: Vec<SegmentId>,
    },
    /// `c = 1`: ask for a segment, optionally from a byte offset (`b`).
    SegmentRequest {
        /// Segment (`i`).
        segment: SegmentId,
        /// Request (`r`).
        request: RequestId,
        /// Byte to start from (`b`), for resuming.
        byte_from: Option<u64>,
    },
    /// `c = 2`: the answer to a request; `size` (`s`) raw bytes follow as plain data-channel messages.
    SegmentData {
        /// Segment (`i`).
        segment: SegmentId,
        /// Request (`r`).
        request: RequestId,
        /// Total bytes that follow (`s`).
        size: u64,
    },
    /// `c = 3`: all bytes of a segment were sent.
    SegmentDataSendingCompleted {
        /// Segment (`i`).
        segment: SegmentId,
        /// Request (`r`).
        request: RequestId,
    },
    /// `c = 4`: the requested segment is not available.
    SegmentAbsent {
        /// Segment (`i`).
        segment: SegmentId,
        /// Request (`r`).
        request: RequestId,
    },
    /// `c = 5`: the requester no longer wants the segment.
    CancelSegmentRequest {
        /// Segment (`i`).
        segment: SegmentId,
        /// Request (`r`).
        request: RequestId,
    },
}
