//! HTTP byte ranges, shared by both drivers and the PeerTube client: the `Range` header of a
//! resumed or partial download, and the parsing and checking of a `206` answer's `Content-Range`.

/// The `Range` header value for bytes `from..end` of a resource (`end` exclusive; `None` = to the
/// end): `bytes=from-(end-1)`, `bytes=from-`, or `None` when the whole resource is wanted.
pub fn range_header(from: u64, end: Option<u64>) -> Option<String> {
    match end {
        Some(end) => Some(format!("bytes={from}-{}", end.saturating_sub(1))),
        None => (from > 0).then(|| format!("bytes={from}-")),
    }
}

/// Parses `Content-Range: bytes start-end/total` (total may be `*`) into
/// `(start, end_inclusive, total)`; `None` when malformed or when `end` is before `start` or not
/// below `total`.
pub fn parse_content_range(value: &str) -> Option<(u64, u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let (start, end) = span.trim().split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse().ok()?),
    };
    if end < start || total.is_some_and(|t| end >= t) {
        return None;
    }
    Some((start, end, total))
}

/// Checks a `206` answer's `Content-Range` against a request for bytes `from..end` (`end`
/// exclusive; `None` = to the end of the resource): it must start at `from` and, when `end` is
/// given, end at `end - 1`. Returns `(start, end_inclusive, total)`, `None` when it does not.
pub fn check_content_range(
    value: &str,
    from: u64,
    end: Option<u64>,
) -> Option<(u64, u64, Option<u64>)> {
    let (start, last, total) = parse_content_range(value)?;
    let end_ok = end.is_none_or(|e| e.checked_sub(1) == Some(last));
    (start == from && end_ok).then_some((start, last, total))
}

#[cfg(test)]
mod tests {
    use super::{check_content_range, parse_content_range, range_header};

    #[test]
    fn content_ranges_are_checked_against_the_request() {
        assert_eq!(
            check_content_range("bytes 10-19/100", 10, Some(20)),
            Some((10, 19, Some(100)))
        );
        assert_eq!(
            check_content_range("bytes 10-99/100", 10, None),
            Some((10, 99, Some(100)))
        );
        // Another start, another end, or an empty request: refused.
        assert_eq!(check_content_range("bytes 0-19/100", 10, Some(20)), None);
        assert_eq!(check_content_range("bytes 10-18/100", 10, Some(20)), None);
        assert_eq!(check_content_range("bytes 10-19/100", 10, Some(0)), None);
        assert_eq!(check_content_range("bytes x-19/100", 10, Some(20)), None);
    }

    #[test]
    fn range_headers() {
        assert_eq!(range_header(0, None), None);
        assert_eq!(range_header(10, None).as_deref(), Some("bytes=10-"));
        assert_eq!(range_header(0, Some(100)).as_deref(), Some("bytes=0-99"));
        assert_eq!(range_header(10, Some(20)).as_deref(), Some("bytes=10-19"));
    }

    #[test]
    fn content_range_parsing() {
        assert_eq!(
            parse_content_range("bytes 0-99/1000"),
            Some((0, 99, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 5-9/*"), Some((5, 9, None)));
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, 0, None)));
        assert_eq!(parse_content_range("bytes 9-5/100"), None);
        assert_eq!(parse_content_range("bytes 0-100/100"), None);
        assert_eq!(parse_content_range("bytes */100"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
        assert_eq!(parse_content_range(""), None);
    }
}
