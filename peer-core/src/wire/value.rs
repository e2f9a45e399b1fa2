//! Typed values of a command payload, as p2p-media-loader 2.3.x serializes them.
//!
//! Every value starts with a byte whose high nibble is its type:
//!
//! | type | layout |
//! |------|--------|
//! | 0 integer | low nibble `n` = byte count; `n` bytes of magnitude, big-endian; bit 7 of the first magnitude byte is the sign |
//! | 1 similar-int array | second byte = group count `g`; `g` times: an integer `common | count` (common = value with its low byte cleared, in two's complement), then `count` low bytes |
//! | 2 string | low nibble and the next byte = 12-bit length; that many UTF-8 bytes |
//!
//! The integer byte count is the smallest `n` with `8n ≥ bits(|v|) + 1` (one bit kept for the
//! sign; zero takes one byte). Array groups appear in order of their first member; members keep
//! their order, duplicates included.

use super::WireError;

/// Type code of an integer value (high nibble of its first byte).
pub const TYPE_INT: u8 = 0;
/// Type code of a similar-int array value.
pub const TYPE_SIMILAR_INT_ARRAY: u8 = 1;
/// Type code of a string value.
pub const TYPE_STRING: u8 = 2;

/// Largest number of members one array group can carry: the count shares a byte with nothing
/// else, and p2p-media-loader writes it modulo 256.
pub const MAX_GROUP_MEMBERS: usize = 255;
/// Largest number of groups one array can carry: the group count is one byte.
pub const MAX_GROUPS: usize = 255;

/// A decoded payload value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// An integer (up to 15 magnitude bytes, so `i128` holds every one).
    Int(i128),
    /// A similar-int array, flattened in wire order.
    IntArray(Vec<i128>),
    /// A string's raw bytes (no command of protocol v2 uses strings; they are parsed and skipped).
    Bytes(Vec<u8>),
}

/// Appends an integer value (type byte and magnitude) to `out`.
pub fn put_int(out: &mut Vec<u8>, value: i128) {
    let magnitude = value.unsigned_abs();
    let bits = if magnitude == 0 {
        1
    } else {
        128 - magnitude.leading_zeros() as usize
    };
    let len = (bits + 1).div_ceil(8);
    out.push((TYPE_INT << 4) | len as u8);
    let be = magnitude.to_be_bytes();
    let start = out.len();
    out.extend_from_slice(&be[be.len() - len..]);
    if value < 0 {
        out[start] |= 0x80;
    }
}

/// Appends a similar-int array value to `out`.
///
/// p2p-media-loader writes a group's member count and the group count modulo 256, which corrupts
/// groups of 256 or more members and arrays of 256 or more groups. To stay decodable, groups are
/// split into runs of at most [`MAX_GROUP_MEMBERS`] (identical bytes to p2p-media-loader whenever
/// its own output is decodable) and groups past [`MAX_GROUPS`] are left out.
pub fn put_similar_int_array(out: &mut Vec<u8>, values: &[i64]) {
    // Groups keyed by common part, in order of first appearance.
    let mut groups: Vec<(i128, Vec<u8>)> = Vec::new();
    let mut index: crate::vecmap::VecMap<i128, usize> = crate::vecmap::VecMap::new();
    for &v in values {
        let v = i128::from(v);
        let common = v & !0xff;
        let low = (v & 0xff) as u8;
        match index.get(&common) {
            Some(&i) => groups[i].1.push(low),
            None => {
                index.insert(common, groups.len());
                groups.push((common, vec![low]));
            }
        }
    }
    let runs: Vec<(i128, &[u8])> = groups
        .iter()
        .flat_map(|(common, lows)| {
            lows.chunks(MAX_GROUP_MEMBERS)
                .map(move |run| (*common, run))
        })
        .collect();
    if runs.len() > MAX_GROUPS {
        tracing::warn!(
            groups = runs.len(),
            kept = MAX_GROUPS,
            "segment id list too spread out for one announcement; ids left out"
        );
    }
    let runs = &runs[..runs.len().min(MAX_GROUPS)];
    out.push(TYPE_SIMILAR_INT_ARRAY << 4);
    out.push(runs.len() as u8);
    for &(common, run) in runs {
        put_int(out, common | run.len() as i128);
        out.extend_from_slice(run);
    }
}

/// Reads one value of field `field` at the start of `bytes`; returns it and the bytes it used.
pub fn read_value(field: char, bytes: &[u8]) -> Result<(Value, usize), WireError> {
    let first = *bytes.first().ok_or(WireError::Truncated {
        field,
        needed: 1,
        available: 0,
    })?;
    match first >> 4 {
        TYPE_INT => {
            let (v, used) = read_int(field, bytes)?;
            Ok((Value::Int(v), used))
        }
        TYPE_SIMILAR_INT_ARRAY => {
            let (v, used) = read_similar_int_array(field, bytes)?;
            Ok((Value::IntArray(v), used))
        }
        TYPE_STRING => {
            let header = take(field, bytes, 0, 2)?;
            let len = (usize::from(header[0] & 0x0f) << 8) | usize::from(header[1]);
            let body = take(field, bytes, 2, len)?;
            Ok((Value::Bytes(body.to_vec()), 2 + len))
        }
        type_code => Err(WireError::UnknownValueType { field, type_code }),
    }
}

