//! The request path parser: any path either parses or is refused, never panics; a parsed
//! endpoint's repository name is part of the path it came from.
#![no_main]

use berth_http::endpoint::Endpoint;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for path in [text.to_owned(), format!("/v2/{text}")] {
        if let Ok(endpoint) = Endpoint::parse(&path) {
            let _ = endpoint.label();
            if let Some(name) = endpoint.name() {
                assert!(path.contains(name.as_str()), "{path:?} gave name {name}");
            }
            assert!(Endpoint::parse(&path).is_ok(), "parsing is deterministic");
        }
    }
});
