//! Fuzzes the tracker's HTTP query parsers (`segswarm_tracker::protocol::http::parse_announce`
//! and `parse_scrape`) with the input as the query string of `GET /announce?…` and of
//! `GET /scrape?…`. Nothing may panic, and:
//!
//! - an accepted announce, re-encoded as a BitTorrent client writes it (every id byte
//!   percent-escaped), parses to the same request; the same query read as a scrape lists its
//!   info_hash last (the announce keeps the last one, and refuses a query with a bad one);
//! - the bencoded reply built from it (`encode_announce`, compact or not, as the request asks)
//!   gives a client back the peer's port and, unless `no_peer_id`, its id;
//! - an accepted scrape, re-encoded, parses to the same info_hashes, and its reply
//!   (`encode_scrape`) lists each of them once with its counts;
//! - `percent_decode` undoes percent-escaping of the input bytes.
//!
//! Input layout: the whole input is the query (invalid UTF-8 replaced).
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use bt_bencode::Value;
use libfuzzer_sys::fuzz_target;
use segswarm_tracker::protocol::http::{
    encode_announce, encode_scrape, parse_announce, parse_scrape, percent_decode, HttpAnnounce,
    HttpPeer,
};
use segswarm_tracker::protocol::ws::ScrapeCounts;
use segswarm_tracker::protocol::{AnnounceEvent, Id20};

/// Every byte as `%XX`.
fn escaped(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(bytes.len() * 3);
    for &b in bytes {
        out.push('%');
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 15)]));
    }
    out
}

fn event_name(event: AnnounceEvent) -> &'static str {
    match event {
        AnnounceEvent::Started => "started",
        AnnounceEvent::Stopped => "stopped",
        AnnounceEvent::Completed => "completed",
        AnnounceEvent::Update => "update",
        AnnounceEvent::Paused => "paused",
    }
}

/// The announce as a BitTorrent client writes its query.
fn client_query(a: &HttpAnnounce) -> String {
    let mut q = format!(
        "info_hash={}&peer_id={}&port={}&uploaded=0&downloaded=0&left={}&compact={}&no_peer_id={}&event={}",
        escaped(&a.info_hash.0),
        escaped(&a.peer_id.0),
        a.port,
        if a.seeder { 0 } else { 1 },
        u8::from(a.compact),
        u8::from(a.no_peer_id),
        event_name(a.event),
    );
    if let Some(n) = a.numwant {
        q.push_str(&format!("&numwant={n}"));
    }
    q
}

fn dict_get<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.as_dict()
        .and_then(|d| d.get(key.as_bytes()))
        .unwrap_or_else(|| panic!("no {key:?} in {v:?}"))
}

fn check_announce(query: &str, a: &HttpAnnounce) {
    let again = client_query(a);
    assert_eq!(parse_announce(&again).as_ref(), Ok(a), "{again}");
    let ids = parse_scrape(query).expect("an accepted announce has valid info_hashes");
    assert_eq!(ids.last(), Some(&a.info_hash));

    // The reply, with this peer listed once over IPv4 and once over IPv6.
    let peers = [
        HttpPeer {
            peer_id: a.peer_id,
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, 7)), a.port),
        },
        HttpPeer {
            peer_id: a.peer_id,
            addr: SocketAddr::new(
                IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
                a.port,
            ),
        },
    ];
    let warning = a
        .numwant
        .map(|n| format!("numwant {n} is above this tracker's limit"));
    let reply = encode_announce(
        3,
        4,
        1800,
        &peers,
        a.compact,
        a.no_peer_id,
        warning.as_deref(),
    );
    let v: Value = bt_bencode::from_slice(&reply).expect("announce reply is bencode");
    assert_eq!(dict_get(&v, "interval").as_u64(), Some(1800));
    let port = a.port.to_be_bytes();
    if a.compact {
        let v4 = dict_get(&v, "peers").as_byte_str().expect("compact peers");
        assert_eq!(v4.as_slice(), &[192, 0, 2, 7, port[0], port[1]]);
        let v6 = dict_get(&v, "peers6")
            .as_byte_str()
            .expect("compact peers6");
        assert_eq!(v6.as_slice().len(), 18);
        assert_eq!(&v6.as_slice()[16..], &port);
    } else {
        let list = dict_get(&v, "peers").as_array().expect("peer list");
        assert_eq!(list.len(), 2);
        for peer in list {
            assert_eq!(dict_get(peer, "port").as_u64(), Some(u64::from(a.port)));
            let id = peer.as_dict().and_then(|d| d.get(b"peer id".as_slice()));
            match id.and_then(Value::as_byte_str) {
                Some(id) => {
                    assert!(!a.no_peer_id);
                    assert_eq!(id.as_slice(), &a.peer_id.0);
                }
                None => assert!(a.no_peer_id && id.is_none()),
            }
        }
    }
    if let Some(w) = &warning {
        let got = dict_get(&v, "warning message")
            .as_byte_str()
            .expect("warning");
        assert_eq!(got.as_slice(), w.as_bytes());
    }
}

fn check_scrape(ids: &[Id20]) {
    let query: Vec<String> = ids
        .iter()
        .map(|id| format!("info_hash={}", escaped(&id.0)))
        .collect();
    let query = query.join("&");
    assert_eq!(parse_scrape(&query).as_deref(), Ok(ids), "{query}");

    let counts = ScrapeCounts {
        complete: 1,
        incomplete: 2,
        downloaded: 3,
    };
    let files: Vec<(Id20, ScrapeCounts)> = ids.iter().map(|id| (*id, counts)).collect();
    let v: Value = bt_bencode::from_slice(&encode_scrape(&files)).expect("scrape reply is bencode");
    let listed = dict_get(&v, "files")
        .as_dict()
        .expect("files is a dictionary");
    let mut want: Vec<&[u8]> = ids.iter().map(|id| id.0.as_slice()).collect();
    want.sort_unstable();
    want.dedup();
    let got: Vec<&[u8]> = listed.keys().map(|k| k.as_slice()).collect();
    assert_eq!(got, want);
    for file in listed.values() {
        assert_eq!(dict_get(file, "complete").as_u64(), Some(1));
        assert_eq!(dict_get(file, "incomplete").as_u64(), Some(2));
        assert_eq!(dict_get(file, "downloaded").as_u64(), Some(3));
    }
}

fuzz_target!(|data: &[u8]| {
    let query = String::from_utf8_lossy(data);
    if let Ok(a) = parse_announce(&query) {
        check_announce(&query, &a);
    }
    if let Ok(ids) = parse_scrape(&query) {
        check_scrape(&ids);
    }
    assert_eq!(percent_decode(&escaped(data)).as_deref(), Some(data));
});
