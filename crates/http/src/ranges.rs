//! `Range` and `Content-Range` header values, parsed (pure; fuzzed by `fuzz/ranges`).

use berth_core::registry::ByteRange;

/// Parses a `Range` value: `bytes=<first>-[<last>]` or `bytes=-<suffix length>`. Anything
/// else (several ranges, other units) is `None`: the whole blob is served, as RFC 9110
/// allows.
pub fn parse_range(value: &str) -> Option<ByteRange> {
    let spec = value.strip_prefix("bytes=")?;
    let (first, last) = spec.split_once('-')?;
    let last = match last.trim() {
        "" => None,
        l => Some(l.parse().ok()?),
    };
    match first.trim() {
        "" => Some(ByteRange::Suffix(last?)),
        first => Some(ByteRange::From {
            first: first.parse().ok()?,
            last,
        }),
    }
}

/// Parses a `Content-Range` value `<start>-<end>` (a `bytes ` or `bytes=` prefix and a
/// `/<total>` suffix are tolerated) into `(start, end)`, inclusive; `None` unless
/// `start <= end`.
pub fn parse_content_range(value: &str) -> Option<(u64, u64)> {
    let text = value
        .trim_start_matches("bytes")
        .trim_start_matches(['=', ' ']);
    let text = text.split('/').next().unwrap_or(text);
    let (start, end) = text.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    (start <= end).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(
            parse_range("bytes=0-9"),
            Some(ByteRange::From {
                first: 0,
                last: Some(9)
            })
        );
        assert_eq!(parse_range("bytes=-5"), Some(ByteRange::Suffix(5)));
        assert_eq!(parse_range("bytes=0-1,5-6"), None);
        assert_eq!(parse_range("items=0-1"), None);
    }

    #[test]
    fn content_ranges() {
        assert_eq!(parse_content_range("0-99"), Some((0, 99)));
        assert_eq!(parse_content_range("bytes 100-199/1000"), Some((100, 199)));
        assert_eq!(parse_content_range("9-1"), None);
        assert_eq!(parse_content_range("-1"), None);
    }
}
