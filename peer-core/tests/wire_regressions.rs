//! Malformed inputs that once were, or could be, trouble for the wire decoder, replayed with the
//! same checks as the `wire_decoder` fuzz target (fuzz/fuzz_targets/wire_decoder.rs): no panic,
//! and a decoded command re-encodes to a stable form that decodes to the same command.

use segswarm_core::wire::{encode_command, Command, Incoming, MessageDecoder, WireError};

fn sorted(cmd: &Command) -> Command {
    let mut cmd = cmd.clone();
    if let Command::SegmentsAnnouncement {
        loaded,
        loading_http,
    } = &mut cmd
    {
        loaded.sort_unstable();
        loading_http.sort_unstable();
    }
    cmd
}

fn decode_all(messages: &[Vec<u8>]) -> Command {
    let mut decoder = MessageDecoder::new();
    let mut decoded = None;
    for part in messages {
        decoded = decoder.push(part).expect("re-encoded command must decode");
    }
    match decoded {
        Some(Incoming::Command(cmd)) => cmd,
        other => panic!("re-encoded command decoded as {other:?}"),
    }
}

/// Pushes one message; checks a decoded command as the fuzz target does.
fn push_checked(
    decoder: &mut MessageDecoder,
    message: &[u8],
) -> Result<Option<Incoming>, WireError> {
    let result = decoder.push(message);
    if let Ok(Some(Incoming::Command(cmd))) = &result {
        let wire = encode_command(cmd);
        let again = decode_all(&wire);
        assert_eq!(sorted(&again), sorted(cmd));
        assert_eq!(encode_command(&again), wire);
    }
    result
}

fn framed(payload: &[u8]) -> Vec<u8> {
    [b"cstr".as_slice(), payload, b"cend"].concat()
}

#[test]
fn hostile_payloads_are_errors_not_panics() {
    let cases: Vec<(&[u8], WireError)> = vec![
        // Empty payload: the package would produce `{c: undefined}`.
        (b"", WireError::EmptyCommand),
        // Field name as the last byte.
        (
            b"\x03i",
            WireError::Truncated {
                field: 'i',
                needed: 1,
                available: 0,
            },
        ),
        // Integer declaring 15 bytes with 2 present.
        (
            b"\x03i\x0f\x01\x02",
            WireError::Truncated {
                field: 'i',
                needed: 15,
                available: 2,
            },
        ),
        // 15-byte integer: fits i128, not i64.
        (
            b"\x04i\x0f\x7f\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xffr\x01\x01",
            WireError::OutOfRange { field: 'i' },
        ),
        // Array announcing 255 groups with none present.
        (
            b"\x00l\x10\xff",
            WireError::Truncated {
                field: 'l',
                needed: 1,
                available: 0,
            },
        ),
        // Array group declaring 200 members with 1 present.
        (
            b"\x00l\x10\x01\x02\x00\xc8\x05",
            WireError::Truncated {
                field: 'l',
                needed: 200,
                available: 1,
            },
        ),
        // Array group header that is not an integer.
        (
            b"\x00l\x10\x01\x20\x00",
            WireError::WrongFieldType {
                field: 'l',
                expected: "integer",
            },
        ),
        // String longer than the payload.
        (
            b"\x00x\x2f\xff",
            WireError::Truncated {
                field: 'x',
                needed: 4095,
                available: 0,
            },
        ),
        // Type nibbles 3..15.
        (
            b"\x05i\xf0",
            WireError::UnknownValueType {
                field: 'i',
                type_code: 15,
            },
        ),
        // Command types beyond 5.
        (b"\xffi\x01\x01r\x01\x01", WireError::UnknownCommand(255)),
        // Negative size.
        (
            b"\x02i\x01\x01s\x01\x81r\x01\x01",
            WireError::OutOfRange { field: 's' },
        ),
        // Array where an integer belongs.
        (
            b"\x04i\x10\x00r\x01\x01",
            WireError::WrongFieldType {
                field: 'i',
                expected: "integer",
            },
        ),
    ];
    for (payload, expected) in cases {
        let mut decoder = MessageDecoder::new();
        assert_eq!(
            push_checked(&mut decoder, &framed(payload)),
            Err(expected),
            "{payload:02x?}"
        );
        assert!(!decoder.is_joining());
    }
}

#[test]
fn odd_but_valid_payloads_decode() {
    let mut decoder = MessageDecoder::new();
    // A zero-length integer is 0 (the package reads it so too); sign bit on zero is 0.
    assert_eq!(
        push_checked(&mut decoder, &framed(b"\x03i\x00r\x01\x80")),
        Ok(Some(Incoming::Command(
            Command::SegmentDataSendingCompleted {
                segment: 0,
                request: 0
            }
        )))
    );
    // A group with 0 members, a repeated field (last wins), i64::MIN as a 9-byte integer.
    let min = b"\x05i\x09\x80\x80\x00\x00\x00\x00\x00\x00\x00";
    let payload = [min.as_slice(), b"r\x01\x01r\x01\x02l\x10\x01\x01\x00"].concat();
    assert_eq!(
        push_checked(&mut decoder, &framed(&payload)),
        Ok(Some(Incoming::Command(Command::CancelSegmentRequest {
            segment: i64::MIN,
            request: 2
        })))
    );
    // 255 groups of the same common part, 255 members each: regrouping on re-encode stays
    // within 255 groups.
    let mut big = vec![0u8, b'l', 0x10, 255];
    for _ in 0..255 {
        big.extend([0x02, 0x00, 0xff]);
        big.extend(0..255u8);
    }
    let result = push_checked(&mut MessageDecoder::new(), &framed(&big));
    match result {
        Ok(Some(Incoming::Command(Command::SegmentsAnnouncement { loaded, .. }))) => {
            assert_eq!(loaded.len(), 255 * 255)
        }
        other => panic!("{other:?}"),
    }
}
