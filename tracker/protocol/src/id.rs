//! [`Id20`], the one id type of the protocol, and its binary-string JSON form.

use std::fmt;

/// A 20-byte identifier: info_hash, peer_id or offer_id.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Id20(pub [u8; 20]);

/// The identifier of a swarm (SHA-1 of the torrent's info dictionary, or p2p-media-loader's stream hash).
pub type InfoHash = Id20;
/// The identifier a peer chooses for itself.
pub type PeerId = Id20;
/// The identifier a peer chooses for one WebRTC offer.
pub type OfferId = Id20;

impl Id20 {
    /// Decodes a "binary string": exactly 20 characters, each U+0000..=U+00FF being one byte.
    pub fn from_binary_str(s: &str) -> Option<Id20> {
        // Characters U+0000..=U+00FF are one byte (ASCII) or two (lead byte 0xC2 or 0xC3) in UTF-8;
        // `s` is valid UTF-8, so a lead byte is always followed by its continuation byte.
        let bytes = s.as_bytes();
        if !(20..=40).contains(&bytes.len()) {
            return None;
        }
        let mut out = [0u8; 20];
        let mut n = 0;
        let mut i = 0;
        while i < bytes.len() {
            let slot = out.get_mut(n)?;
            match bytes[i] {
                b @ 0..=0x7f => {
                    *slot = b;
                    i += 1;
                }
                lead @ (0xc2 | 0xc3) => {
                    *slot = ((lead & 0x1f) << 6) | (bytes.get(i + 1)? & 0x3f);
                    i += 2;
                }
                _ => return None,
            }
            n += 1;
        }
        (n == 20).then_some(Id20(out))
    }

    /// Decodes 40 hexadecimal digits (either case).
    pub fn from_hex(s: &str) -> Option<Id20> {
        let bytes = s.as_bytes();
        if bytes.len() != 40 {
            return None;
        }
        let mut out = [0u8; 20];
        for (i, pair) in bytes.chunks_exact(2).enumerate() {
            let hi = hex_digit(pair[0])?;
            let lo = hex_digit(pair[1])?;
            out[i] = (hi << 4) | lo;
        }
        Some(Id20(out))
    }

    /// Copies exactly 20 raw bytes.
    pub fn from_bytes(bytes: &[u8]) -> Option<Id20> {
        <[u8; 20]>::try_from(bytes).ok().map(Id20)
    }

    /// 40 lowercase hexadecimal digits.
    pub fn to_hex(&self) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut s = String::with_capacity(40);
        for b in self.0 {
            s.push(DIGITS[usize::from(b >> 4)] as char);
            s.push(DIGITS[usize::from(b & 15)] as char);
        }
        s
    }

    /// The binary string form (each byte one character U+0000..=U+00FF).
    pub fn to_binary_string(&self) -> String {
        self.0.iter().map(|&b| char::from(b)).collect()
    }
}

impl fmt::Debug for Id20 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Display for Id20 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// Decodes a binary-string id from the JSON string literal of a message (as serde_json checked
/// it: quoted, escapes well formed, valid UTF-8); `None` unless it is 20 characters of
/// U+0000..=U+00FF.
#[inline]
pub fn id_from_json(literal: &str) -> Option<Id20> {
    let inner = literal.strip_prefix('"')?.strip_suffix('"')?.as_bytes();
    let mut out = [0u8; 20];
    let mut n = 0;
    let mut i = 0;
    while i < inner.len() {
        let (byte, used) = match inner[i] {
            b'\\' => decode_escape(&inner[i..])?,
            ascii @ 0..=0x7f => (ascii, 1),
            // U+0080..=U+00FF in UTF-8: a lead byte 0xC2 or 0xC3 and a continuation byte.
            lead @ (0xc2 | 0xc3) => (((lead & 0x1f) << 6) | (inner.get(i + 1)? & 0x3f), 2),
            _ => return None,
        };
        *out.get_mut(n)? = byte;
        n += 1;
        i += used;
    }
    (n == 20).then_some(Id20(out))
}

/// The escape at the start of `text` (a backslash and `"`, `n`, `u00XX`, ...): its byte and its
/// length; `None` for a character above U+00FF.
#[inline]
fn decode_escape(text: &[u8]) -> Option<(u8, usize)> {
    let byte = match *text.get(1)? {
        escape @ (b'"' | b'\\' | b'/') => escape,
        b'b' => 0x08,
        b'f' => 0x0c,
        b'n' => b'\n',
        b'r' => b'\r',
        b't' => b'\t',
        b'u' => {
            return match text.get(2..6)? {
                [b'0', b'0', hi, lo] => Some(((hex_digit(*hi)? << 4) | hex_digit(*lo)?, 6)),
                _ => None,
            }
        }
        _ => return None,
    };
    Some((byte, 2))
}

/// The value of one hexadecimal digit (either case); `None` for any other byte.
#[inline]
pub fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Appends `bytes` as a JSON string literal in binary-string form.
pub fn push_binary_string(out: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    // Encoded 20 bytes at a time into a buffer that fits the longest encoding (6 bytes each).
    for chunk in bytes.chunks(20) {
        let mut buf = [0u8; 120];
        let mut n = 0;
        for &b in chunk {
            match b {
                b'"' | b'\\' => {
                    buf[n..n + 2].copy_from_slice(&[b'\\', b]);
                    n += 2;
                }
                0..=0x1f => {
                    let escape = [
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(b >> 4)],
                        HEX[usize::from(b & 15)],
                    ];
                    buf[n..n + 6].copy_from_slice(&escape);
                    n += 6;
                }
                0x20..=0x7f => {
                    buf[n] = b;
                    n += 1;
                }
                // U+0080..=U+00FF in UTF-8.
                _ => {
                    buf[n..n + 2].copy_from_slice(&[0xc0 | (b >> 6), 0x80 | (b & 0x3f)]);
                    n += 2;
                }
            }
        }
        // Always valid UTF-8: ASCII and complete two-byte sequences only.
        if let Ok(text) = std::str::from_utf8(&buf[..n]) {
            out.push_str(text);
        }
    }
    out.push('"');
}

/// The length of [`push_binary_string`]'s output for `bytes`, quotes included.
pub fn binary_string_len(bytes: &[u8]) -> usize {
    2 + bytes
        .iter()
        .map(|&b| match b {
            b'"' | b'\\' | 0x80.. => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// `id` as a JSON string literal in binary-string form.
pub fn id_json(id: &Id20) -> String {
    let mut out = String::with_capacity(binary_string_len(&id.0));
    push_binary_string(&mut out, &id.0);
    out
}
