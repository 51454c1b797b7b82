//! `Range` and `Content-Range` parsing: any text parses or is refused, never a panic, and a
//! range that parses selects only bytes inside the blob.
#![no_main]

use berth_http::ranges::{parse_content_range, parse_range};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((size_bytes, text)) = data.split_at_checked(8) else {
        return;
    };
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let size = u64::from_le_bytes(size_bytes.try_into().expect("8 bytes"));
    if let Some(range) = parse_range(text)
        && let Some((first, last)) = range.resolve(size)
    {
        assert!(
            first <= last && last < size,
            "{text:?} of {size}: {first}-{last}"
        );
    }
    if let Some((start, end)) = parse_content_range(text) {
        assert!(start <= end);
    }
});
