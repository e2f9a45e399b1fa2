//! The answer of PeerTube's video list, `GET /api/v1/videos?sort=<sort>&count=<n>&start=<k>`
//! (`ResultList<Video>`: `total` and `data[]`), the fields a mirror's strategies read: `uuid`,
//! `views`, `isLive`, `publishedAt` (`server/core/models/video/formatter/video-api-format.ts`,
//! `videoModelToFormattedJSON`). The list carries no file sizes (its `include=files` flag is
//! reserved to moderators): sizes come from each video's details.
//!
//! Hostile answers are refused with the field named: no panic, no unbounded allocation (entries
//! past the caller's limit are an error, not silently kept).

use serde::Deserialize;

use super::api::ApiError;
use super::video_url::is_uuid;

/// The list orders a mirror asks for (`sort=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum VideoSort {
    /// `-views`: most viewed first.
    MostViews,
    /// `-trending`: PeerTube's trending score, best first.
    Trending,
    /// `-publishedAt`: newest first.
    RecentlyPublished,
}

impl VideoSort {
    /// The `sort` query value.
    pub fn as_query(self) -> &'static str {
        match self {
            VideoSort::MostViews => "-views",
            VideoSort::Trending => "-trending",
            VideoSort::RecentlyPublished => "-publishedAt",
        }
    }
}

/// One video of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedVideo {
    /// `uuid`.
    pub uuid: String,
    /// `views`.
    pub views: u64,
    /// `isLive`.
    pub is_live: bool,
    /// `publishedAt`, Unix seconds.
    pub published_at: i64,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RawVideo {
    uuid: String,
    #[serde(default)]
    views: u64,
    #[serde(default)]
    is_live: bool,
    published_at: String,
}

#[derive(Deserialize)]
struct RawList {
    data: Vec<serde_json::Value>,
}

const WHAT: &str = "/api/v1/videos";

fn field_error(field: String, value: &str) -> ApiError {
    ApiError::Field {
        what: WHAT,
        field,
        value: value.chars().take(80).collect(),
    }
}

/// Parses a list answer of at most `max_entries` videos.
pub fn parse_video_list(json: &[u8], max_entries: usize) -> Result<Vec<ListedVideo>, ApiError> {
    let list: RawList = serde_json::from_slice(json).map_err(|e| ApiError::Json {
        what: WHAT,
        error: e.to_string(),
    })?;
    if list.data.len() > max_entries {
        return Err(field_error(
            "data".into(),
            &format!(
                "{} entries, more than the {max_entries} asked for",
                list.data.len()
            ),
        ));
    }
    list.data
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            let raw: RawVideo = serde_json::from_value(v).map_err(|e| ApiError::Json {
                what: WHAT,
                error: format!("data[{i}]: {e}"),
            })?;
            if !is_uuid(&raw.uuid) {
                return Err(field_error(format!("data[{i}].uuid"), &raw.uuid));
            }
            let published_at = parse_rfc3339(&raw.published_at)
                .ok_or_else(|| field_error(format!("data[{i}].publishedAt"), &raw.published_at))?;
            Ok(ListedVideo {
                uuid: raw.uuid,
                views: raw.views,
                is_live: raw.is_live,
                published_at,
            })
        })
        .collect()
}

/// Unix seconds of an RFC 3339 UTC time as PeerTube writes it (`2025-06-01T10:00:00.000Z`;
/// fractions dropped, offsets `+hh:mm` applied). `None` when it is not one.
pub fn parse_rfc3339(s: &str) -> Option<i64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let part = b.get(r)?;
        if part.is_empty() || !part.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(part).ok()?.parse().ok()
    };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 {
        return None;
    }
    if second > 60 {
        return None;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let o = rest.as_bytes();
            if o.len() != 6 || !matches!(o[0], b'+' | b'-') || o[3] != b':' {
                return None;
            }
            let h: i64 = rest.get(1..3)?.parse().ok()?;
            let m: i64 = rest.get(4..6)?.parse().ok()?;
            let sign = if o[0] == b'-' { -1 } else { 1 };
            sign * (h * 3600 + m * 60)
        }
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    const UUID: &str = "9c9de5e8-0a1e-484a-b099-e80766180a6d";

    #[test]
    fn times_parse() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2025-06-01T10:00:00.000Z"),
            Some(1_748_772_000)
        );
        assert_eq!(
            parse_rfc3339("2025-06-01T12:00:00+02:00"),
            Some(1_748_772_000)
        );
        for bad in [
            "",
            "2025-06-01",
            "2025-13-01T00:00:00Z",
            "2025-06-01T10:00:00",
            "２025-06-01T10:00:00Z",
            "2025-06-01T10:00:00.Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn a_list_parses_and_hostile_ones_name_the_field() {
        let ok = format!(
            r#"{{"total":1,"data":[{{"uuid":"{UUID}","views":7,"isLive":false,"publishedAt":"2025-06-01T10:00:00.000Z","name":"x"}}]}}"#
        );
        let v = parse_video_list(ok.as_bytes(), 10).unwrap();
        assert_eq!(v[0].views, 7);
        assert_eq!(v[0].published_at, 1_748_772_000);
        let too_many = parse_video_list(ok.as_bytes(), 0).unwrap_err();
        assert!(too_many.to_string().contains("data"), "{too_many}");
        let bad_uuid = ok.replace(UUID, "../../etc");
        let e = parse_video_list(bad_uuid.as_bytes(), 10).unwrap_err();
        assert!(e.to_string().contains("data[0].uuid"), "{e}");
        let bad_date = ok.replace("2025-06-01T10:00:00.000Z", "yesterday");
        let e = parse_video_list(bad_date.as_bytes(), 10).unwrap_err();
        assert!(e.to_string().contains("data[0].publishedAt"), "{e}");
        let negative = ok.replace("\"views\":7", "\"views\":-1");
        let e = parse_video_list(negative.as_bytes(), 10).unwrap_err();
        assert!(e.to_string().contains("data[0]"), "{e}");
        for junk in [&b"[]"[..], b"{}", b"{\"data\":3}", b"\xff"] {
            assert!(parse_video_list(junk, 10).is_err());
        }
    }
}
