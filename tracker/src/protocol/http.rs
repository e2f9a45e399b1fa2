//! BitTorrent HTTP tracker requests and responses (BEP 3 announce, BEP 23 compact peers,
//! BEP 7 `peers6`, BEP 48 scrape): query-string parsing with percent-decoded binary ids, and
//! bencoded responses.

use std::net::{IpAddr, SocketAddr};

use super::ws::hex_digit;
use super::ws::ScrapeCounts;
use super::{AnnounceEvent, ErrorKind, Id20};

/// A parsed `GET /announce` query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpAnnounce {
    /// The swarm.
    pub info_hash: Id20,
    /// The peer's id.
    pub peer_id: Id20,
    /// The peer's listening port.
    pub port: u16,
    /// The event (missing = update).
    pub event: AnnounceEvent,
    /// `left=0`.
    pub seeder: bool,
    /// Compact peer list wanted (default true; `compact=0` asks for dictionaries).
    pub compact: bool,
    /// `no_peer_id=1`: omit peer ids from a non-compact list.
    pub no_peer_id: bool,
    /// Peers wanted, if given.
    pub numwant: Option<usize>,
}

/// A query that could not be accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpParseError {
    /// The metric label.
    pub kind: ErrorKind,
    /// The `failure reason` text.
    pub reason: &'static str,
}

/// Percent-decodes a query component (`+` is a space); `None` on a broken escape.
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hi = hex_digit(*bytes.get(i + 1)?)?;
                let lo = hex_digit(*bytes.get(i + 2)?)?;
                out.push((hi << 4) | lo);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(out)
}

/// Splits a query string into decoded `(name, value)` pairs; broken escapes yield `None` values.
fn pairs(query: &str) -> impl Iterator<Item = (&str, Option<Vec<u8>>)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        (name, percent_decode(value))
    })
}

fn number<T: std::str::FromStr>(value: &Option<Vec<u8>>) -> Option<T> {
    value
        .as_deref()
        .and_then(|v| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse().ok())
}

/// Parses the query of `GET /announce` (the part after `?`).
pub fn parse_announce(query: &str) -> Result<HttpAnnounce, HttpParseError> {
    let err = |kind, reason| HttpParseError { kind, reason };
    let mut info_hash = None;
    let mut peer_id = None;
    let mut port = None;
    let mut event = AnnounceEvent::Update;
    let mut seeder = false;
    let mut compact = true;
    let mut no_peer_id = false;
    let mut numwant = None;
    for (name, value) in pairs(query) {
        match name {
            "info_hash" => {
                info_hash = Some(
                    value
                        .as_deref()
                        .and_then(Id20::from_bytes)
                        .ok_or(err(ErrorKind::InvalidInfoHash, "invalid info_hash"))?,
                )
            }
            "peer_id" => {
                peer_id = Some(
                    value
                        .as_deref()
                        .and_then(Id20::from_bytes)
                        .ok_or(err(ErrorKind::InvalidPeerId, "invalid peer_id"))?,
                )
            }
            "port" => {
                port = Some(
                    number::<u16>(&value).ok_or(err(ErrorKind::InvalidRequest, "invalid port"))?,
                )
            }
            "left" => seeder = number::<u64>(&value) == Some(0),
            "compact" => compact = value.as_deref() != Some(b"0"),
            "no_peer_id" => no_peer_id = value.as_deref() == Some(b"1"),
            "numwant" => numwant = number::<usize>(&value),
            "event" => {
                event = value
                    .as_deref()
                    .and_then(|v| std::str::from_utf8(v).ok())
                    .and_then(AnnounceEvent::parse)
                    .ok_or(err(ErrorKind::InvalidEvent, "invalid event"))?
            }
            _ => {}
        }
    }
    Ok(HttpAnnounce {
        info_hash: info_hash.ok_or(err(ErrorKind::InvalidInfoHash, "missing info_hash"))?,
        peer_id: peer_id.ok_or(err(ErrorKind::InvalidPeerId, "missing peer_id"))?,
        port: port.ok_or(err(ErrorKind::InvalidRequest, "missing port"))?,
        event,
        seeder,
        compact,
        no_peer_id,
        numwant,
    })
}

/// Parses the query of `GET /scrape`: the listed info_hashes (empty = every swarm).
pub fn parse_scrape(query: &str) -> Result<Vec<Id20>, HttpParseError> {
    let mut out = Vec::new();
    for (name, value) in pairs(query) {
        if name == "info_hash" {
            out.push(
                value
                    .as_deref()
                    .and_then(Id20::from_bytes)
                    .ok_or(HttpParseError {
                        kind: ErrorKind::InvalidInfoHash,
                        reason: "invalid info_hash",
                    })?,
            );
        }
    }
    Ok(out)
}

/// A peer in an HTTP announce response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpPeer {
    /// Its peer id.
    pub peer_id: Id20,
    /// Where it listens.
    pub addr: SocketAddr,
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.extend_from_slice(bytes.len().to_string().as_bytes());
    out.push(b':');
    out.extend_from_slice(bytes);
}

