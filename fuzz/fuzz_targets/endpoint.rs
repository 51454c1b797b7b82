//! The request path parser: any path either parses or is refused, never panics; a parsed
//! endpoint's repository name is part of the path it came from; and every operation the
//! endpoint table gives that needs an action has a repository to check it on.
#![no_main]

use berth_http::endpoint::{Endpoint, Method};
use libfuzzer_sys::fuzz_target;

const METHODS: [Method; 7] = [
    Method::GET,
    Method::HEAD,
    Method::PUT,
    Method::POST,
    Method::PATCH,
    Method::DELETE,
    Method::OPTIONS,
];

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
            for method in METHODS {
                if let Some(operation) = endpoint.operation(&method)
                    && operation.action().is_some()
                {
                    assert!(
                        endpoint.name().is_some(),
                        "{method} {path:?} needs an action but names no repository"
                    );
                }
            }
        }
    }
});
