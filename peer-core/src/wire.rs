//! p2p-media-loader v2 data-channel protocol: commands, their binary serialization and the
//! `cstr`/`dstr` … `cend`/`dend` framing, byte for byte as p2p-media-loader-core 2.3.x.

/// A segment's id on the wire (`externalId`): the media sequence number for live streams,
/// the playlist index for VOD.
pub type SegmentId = i64;

/// A request's id, chosen by the requesting peer and echoed in the answer.
pub type RequestId = i64;

/// One p2p-media-loader v2 peer command (the `c` field is the variant).
#[derive(Debug, Clone, PartialEq, Eq)]
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