fn put_int(out: &mut Vec<u8>, n: u64) {
    out.push(b'i');
    out.extend_from_slice(n.to_string().as_bytes());
    out.push(b'e');
}

/// The address with IPv4-mapped IPv6 shown as IPv4.
fn canonical(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => SocketAddr::new(IpAddr::V4(v4), addr.port()),
            None => addr,
        },
        IpAddr::V4(_) => addr,
    }
}

/// Bencoded announce response: `complete`, `incomplete`, `interval` and the peers, compact
/// (`peers` 6 bytes per IPv4 peer, `peers6` 18 bytes per IPv6 peer) or as a list of dictionaries,
/// and a `warning message` when given (the announce was accepted but trimmed).
pub fn encode_announce(
    complete: u64,
    incomplete: u64,
    interval_secs: u64,
    peers: &[HttpPeer],
    compact: bool,
    no_peer_id: bool,
    warning: Option<&str>,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + peers.len() * 20);
    out.push(b'd');
    put_bytes(&mut out, b"complete");
    put_int(&mut out, complete);
    put_bytes(&mut out, b"incomplete");
    put_int(&mut out, incomplete);
    put_bytes(&mut out, b"interval");
    put_int(&mut out, interval_secs);
    if compact {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        for peer in peers {
            let addr = canonical(peer.addr);
            match addr.ip() {
                IpAddr::V4(ip) => {
                    v4.extend_from_slice(&ip.octets());
                    v4.extend_from_slice(&addr.port().to_be_bytes());
                }
                IpAddr::V6(ip) => {
                    v6.extend_from_slice(&ip.octets());
                    v6.extend_from_slice(&addr.port().to_be_bytes());
                }
            }
        }
        put_bytes(&mut out, b"peers");
        put_bytes(&mut out, &v4);
        put_bytes(&mut out, b"peers6");
        put_bytes(&mut out, &v6);
    } else {
        put_bytes(&mut out, b"peers");
        out.push(b'l');
        for peer in peers {
            let addr = canonical(peer.addr);
            out.push(b'd');
            put_bytes(&mut out, b"ip");
            put_bytes(&mut out, addr.ip().to_string().as_bytes());
            if !no_peer_id {
                put_bytes(&mut out, b"peer id");
                put_bytes(&mut out, &peer.peer_id.0);
            }
            put_bytes(&mut out, b"port");
            put_int(&mut out, u64::from(addr.port()));
            out.push(b'e');
        }
        out.push(b'e');
    }
    // Keys in sorted order: "warning message" comes after "peers"/"peers6".
    if let Some(warning) = warning {
        put_bytes(&mut out, b"warning message");
        put_bytes(&mut out, warning.as_bytes());
    }
    out.push(b'e');
    out
}

/// Bencoded scrape response: `files` keyed by raw info_hash, sorted.
pub fn encode_scrape(files: &[(Id20, ScrapeCounts)]) -> Vec<u8> {
    let mut sorted: Vec<&(Id20, ScrapeCounts)> = files.iter().collect();
    sorted.sort_by_key(|entry| entry.0);
    sorted.dedup_by(|a, b| a.0 == b.0);
    let mut out = Vec::with_capacity(16 + files.len() * 70);
    out.extend_from_slice(b"d5:filesd");
    for (id, counts) in sorted {
        put_bytes(&mut out, &id.0);
        out.push(b'd');
        put_bytes(&mut out, b"complete");
        put_int(&mut out, counts.complete);
        put_bytes(&mut out, b"downloaded");
        put_int(&mut out, counts.downloaded);
        put_bytes(&mut out, b"incomplete");
        put_int(&mut out, counts.incomplete);
        out.push(b'e');
    }
    out.extend_from_slice(b"ee");
    out
}