/// Reads an integer value (type byte included) at the start of `bytes`.
pub fn read_int(field: char, bytes: &[u8]) -> Result<(i128, usize), WireError> {
    let meta = take(field, bytes, 0, 1)?[0];
    if meta >> 4 != TYPE_INT {
        return Err(WireError::WrongFieldType {
            field,
            expected: "integer",
        });
    }
    let len = usize::from(meta & 0x0f);
    let body = take(field, bytes, 1, len)?;
    let mut magnitude: i128 = 0;
    for (i, b) in body.iter().enumerate() {
        let b = if i == 0 { b & 0x7f } else { *b };
        magnitude = (magnitude << 8) | i128::from(b);
    }
    let negative = body.first().is_some_and(|b| b & 0x80 != 0);
    Ok((if negative { -magnitude } else { magnitude }, 1 + len))
}

fn read_similar_int_array(field: char, bytes: &[u8]) -> Result<(Vec<i128>, usize), WireError> {
    let header = take(field, bytes, 0, 2)?;
    let groups = header[1];
    let mut offset = 2;
    let mut values = Vec::new();
    for _ in 0..groups {
        let (common_and_count, used) = read_int(field, &bytes[offset..])?;
        offset += used;
        let count = (common_and_count & 0xff) as usize;
        let common = common_and_count & !0xff;
        let lows = take(field, bytes, offset, count)?;
        values.extend(lows.iter().map(|&low| common | i128::from(low)));
        offset += count;
    }
    Ok((values, offset))
}

/// `bytes[offset..offset + len]`, or a [`WireError::Truncated`] naming `field`.
fn take(field: char, bytes: &[u8], offset: usize, len: usize) -> Result<&[u8], WireError> {
    let available = bytes.len().saturating_sub(offset);
    if available < len {
        return Err(WireError::Truncated {
            field,
            needed: len,
            available,
        });
    }
    Ok(&bytes[offset..offset + len])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn int_bytes(v: i128) -> Vec<u8> {
        let mut out = Vec::new();
        put_int(&mut out, v);
        out
    }

    #[test]
    fn integers_use_the_fewest_bytes_with_a_sign_bit() {
        assert_eq!(int_bytes(0), [0x01, 0x00]);
        assert_eq!(int_bytes(127), [0x01, 0x7f]);
        assert_eq!(int_bytes(128), [0x02, 0x00, 0x80]);
        assert_eq!(int_bytes(-1), [0x01, 0x81]);
        assert_eq!(int_bytes(-127), [0x01, 0xff]);
        assert_eq!(int_bytes(-128), [0x02, 0x80, 0x80]);
        assert_eq!(int_bytes(0x1234_5678), [0x04, 0x12, 0x34, 0x56, 0x78]);
        assert_eq!(int_bytes(i128::from(i64::MIN)).len(), 1 + 9);
    }

    #[test]
    fn integers_round_trip() {
        for v in [
            0,
            1,
            -1,
            255,
            256,
            -256,
            i128::from(i64::MAX),
            i128::from(i64::MIN),
        ] {
            let bytes = int_bytes(v);
            assert_eq!(read_int('x', &bytes).unwrap(), (v, bytes.len()));
        }
    }

    #[test]
    fn zero_length_integer_reads_as_zero_and_short_ones_are_truncated() {
        assert_eq!(read_int('i', &[0x00]).unwrap(), (0, 1));
        assert_eq!(
            read_int('i', &[0x03, 0x01]),
            Err(WireError::Truncated {
                field: 'i',
                needed: 3,
                available: 1
            })
        );
    }

    #[test]
    fn arrays_group_by_common_part_in_first_seen_order() {
        let mut out = Vec::new();
        put_similar_int_array(&mut out, &[1, 2, 300, 3]);
        // 2 groups: common 0 with 3 members (1, 2, 3), common 256 with 1 member (44).
        assert_eq!(out, [0x10, 2, 0x01, 3, 1, 2, 3, 0x02, 0x01, 0x01, 44]);
        let (values, used) = read_similar_int_array('l', &out).unwrap();
        assert_eq!(values, [1, 2, 3, 300]);
        assert_eq!(used, out.len());
    }

    #[test]
    fn negative_members_keep_two_complement_common_parts() {
        let mut out = Vec::new();
        put_similar_int_array(&mut out, &[-1, -2, -300]);
        let (values, _) = read_similar_int_array('l', &out).unwrap();
        assert_eq!(values, [-1, -2, -300]);
    }

    #[test]
    fn large_groups_are_split_and_extra_groups_dropped() {
        let ids: Vec<i64> = (0..600).collect();
        let mut out = Vec::new();
        put_similar_int_array(&mut out, &ids);
        let (values, _) = read_similar_int_array('l', &out).unwrap();
        assert_eq!(values, (0..600).map(i128::from).collect::<Vec<_>>());

        let sparse: Vec<i64> = (0..300).map(|i| i * 256).collect();
        let mut out = Vec::new();
        put_similar_int_array(&mut out, &sparse);
        let (values, _) = read_similar_int_array('l', &out).unwrap();
        assert_eq!(values.len(), MAX_GROUPS);
        assert_eq!(values[254], 254 * 256);
    }

    #[test]
    fn unknown_value_type_is_named() {
        assert_eq!(
            read_value('q', &[0x30]),
            Err(WireError::UnknownValueType {
                field: 'q',
                type_code: 3
            })
        );
    }
}
