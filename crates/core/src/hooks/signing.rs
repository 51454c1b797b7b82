//! What goes on the wire for a delivery: the body (JSON, or GitHub's form encoding), its
//! `X-Hub-Signature-256` and legacy `X-Hub-Signature`, and GitHub's headers. Pure.

use hmac::{KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

use super::model::{ContentType, Delivery, Hook};

/// `User-Agent` of every delivery, in GitHub's style (`GitHub-Hookshot/<version>`).
pub const USER_AGENT: &str = concat!("GitHub-Hookshot/berth-", env!("CARGO_PKG_VERSION"));

/// `sha256=<hex HMAC-SHA256 of body keyed with secret>`, GitHub's `X-Hub-Signature-256`.
pub fn signature_256(secret: &str, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// `sha1=<hex HMAC-SHA1 of body keyed with secret>`, GitHub's legacy `X-Hub-Signature`, which
/// GitHub still sends beside `X-Hub-Signature-256` for receivers written before it.
pub fn signature_sha1(secret: &str, body: &[u8]) -> String {
    let mut mac =
        hmac::Hmac::<Sha1>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}

/// The request body for `payload` (JSON text) in `content_type`.
pub fn body(content_type: ContentType, payload: &str) -> Vec<u8> {
    match content_type {
        ContentType::Json => payload.as_bytes().to_vec(),
        ContentType::Form => {
            let encoded: String =
                percent_encoding::utf8_percent_encode(payload, percent_encoding::NON_ALPHANUMERIC)
                    .collect();
            format!("payload={encoded}").into_bytes()
        }
    }
}

/// The `Content-Type` header for `content_type`.
pub fn content_type_header(content_type: ContentType) -> &'static str {
    match content_type {
        ContentType::Json => "application/json",
        ContentType::Form => "application/x-www-form-urlencoded",
    }
}

/// GitHub's delivery headers for `delivery` to `hook` with `body`: event, delivery GUID, hook
/// id and target, user agent, content type and — when the hook has a secret — both
/// signatures, as GitHub sends them.
pub fn headers(hook: &Hook, delivery: &Delivery, body: &[u8]) -> Vec<(String, String)> {
    let mut headers = vec![
        ("Accept".to_owned(), "*/*".to_owned()),
        (
            "Content-Type".to_owned(),
            content_type_header(hook.config.content_type).to_owned(),
        ),
        ("User-Agent".to_owned(), USER_AGENT.to_owned()),
        ("X-GitHub-Delivery".to_owned(), delivery.queued.guid.clone()),
        ("X-GitHub-Event".to_owned(), delivery.queued.event.clone()),
        ("X-GitHub-Hook-ID".to_owned(), hook.id.to_string()),
        (
            "X-GitHub-Hook-Installation-Target-ID".to_owned(),
            hook.scope.target_id().to_string(),
        ),
        (
            "X-GitHub-Hook-Installation-Target-Type".to_owned(),
            hook.scope.target_type().to_owned(),
        ),
    ];
    if let Some(secret) = hook.config.secret.as_deref().filter(|s| !s.is_empty()) {
        headers.push(("X-Hub-Signature".to_owned(), signature_sha1(secret, body)));
        headers.push((
            "X-Hub-Signature-256".to_owned(),
            signature_256(secret, body),
        ));
    }
    headers
}

/// A fresh delivery GUID (UUID v4), as GitHub's `X-GitHub-Delivery`.
pub fn new_guid() -> String {
    uuid::Uuid::new_v4().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::model::{DeliveryState, HookConfig, HookScope, LastResponse, NewDelivery};
    use crate::ids::{AccountId, DeliveryId, HookId};

    #[test]
    fn signature_matches_githubs_documented_example() {
        // docs.github.com, "Validating webhook deliveries": test values.
        assert_eq!(
            signature_256("It's a Secret to Everybody", b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn legacy_signature_is_hmac_sha1() {
        // RFC 2202, HMAC-SHA1 test case 2.
        assert_eq!(
            signature_sha1("Jefe", b"what do ya want for nothing?"),
            "sha1=effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    #[test]
    fn form_bodies_carry_the_payload_url_encoded() {
        let body = body(ContentType::Form, r#"{"a":"b c&d"}"#);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            "payload=%7B%22a%22%3A%22b%20c%26d%22%7D"
        );
        assert_eq!(body_json(), br#"{"x":1}"#.to_vec());
    }

    fn body_json() -> Vec<u8> {
        body(ContentType::Json, r#"{"x":1}"#)
    }

    fn hook(secret: Option<&str>) -> Hook {
        Hook {
            id: HookId(7),
            scope: HookScope::Organization(AccountId(3)),
            active: true,
            events: vec!["package".into()],
            config: HookConfig {
                url: "https://example.com/hook".into(),
                content_type: ContentType::Json,
                secret: secret.map(str::to_owned),
                insecure_ssl: false,
            },
            deleted_events: false,
            created_at: 0,
            updated_at: 0,
            last_response: LastResponse::default(),
        }
    }

    fn delivery() -> Delivery {
        Delivery {
            id: DeliveryId(1),
            queued: NewDelivery {
                hook: HookId(7),
                guid: new_guid(),
                event: "package".into(),
                action: Some("published".into()),
                payload: "{}".into(),
                redelivery: false,
                repository_id: None,
            },
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: 0,
            created_at: 0,
            last_attempt: None,
        }
    }

    #[test]
    fn headers_are_githubs_and_sign_only_with_a_secret() {
        let delivery = delivery();
        let signed = headers(&hook(Some("s3cret")), &delivery, b"{}");
        let get = |name: &str| {
            signed
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        assert_eq!(get("X-GitHub-Event").as_deref(), Some("package"));
        assert_eq!(get("X-GitHub-Hook-ID").as_deref(), Some("7"));
        assert_eq!(
            get("X-GitHub-Hook-Installation-Target-Type").as_deref(),
            Some("organization")
        );
        assert_eq!(
            get("X-GitHub-Hook-Installation-Target-ID").as_deref(),
            Some("3")
        );
        assert_eq!(
            get("X-Hub-Signature-256"),
            Some(signature_256("s3cret", b"{}"))
        );
        assert_eq!(
            get("X-Hub-Signature"),
            Some(signature_sha1("s3cret", b"{}"))
        );
        assert!(get("User-Agent").unwrap().starts_with("GitHub-Hookshot/"));
        let guid = get("X-GitHub-Delivery").unwrap();
        assert_eq!(uuid::Uuid::parse_str(&guid).unwrap().get_version_num(), 4);
        let unsigned = headers(&hook(None), &delivery, b"{}");
        assert!(
            unsigned
                .iter()
                .all(|(n, _)| !n.starts_with("X-Hub-Signature"))
        );
    }
}
