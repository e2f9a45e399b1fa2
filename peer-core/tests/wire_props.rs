//! Property tests of the wire codec: every command survives encode → decode at any message size
//! limit, and no sequence of arbitrary messages makes the decoder panic.

use proptest::prelude::*;
use segswarm_core::wire::{
    encode_command, encode_command_with_max, segment_chunks_with_max, Command, Incoming,
    MessageDecoder, MAX_MESSAGE_BYTES,
};

/// Ids anywhere in `i64`, or clustered (so that groups of similar ids form).
fn id() -> impl Strategy<Value = i64> {
    prop_oneof![
        any::<i64>(),
        -1000i64..70_000,
        (0i64..1 << 53),
        Just(i64::MIN),
        Just(i64::MAX),
    ]
}

/// Announcement lists: up to 255 arbitrary ids (at most 255 groups), or a dense window of up to
/// 3000 ids (few groups, many members each, duplicates allowed).
fn id_list() -> impl Strategy<Value = Vec<i64>> {
    prop_oneof![
        prop::collection::vec(id(), 0..=255),
        (id(), prop::collection::vec(0i64..2000, 0..3000))
            .prop_map(|(base, offs)| offs.into_iter().map(|o| base.saturating_add(o)).collect()),
    ]
}

fn command() -> impl Strategy<Value = Command> {
    prop_oneof![
        (id_list(), id_list()).prop_map(|(loaded, loading_http)| Command::SegmentsAnnouncement {
            loaded,
            loading_http
        }),
        (id(), id(), prop::option::of(any::<u64>())).prop_map(|(segment, request, byte_from)| {
            Command::SegmentRequest {
                segment,
                request,
                byte_from,
            }
        }),
        (id(), id(), any::<u64>()).prop_map(|(segment, request, size)| Command::SegmentData {
            segment,
            request,
            size
        }),
        (id(), id()).prop_map(|(segment, request)| Command::SegmentDataSendingCompleted {
            segment,
            request
        }),
        (id(), id()).prop_map(|(segment, request)| Command::SegmentAbsent { segment, request }),
        (id(), id())
            .prop_map(|(segment, request)| Command::CancelSegmentRequest { segment, request }),
    ]
}

/// What a command looks like after a round trip: announcement lists are sets on the wire (ids
/// are regrouped by their high bytes), and a zero byte offset is not sent.
fn canonical(cmd: &Command) -> Command {
    match cmd.clone() {
        Command::SegmentsAnnouncement {
            mut loaded,
            mut loading_http,
        } => {
            loaded.sort_unstable();
            loading_http.sort_unstable();
            Command::SegmentsAnnouncement {
                loaded,
                loading_http,
            }
        }
        Command::SegmentRequest {
            segment,
            request,
            byte_from,
        } => Command::SegmentRequest {
            segment,
            request,
            byte_from: byte_from.filter(|b| *b != 0),
        },
        other => other,
    }
}

fn decode(messages: &[Vec<u8>]) -> Command {
    let mut decoder = MessageDecoder::new();
    let (last, init) = messages.split_last().expect("at least one message");
    for m in init {
        assert_eq!(decoder.push(m), Ok(None));
    }
    match decoder.push(last) {
        Ok(Some(Incoming::Command(cmd))) => cmd,
        other => panic!("last part decoded as {other:?}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn commands_round_trip(cmd in command()) {
        let messages = encode_command(&cmd);
        prop_assert!(messages.iter().all(|m| m.len() <= MAX_MESSAGE_BYTES));
        prop_assert_eq!(canonical(&decode(&messages)), canonical(&cmd));
    }

    #[test]
    fn commands_round_trip_at_any_message_limit(cmd in command(), max in 9usize..5000) {
        let messages = encode_command_with_max(&cmd, max);
        prop_assert_eq!(canonical(&decode(&messages)), canonical(&cmd));
    }

    #[test]
    fn arbitrary_messages_never_panic(
        messages in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..200), 0..20),
        bound in 0usize..512,
    ) {
        let mut decoder = MessageDecoder::with_max_command_bytes(bound);
        for m in &messages {
            let _ = decoder.push(m);
        }
    }

    #[test]
    fn framed_garbage_never_panics(
        parts in prop::collection::vec(
            (0usize..2, prop::collection::vec(any::<u8>(), 0..120), 0usize..2),
            1..12,
        ),
    ) {
        let mut decoder = MessageDecoder::new();
        for (start, body, end) in parts {
            let mut m = [b"cstr".as_slice(), b"dstr"][start].to_vec();
            m.extend(body);
            m.extend([b"cend".as_slice(), b"dend"][end]);
            // Either an error, nothing yet, or a command that encodes back to the same command.
            if let Ok(Some(Incoming::Command(cmd))) = decoder.push(&m) {
                prop_assert_eq!(canonical(&decode(&encode_command(&cmd))), canonical(&cmd));
            }
        }
    }

    #[test]
    fn segment_chunks_cover_the_data(data in prop::collection::vec(any::<u8>(), 0..5000), max in 1usize..700) {
        let chunks: Vec<&[u8]> = segment_chunks_with_max(&data, max).collect();
        prop_assert!(chunks.iter().all(|c| !c.is_empty() && c.len() <= max));
        prop_assert_eq!(chunks.concat(), data);
    }
}
