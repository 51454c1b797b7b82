//! Registry tokens: what `GET /token` hands out and clients send back as `Bearer`.
//!
//! `brt1.<payload>.<mac>`: the payload is base64url JSON (credential id, granted scopes,
//! issue and expiry times), the mac its HMAC-SHA256 under the instance's signing key. Only
//! Berth reads these tokens (clients treat them as opaque), so they are not JWTs; every node
//! of a cluster shares the key.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use berth_core::RegistryError;
use berth_core::access::CredentialId;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

const PREFIX: &str = "brt1.";
/// Refresh tokens from `POST /token` (`access_type=offline`): the same format under their
/// own prefix, so one is never taken for a registry token (and never the other way round).
const REFRESH_PREFIX: &str = "brr1.";

/// Scopes granted on one resource (`repository:acme/app:pull,push`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// `repository` or `registry`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Repository name, or `catalog`.
    pub name: String,
    /// Granted verbs: `pull`, `push`, `delete`, `*`.
    pub actions: Vec<String>,
}

/// What a registry token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The credential it was minted from; `None` for an anonymous token.
    pub sub: Option<CredentialId>,
    /// What it grants.
    pub access: Vec<Grant>,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Expires at (seconds since the epoch).
    pub exp: i64,
}

/// The key registry tokens are signed with.
pub struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// A key from raw bytes (at least 32).
    pub fn new(bytes: Vec<u8>) -> Result<SigningKey, String> {
        if bytes.len() < 32 {
            return Err(format!(
                "the token signing key has {} bytes; it needs at least 32",
                bytes.len()
            ));
        }
        Ok(SigningKey(bytes))
    }

    fn mac(&self) -> Hmac<Sha256> {
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC takes keys of any length")
    }

    /// Signs `claims` into a token.
    pub fn sign(&self, claims: &Claims) -> String {
        self.sign_as(PREFIX, claims)
    }

    /// Signs `claims` (a credential, no scopes) into a refresh token.
    pub fn sign_refresh(&self, claims: &Claims) -> String {
        self.sign_as(REFRESH_PREFIX, claims)
    }

    fn sign_as(&self, prefix: &str, claims: &Claims) -> String {
        let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("claims are JSON"));
        let mut mac = self.mac();
        mac.update(prefix.as_bytes());
        mac.update(payload.as_bytes());
        let tag = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        format!("{prefix}{payload}.{tag}")
    }

    /// The claims of `token` if it is a registry token (`Ok(None)` if it is not one at all);
    /// a forged, damaged or expired one is refused.
    pub fn verify(&self, token: &str) -> Result<Option<Claims>, RegistryError> {
        self.verify_as(PREFIX, token, "registry token")
    }

    /// The claims of a refresh token; anything else, a forged, damaged or expired one is
    /// refused.
    pub fn verify_refresh(&self, token: &str) -> Result<Claims, RegistryError> {
        self.verify_as(REFRESH_PREFIX, token, "refresh token")?
            .ok_or_else(|| {
                RegistryError::Unauthorized(
                    "that is not a refresh token from this registry; log in again".into(),
                )
            })
    }

    fn verify_as(
        &self,
        prefix: &str,
        token: &str,
        what: &str,
    ) -> Result<Option<Claims>, RegistryError> {
        let Some(rest) = token.strip_prefix(prefix) else {
            return Ok(None);
        };
        let invalid = || {
            RegistryError::Unauthorized(format!(
                "the {what} is not valid here; request a new one from /token"
            ))
        };
        let (payload, tag) = rest.split_once('.').ok_or_else(invalid)?;
        let tag = URL_SAFE_NO_PAD.decode(tag).map_err(|_| invalid())?;
        let mut mac = self.mac();
        mac.update(prefix.as_bytes());
        mac.update(payload.as_bytes());
        mac.verify_slice(&tag).map_err(|_| invalid())?;
        let json = URL_SAFE_NO_PAD.decode(payload).map_err(|_| invalid())?;
        let claims: Claims = serde_json::from_slice(&json).map_err(|_| invalid())?;
        if claims.exp <= now_secs() {
            return Err(RegistryError::Unauthorized(format!(
                "the {what} expired; request a new one from /token"
            )));
        }
        Ok(Some(claims))
    }
}

/// Seconds since the Unix epoch.
pub fn now_secs() -> i64 {
    berth_core::ports::now_millis() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64) -> Claims {
        Claims {
            sub: Some(CredentialId(7)),
            access: vec![Grant {
                kind: "repository".into(),
                name: "acme/app".into(),
                actions: vec!["pull".into()],
            }],
            iat: now_secs(),
            exp,
        }
    }

    #[test]
    fn signed_tokens_verify_and_tampered_ones_do_not() {
        let key = SigningKey::new(vec![1; 32]).unwrap();
        let good = claims(now_secs() + 60);
        let token = key.sign(&good);
        assert_eq!(key.verify(&token).unwrap(), Some(good));
        let other = SigningKey::new(vec![2; 32]).unwrap();
        assert!(other.verify(&token).is_err());
        let mut forged = token.clone();
        forged.insert(8, 'x');
        assert!(key.verify(&forged).is_err());
        assert_eq!(key.verify("berthp_notaregistrytoken").unwrap(), None);
    }

    #[test]
    fn refresh_tokens_and_registry_tokens_are_never_taken_for_each_other() {
        let key = SigningKey::new(vec![1; 32]).unwrap();
        let claims = claims(now_secs() + 60);
        let refresh = key.sign_refresh(&claims);
        assert_eq!(key.verify_refresh(&refresh).unwrap(), claims);
        assert_eq!(key.verify(&refresh).unwrap(), None);
        let registry = key.sign(&claims);
        assert!(key.verify_refresh(&registry).is_err());
        // Same payload and mac under the other prefix: the prefix is signed too.
        let swapped = refresh.replacen(REFRESH_PREFIX, PREFIX, 1);
        assert!(key.verify(&swapped).is_err());
    }

    #[test]
    fn expired_tokens_are_refused() {
        let key = SigningKey::new(vec![1; 32]).unwrap();
        let token = key.sign(&claims(now_secs() - 1));
        assert!(key.verify(&token).is_err());
    }

    #[test]
    fn short_keys_are_refused() {
        assert!(SigningKey::new(vec![0; 16]).is_err());
    }
}
