//! A command's unframed payload: byte 0 is the command type, then `[field name byte][value]`
//! repeated, in the order p2p-media-loader 2.3.x writes them.
//!
//! | type | command | fields written |
//! |------|---------|----------------|
//! | 0 | SegmentsAnnouncement | `l` (array, only if non-empty), `p` (array, only if non-empty) |
//! | 1 | SegmentRequest | `i`, `r`, `b` (only if non-zero) |
//! | 2 | SegmentData | `i`, `s`, `r` |
//! | 3 | SegmentDataSendingCompleted | `i`, `r` |
//! | 4 | SegmentAbsent | `i`, `r` |
//! | 5 | CancelSegmentRequest | `i`, `r` |
//!
//! Decoding accepts fields in any order (a repeated field: the last one wins, as in
//! p2p-media-loader), ignores fields the command does not use, and fails on a missing required
//! field or a value of the wrong type or range.

use super::value::{self, Value};
use super::{Command, WireError};

/// Command type byte of [`Command::SegmentsAnnouncement`].
pub const SEGMENTS_ANNOUNCEMENT: u8 = 0;
/// Command type byte of [`Command::SegmentRequest`].
pub const SEGMENT_REQUEST: u8 = 1;
/// Command type byte of [`Command::SegmentData`].
pub const SEGMENT_DATA: u8 = 2;
/// Command type byte of [`Command::SegmentDataSendingCompleted`].
pub const SEGMENT_DATA_SENDING_COMPLETED: u8 = 3;
/// Command type byte of [`Command::SegmentAbsent`].
pub const SEGMENT_ABSENT: u8 = 4;
/// Command type byte of [`Command::CancelSegmentRequest`].
pub const CANCEL_SEGMENT_REQUEST: u8 = 5;

impl Command {
    /// The command type byte (`c`).
    pub fn type_code(&self) -> u8 {
        match self {
            Command::SegmentsAnnouncement { .. } => SEGMENTS_ANNOUNCEMENT,
            Command::SegmentRequest { .. } => SEGMENT_REQUEST,
            Command::SegmentData { .. } => SEGMENT_DATA,
            Command::SegmentDataSendingCompleted { .. } => SEGMENT_DATA_SENDING_COMPLETED,
            Command::SegmentAbsent { .. } => SEGMENT_ABSENT,
            Command::CancelSegmentRequest { .. } => CANCEL_SEGMENT_REQUEST,
        }
    }
}

/// Serializes a command into its unframed payload.
///
/// `SegmentRequest { byte_from: Some(0) }` is written without `b`, like p2p-media-loader, and so
/// decodes as `byte_from: None`.
pub fn serialize_command(cmd: &Command) -> Vec<u8> {
    let mut out = vec![cmd.type_code()];
    let int = |out: &mut Vec<u8>, name: u8, v: i128| {
        out.push(name);
        value::put_int(out, v);
    };
    match cmd {
        Command::SegmentsAnnouncement {
            loaded,
            loading_http,
        } => {
            for (name, ids) in [(b'l', loaded), (b'p', loading_http)] {
                if !ids.is_empty() {
                    out.push(name);
                    value::put_similar_int_array(&mut out, ids);
                }
            }
        }
        Command::SegmentRequest {
            segment,
            request,
            byte_from,
        } => {
            int(&mut out, b'i', i128::from(*segment));
            int(&mut out, b'r', i128::from(*request));
            if let Some(b) = byte_from.filter(|b| *b != 0) {
                int(&mut out, b'b', i128::from(b));
            }
        }
        Command::SegmentData {
            segment,
            request,
            size,
        } => {
            int(&mut out, b'i', i128::from(*segment));
            int(&mut out, b's', i128::from(*size));
            int(&mut out, b'r', i128::from(*request));
        }
        Command::SegmentDataSendingCompleted { segment, request }
        | Command::SegmentAbsent { segment, request }
        | Command::CancelSegmentRequest { segment, request } => {
            int(&mut out, b'i', i128::from(*segment));
            int(&mut out, b'r', i128::from(*request));
        }
    }
    out
}

/// Fields of one payload, by name byte; the last occurrence of a name wins.
struct Fields(Vec<(u8, Value)>);

impl Fields {
    fn parse(bytes: &[u8]) -> Result<Self, WireError> {
        let mut fields: Vec<(u8, Value)> = Vec::new();
        let mut offset = 0;
        while offset < bytes.len() {
            let name = bytes[offset];
            offset += 1;
            let (v, used) = value::read_value(char::from(name), &bytes[offset..])?;
            offset += used;
            fields.retain(|(n, _)| *n != name);
            fields.push((name, v));
        }
        Ok(Fields(fields))
    }

    fn get(&self, name: u8) -> Option<&Value> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    fn int(&self, command: u8, name: u8) -> Result<i128, WireError> {
        match self.get(name) {
            Some(Value::Int(v)) => Ok(*v),
            Some(_) => Err(WireError::WrongFieldType {
                field: char::from(name),
                expected: "integer",
            }),
            None => Err(WireError::MissingField {
                command,
                field: char::from(name),
            }),
        }
    }

    fn i64(&self, command: u8, name: u8) -> Result<i64, WireError> {
        let v = self.int(command, name)?;
        i64::try_from(v).map_err(|_| WireError::OutOfRange {
            field: char::from(name),
        })
    }

