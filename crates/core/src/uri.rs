//! Percent-encoding for the pieces of URIs Berth writes: query values and path segments.

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

/// Every byte but RFC 3986's unreserved ones (`A–Z a–z 0–9 - _ . ~`): what a query value or a
/// path segment escapes to read back as itself, and what S3's request signing expects.
const ESCAPED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `text` percent-encoded as one query value or one path segment.
pub fn escape_component(text: &str) -> String {
    utf8_percent_encode(text, ESCAPED).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unreserved_bytes_stay_as_they_are() {
        assert_eq!(escape_component("aZ09-_.~"), "aZ09-_.~");
        assert_eq!(escape_component("a b/c?d=e&f"), "a%20b%2Fc%3Fd%3De%26f");
        assert_eq!(escape_component("é"), "%C3%A9");
    }
}
