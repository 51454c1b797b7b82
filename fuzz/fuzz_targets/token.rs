//! Token parsing: a registry token (signed, from /token) is verified or refused without a
//! panic, and a Berth secret's format is recognized or not; no forged text verifies.
#![no_main]

use berth_core::access::token::recognize;
use berth_http::auth::SigningKey;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let key = SigningKey::new(vec![7u8; 32]).expect("a 32-byte key");
    if let Ok(Some(claims)) = key.verify(text) {
        // Only a token this key signed verifies: signing its claims again gives it back.
        assert_eq!(key.sign(&claims), text, "a forged token verified");
    }
    if let Ok(claims) = key.verify_refresh(text) {
        assert_eq!(
            key.sign_refresh(&claims),
            text,
            "a forged refresh token verified"
        );
    }
    let _ = recognize(text);
});