    fn u64(&self, command: u8, name: u8) -> Result<u64, WireError> {
        let v = self.int(command, name)?;
        u64::try_from(v).map_err(|_| WireError::OutOfRange {
            field: char::from(name),
        })
    }

    fn ids(&self, name: u8) -> Result<Vec<i64>, WireError> {
        match self.get(name) {
            None => Ok(Vec::new()),
            Some(Value::IntArray(values)) => values
                .iter()
                .map(|v| {
                    i64::try_from(*v).map_err(|_| WireError::OutOfRange {
                        field: char::from(name),
                    })
                })
                .collect(),
            Some(_) => Err(WireError::WrongFieldType {
                field: char::from(name),
                expected: "integer array",
            }),
        }
    }
}

/// Parses an unframed payload into a command.
pub fn deserialize_command(bytes: &[u8]) -> Result<Command, WireError> {
    let (&code, rest) = bytes.split_first().ok_or(WireError::EmptyCommand)?;
    let f = Fields::parse(rest)?;
    Ok(match code {
        SEGMENTS_ANNOUNCEMENT => Command::SegmentsAnnouncement {
            loaded: f.ids(b'l')?,
            loading_http: f.ids(b'p')?,
        },
        SEGMENT_REQUEST => Command::SegmentRequest {
            segment: f.i64(code, b'i')?,
            request: f.i64(code, b'r')?,
            byte_from: match f.get(b'b') {
                None => None,
                Some(_) => Some(f.u64(code, b'b')?).filter(|b| *b != 0),
            },
        },
        SEGMENT_DATA => Command::SegmentData {
            segment: f.i64(code, b'i')?,
            request: f.i64(code, b'r')?,
            size: f.u64(code, b's')?,
        },
        SEGMENT_DATA_SENDING_COMPLETED => Command::SegmentDataSendingCompleted {
            segment: f.i64(code, b'i')?,
            request: f.i64(code, b'r')?,
        },
        SEGMENT_ABSENT => Command::SegmentAbsent {
            segment: f.i64(code, b'i')?,
            request: f.i64(code, b'r')?,
        },
        CANCEL_SEGMENT_REQUEST => Command::CancelSegmentRequest {
            segment: f.i64(code, b'i')?,
            request: f.i64(code, b'r')?,
        },
        other => return Err(WireError::UnknownCommand(other)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_data_writes_size_before_request() {
        let bytes = serialize_command(&Command::SegmentData {
            segment: 5,
            request: 7,
            size: 1000,
        });
        assert_eq!(
            bytes,
            [2, b'i', 0x01, 5, b's', 0x02, 0x03, 0xe8, b'r', 0x01, 7]
        );
    }

    #[test]
    fn request_omits_zero_byte_offset() {
        let with_zero = serialize_command(&Command::SegmentRequest {
            segment: 1,
            request: 2,
            byte_from: Some(0),
        });
        assert_eq!(with_zero, [1, b'i', 0x01, 1, b'r', 0x01, 2]);
        let with_offset = serialize_command(&Command::SegmentRequest {
            segment: 1,
            request: 2,
            byte_from: Some(3),
        });
        assert_eq!(&with_offset[7..], [b'b', 0x01, 3]);
        assert_eq!(
            deserialize_command(&with_offset).unwrap(),
            Command::SegmentRequest {
                segment: 1,
                request: 2,
                byte_from: Some(3)
            }
        );
    }

    #[test]
    fn empty_announcement_is_just_the_type_byte() {
        let cmd = Command::SegmentsAnnouncement {
            loaded: vec![],
            loading_http: vec![],
        };
        assert_eq!(serialize_command(&cmd), [0]);
        assert_eq!(deserialize_command(&[0]).unwrap(), cmd);
    }

    #[test]
    fn fields_in_any_order_and_unknown_fields_are_accepted() {
        // r before i, plus a string field `x` that no command uses.
        let bytes = [4, b'r', 0x01, 9, b'x', 0x20, 2, b'h', b'i', b'i', 0x01, 8];
        assert_eq!(
            deserialize_command(&bytes).unwrap(),
            Command::SegmentAbsent {
                segment: 8,
                request: 9
            }
        );
    }

    #[test]
    fn malformed_payloads_name_the_problem() {
        assert_eq!(deserialize_command(&[]), Err(WireError::EmptyCommand));
        assert_eq!(deserialize_command(&[6]), Err(WireError::UnknownCommand(6)));
        assert_eq!(
            deserialize_command(&[3, b'i', 0x01, 1]),
            Err(WireError::MissingField {
                command: 3,
                field: 'r'
            })
        );
        assert_eq!(
            deserialize_command(&[3, b'i']),
            Err(WireError::Truncated {
                field: 'i',
                needed: 1,
                available: 0
            })
        );
        assert_eq!(
            deserialize_command(&[2, b'i', 0x01, 1, b'r', 0x01, 1, b's', 0x01, 0x81]),
            Err(WireError::OutOfRange { field: 's' })
        );
        assert_eq!(
            deserialize_command(&[0, b'l', 0x01, 1]),
            Err(WireError::WrongFieldType {
                field: 'l',
                expected: "integer array"
            })
        );
        // 9 magnitude bytes of 0x7f.. do not fit an i64 segment id.
        let mut big = vec![5, b'i', 0x09];
        big.extend([0x7f; 9]);
        big.extend([b'r', 0x01, 1]);
        assert_eq!(
            deserialize_command(&big),
            Err(WireError::OutOfRange { field: 'i' })
        );
    }
}
