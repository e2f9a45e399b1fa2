//! What the load generator puts in the tracker messages it sends (written and read with the shared
//! codec, [`segswarm_ws_protocol`]): fake but realistic SDP bodies, and timestamps.
//!
//! Timestamps ride inside the messages so latency can be measured at the receiving peer: an offer's
//! `offer_id` starts with 16 hex digits of microseconds since the run began, and an answer's SDP
//! carries its send time as the session id of its `o=` line.

use segswarm_ws_protocol::Id20;

/// Builds an SDP body of about `target_len` bytes (before JSON escaping), shaped like a Chromium
/// data-channel-only offer or answer: session, one `m=application` section, ICE, DTLS, candidates.
/// The `o=` line carries `session_id`.
pub fn fake_sdp(answer: bool, session_id: u64, target_len: usize) -> String {
    let mut lines: Vec<String> = vec![
        "v=0".into(),
        format!("o=- {session_id} 2 IN IP4 127.0.0.1"),
        "s=-".into(),
        "t=0 0".into(),
        "a=group:BUNDLE 0".into(),
        "a=extmap-allow-mixed".into(),
        "a=msid-semantic: WMS".into(),
        "m=application 9 UDP/DTLS/SCTP webrtc-datachannel".into(),
        "c=IN IP4 0.0.0.0".into(),
        "a=ice-ufrag:k9Zq".into(),
        "a=ice-pwd:Xf3q8LmN2vB7cR1tY6wP0sDa".into(),
        "a=ice-options:trickle".into(),
        "a=fingerprint:sha-256 4F:A2:19:C7:3B:8E:D0:55:6A:F1:20:9C:E4:7B:13:88:D6:2F:A9:50:1C:E7:84:3D:B2:6F:0A:95:C8:71:3E:DA".into(),
        format!("a=setup:{}", if answer { "active" } else { "actpass" }),
        "a=mid:0".into(),
        "a=sctp-port:5000".into(),
        "a=max-message-size:262144".into(),
    ];
    let mut len: usize = lines.iter().map(|l| l.len() + 2).sum();
    let mut n = 0u32;
    while len < target_len {
        let line = format!(
            "a=candidate:{} 1 udp {} 192.168.{}.{} {} typ host generation 0 network-id {}",
            1_467_250_027u32.wrapping_add(n * 7919),
            2_122_260_223u32 - n,
            n % 250,
            (n * 37) % 250 + 2,
            50_000 + n * 13,
            n + 1
        );
        len += line.len() + 2;
        lines.push(line);
        n += 1;
    }
    let mut sdp = lines.join("\r\n");
    sdp.push_str("\r\n");
    sdp
}

/// An offer id carrying its send time: 16 hex digits of microseconds, then 4 of a sequence number.
pub fn offer_id(sent_micros: u64, seq: u32) -> Id20 {
    let text = format!("{sent_micros:016x}{:04x}", seq & 0xffff);
    Id20::from_bytes(text.as_bytes()).unwrap_or_default()
}

/// The send time carried by an [`offer_id`], if the id is one of ours.
pub fn offer_id_micros(id: &Id20) -> Option<u64> {
    u64::from_str_radix(std::str::from_utf8(id.0.get(..16)?).ok()?, 16).ok()
}

/// The session id of an SDP's `o=` line (the answer's send time), if present.
pub fn sdp_session_micros(sdp: &str) -> Option<u64> {
    let rest = &sdp[sdp.find("o=- ")? + 4..];
    rest.split(' ').next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdp_has_requested_size_and_session_id() {
        let sdp = fake_sdp(false, 123_456, 600);
        assert!(sdp.len() >= 600 && sdp.len() < 700, "len {}", sdp.len());
        assert_eq!(sdp_session_micros(&sdp), Some(123_456));
    }

    #[test]
    fn offer_id_round_trips_time() {
        let id = offer_id(987_654_321, 70_000);
        assert_eq!(offer_id_micros(&id), Some(987_654_321));
        assert_eq!(offer_id_micros(&Id20([b'z'; 20])), None);
    }
}
