//! Fuzzes the p2p-media-loader v2 wire decoder: the input is cut into data-channel messages and
//! fed to one `MessageDecoder`; nothing may panic, and every command decoded must survive an
//! encode → decode round trip (announcement lists compared as multisets: the encoding groups ids
//! by their high bytes, so order is not kept), and re-encoding must be stable.
//!
//! Input layout: byte 0 picks the reassembly bound (`(b0 + 1) * 64` bytes, so the `TooLarge` path
//! is reached), then messages as `[len_hi][len_lo][len bytes]` until the input ends.
#![no_main]

use libfuzzer_sys::fuzz_target;
use segswarm_core::wire::{encode_command, Command, Incoming, MessageDecoder};

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

fuzz_target!(|data: &[u8]| {
    let Some((&bound, mut rest)) = data.split_first() else {
        return;
    };
    let mut decoder = MessageDecoder::with_max_command_bytes((usize::from(bound) + 1) * 64);
    while rest.len() >= 2 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (message, tail) = rest[2..].split_at(len);
        rest = tail;
        if let Ok(Some(Incoming::Command(cmd))) = decoder.push(message) {
            let wire = encode_command(&cmd);
            let again = decode_all(&wire);
            assert_eq!(sorted(&again), sorted(&cmd));
            assert_eq!(encode_command(&again), wire);
        }
    }
    // The whole input as one message, too (the most common shape on a real channel).
    let _ = MessageDecoder::new().push(data);
});
