//! The client address of a request behind a reverse proxy (`server.trust_forwarded_for`): the
//! last `X-Forwarded-For` entry (the one the nearest proxy appended; earlier entries are written
//! by the client), or else `X-Real-IP`, or else the TCP peer.

use std::net::{IpAddr, SocketAddr};

use hyper::header::HeaderMap;

use super::canonical_ip;

/// The client IP of a request from TCP peer `peer`; headers are read only when `trust`.
pub(crate) fn client_ip(headers: &HeaderMap, peer: IpAddr, trust: bool) -> IpAddr {
    if !trust {
        return canonical_ip(peer);
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .next_back()
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.rsplit(',').next())
        .and_then(parse_ip);
    let real = || {
        headers
            .get("x-real-ip")
            .and_then(|value| value.to_str().ok())
            .and_then(parse_ip)
    };
    canonical_ip(forwarded.or_else(real).unwrap_or(peer))
}

/// `203.0.113.7`, `2001:db8::1`, `[2001:db8::1]`, or either with a port.
fn parse_ip(text: &str) -> Option<IpAddr> {
    let text = text.trim();
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Some(addr.ip());
    }
    text.strip_prefix('[')
        .and_then(|t| t.strip_suffix(']'))
        .and_then(|t| t.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;
    use std::net::Ipv4Addr;

    const PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_headers_are_ignored() {
        let h = headers(&[("x-forwarded-for", "203.0.113.7"), ("x-real-ip", "1.2.3.4")]);
        assert_eq!(client_ip(&h, PEER, false), PEER);
    }

    #[test]
    fn last_forwarded_entry_wins() {
        let h = headers(&[
            ("x-forwarded-for", "198.51.100.1, 198.51.100.2"),
            ("x-forwarded-for", "192.0.2.9,203.0.113.7"),
            ("x-real-ip", "1.2.3.4"),
        ]);
        assert_eq!(client_ip(&h, PEER, true), ip("203.0.113.7"));
    }

    #[test]
    fn real_ip_then_peer_as_fallbacks() {
        let h = headers(&[("x-real-ip", " 2001:db8::5 ")]);
        assert_eq!(client_ip(&h, PEER, true), ip("2001:db8::5"));
        let h = headers(&[("x-forwarded-for", "garbage"), ("x-real-ip", "1.2.3.4")]);
        assert_eq!(client_ip(&h, PEER, true), ip("1.2.3.4"));
        assert_eq!(client_ip(&HeaderMap::new(), PEER, true), PEER);
        let h = headers(&[("x-forwarded-for", "unknown")]);
        assert_eq!(client_ip(&h, PEER, true), PEER);
    }

    #[test]
    fn ports_brackets_and_mapped_addresses() {
        for (value, want) in [
            ("203.0.113.7:4000", "203.0.113.7"),
            ("[2001:db8::1]:443", "2001:db8::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("::ffff:203.0.113.7", "203.0.113.7"),
        ] {
            let mut h = HeaderMap::new();
            h.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
            assert_eq!(client_ip(&h, PEER, true), ip(want), "{value}");
        }
    }
}