/// Bencoded `{"failure reason": reason}`.
pub fn encode_failure(reason: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(reason.len() + 24);
    out.push(b'd');
    put_bytes(&mut out, b"failure reason");
    put_bytes(&mut out, reason.as_bytes());
    out.push(b'e');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use bt_bencode::Value;

    fn escaped(id: &Id20) -> String {
        id.0.iter().map(|b| format!("%{b:02X}")).collect()
    }

    #[test]
    fn announce_query_decodes_binary_ids() {
        let ih = Id20([0xfe; 20]);
        let q = format!(
            "info_hash={}&peer_id=-qB4250-abcdefghijkl&port=6881&uploaded=0&downloaded=0&left=0&event=started&compact=1&numwant=5",
            escaped(&ih)
        );
        let a = parse_announce(&q).unwrap();
        assert_eq!(a.info_hash, ih);
        assert_eq!(&a.peer_id.0, b"-qB4250-abcdefghijkl");
        assert_eq!(a.port, 6881);
        assert!(a.seeder && a.compact);
        assert_eq!(a.event, AnnounceEvent::Started);
        assert_eq!(a.numwant, Some(5));
    }

    #[test]
    fn announce_query_errors() {
        let ok_ih = escaped(&Id20([1; 20]));
        let cases = [
            (
                "peer_id=-qB4250-abcdefghijkl&port=1".to_owned(),
                ErrorKind::InvalidInfoHash,
            ),
            (
                format!("info_hash={ok_ih}%41&peer_id=-qB4250-abcdefghijkl&port=1"),
                ErrorKind::InvalidInfoHash,
            ),
            (
                format!("info_hash={ok_ih}&peer_id=short&port=1"),
                ErrorKind::InvalidPeerId,
            ),
            (
                format!("info_hash={ok_ih}&peer_id=-qB4250-abcdefghijkl&port=x"),
                ErrorKind::InvalidRequest,
            ),
            (
                format!("info_hash={ok_ih}&peer_id=-qB4250-abcdefghijkl"),
                ErrorKind::InvalidRequest,
            ),
            (
                "info_hash=%Z1&peer_id=-qB4250-abcdefghijkl&port=1".to_owned(),
                ErrorKind::InvalidInfoHash,
            ),
        ];
        for (q, kind) in cases {
            assert_eq!(parse_announce(&q).unwrap_err().kind, kind, "{q}");
        }
    }

    #[test]
    fn compact_and_dictionary_peers() {
        let peers = [
            HttpPeer {
                peer_id: Id20([1; 20]),
                addr: "10.0.0.1:6881".parse().unwrap(),
            },
            HttpPeer {
                peer_id: Id20([2; 20]),
                addr: "[::1]:7000".parse().unwrap(),
            },
            HttpPeer {
                peer_id: Id20([3; 20]),
                addr: "[::ffff:10.0.0.2]:80".parse().unwrap(),
            },
        ];
        let v: Value =
            bt_bencode::from_slice(&encode_announce(2, 1, 1800, &peers, true, false, None))
                .unwrap();
        let d = v.as_dict().unwrap();
        assert_eq!(
            d.get(b"complete".as_slice()).and_then(Value::as_u64),
            Some(2)
        );
        let p4 = d
            .get(b"peers".as_slice())
            .and_then(Value::as_byte_str)
            .unwrap();
        assert_eq!(
            p4.as_slice(),
            &[10, 0, 0, 1, 0x1a, 0xe1, 10, 0, 0, 2, 0, 80]
        );
        let p6 = d
            .get(b"peers6".as_slice())
            .and_then(Value::as_byte_str)
            .unwrap();
        assert_eq!(p6.len(), 18);
        let v: Value = bt_bencode::from_slice(&encode_announce(
            0,
            3,
            60,
            &peers,
            false,
            false,
            Some("trimmed"),
        ))
        .unwrap();
        let list = v
            .as_dict()
            .unwrap()
            .get(b"peers".as_slice())
            .and_then(Value::as_array)
            .unwrap();
        assert_eq!(list.len(), 3);
        assert_eq!(
            v.as_dict()
                .unwrap()
                .get(b"warning message".as_slice())
                .and_then(Value::as_byte_str)
                .map(|b| b.as_slice()),
            Some(b"trimmed".as_slice())
        );
        let first = list[0].as_dict().unwrap();
        assert_eq!(
            first
                .get(b"ip".as_slice())
                .and_then(Value::as_byte_str)
                .unwrap()
                .as_slice(),
            b"10.0.0.1"
        );
        assert_eq!(
            first.get(b"port".as_slice()).and_then(Value::as_u64),
            Some(6881)
        );
        assert_eq!(
            first
                .get(b"peer id".as_slice())
                .and_then(Value::as_byte_str)
                .unwrap()
                .as_slice(),
            &[1u8; 20]
        );
    }

    #[test]
    fn scrape_round_trip() {
        let q = format!(
            "info_hash={}&info_hash={}",
            escaped(&Id20([5; 20])),
            escaped(&Id20([4; 20]))
        );
        let ids = parse_scrape(&q).unwrap();
        assert_eq!(ids, vec![Id20([5; 20]), Id20([4; 20])]);
        let files: Vec<_> = ids
            .iter()
            .map(|id| {
                (
                    *id,
                    ScrapeCounts {
                        complete: 1,
                        incomplete: 2,
                        downloaded: 3,
                    },
                )
            })
            .collect();
        let v: Value = bt_bencode::from_slice(&encode_scrape(&files)).unwrap();
        let files = v
            .as_dict()
            .unwrap()
            .get(b"files".as_slice())
            .and_then(Value::as_dict)
            .unwrap();
        assert_eq!(files.len(), 2);
        let f = files
            .get([5u8; 20].as_slice())
            .and_then(Value::as_dict)
            .unwrap();
        assert_eq!(
            f.get(b"downloaded".as_slice()).and_then(Value::as_u64),
            Some(3)
        );
        let v: Value = bt_bencode::from_slice(&encode_failure("nope")).unwrap();
        assert!(v
            .as_dict()
            .unwrap()
            .contains_key(b"failure reason".as_slice()));
    }
}
