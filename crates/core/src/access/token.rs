//! Token secrets: how they look, how they are checked before any lookup, how they are stored.
//!
//! A secret is `<prefix>_<32 base62 random characters><6 base62 checksum characters>`, as
//! GitHub's are: the prefix says the kind (so a leaked token is recognizable and secret
//! scanners can match it) and the checksum (CRC32 of everything before it) lets a scanner, and
//! Berth, reject a mistyped or made-up token without a database lookup. Only the SHA-256 of a
//! secret is stored; the secret is shown once, when created.

use sha2::{Digest as _, Sha256};

/// The kind of a token, by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenKind {
    /// Classic personal access token (`berthp_`).
    Classic,
    /// Fine-grained personal access token (`berthf_`).
    FineGrained,
    /// App installation token (`berths_`).
    App,
    /// Repository job token (`berthj_`).
    Job,
    /// An app's client secret, exchanged for installation tokens (`berthc_`).
    AppSecret,
    /// A web UI session, the secret of its cookie (`berthw_`): stored as a classic credential
    /// holding the user's whole access, accepted only by the web UI (never as a token).
    Session,
}

impl TokenKind {
    /// Every kind.
    pub const ALL: [TokenKind; 6] = [
        TokenKind::Classic,
        TokenKind::FineGrained,
        TokenKind::App,
        TokenKind::Job,
        TokenKind::AppSecret,
        TokenKind::Session,
    ];

    /// The secret's prefix, underscore included.
    pub fn prefix(self) -> &'static str {
        match self {
            TokenKind::Classic => "berthp_",
            TokenKind::FineGrained => "berthf_",
            TokenKind::App => "berths_",
            TokenKind::Job => "berthj_",
            TokenKind::AppSecret => "berthc_",
            TokenKind::Session => "berthw_",
        }
    }

    /// The name stored with a credential.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Classic => "classic",
            TokenKind::FineGrained => "fine_grained",
            TokenKind::App => "app",
            TokenKind::Job => "job",
            TokenKind::AppSecret => "app_secret",
            TokenKind::Session => "session",
        }
    }

    /// The kind stored under `name`.
    pub fn from_name(name: &str) -> Option<TokenKind> {
        TokenKind::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_CHARS: usize = 32;
const CHECKSUM_CHARS: usize = 6;

/// A freshly minted secret: show it once, store [`Secret::hash`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// Mints a secret of `kind` from the operating system's random source.
    pub fn generate(kind: TokenKind) -> Secret {
        let mut text = String::with_capacity(kind.prefix().len() + RANDOM_CHARS + CHECKSUM_CHARS);
        text.push_str(kind.prefix());
        let random_end = text.len() + RANDOM_CHARS;
        let mut pool = [0u8; 64];
        while text.len() < random_end {
            getrandom::fill(&mut pool).expect("the operating system's random source failed");
            // Bytes ≥ 248 (= 4 × 62) are skipped so every character is equally likely.
            for &byte in pool.iter().filter(|&&b| b < 248) {
                if text.len() == random_end {
                    break;
                }
                text.push(char::from(BASE62[usize::from(byte % 62)]));
            }
        }
        let checksum = base62_fixed(crc32fast::hash(text.as_bytes()));
        text.push_str(&checksum);
        Secret(text)
    }

    /// The secret's text: shown to its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// What is stored in place of the secret.
    pub fn hash(&self) -> Vec<u8> {
        hash_secret(&self.0)
    }
}

/// The stored form of a presented secret.
pub fn hash_secret(secret: &str) -> Vec<u8> {
    Sha256::digest(secret.as_bytes()).to_vec()
}

/// The kind of `text` when it has a token's shape and a valid checksum; `None` otherwise (a
/// password, a typo, a token of another service).
pub fn recognize(text: &str) -> Option<TokenKind> {
    let kind = TokenKind::ALL
        .into_iter()
        .find(|k| text.starts_with(k.prefix()))?;
    let body = &text[kind.prefix().len()..];
    if body.len() != RANDOM_CHARS + CHECKSUM_CHARS
        || !body.bytes().all(|b| b.is_ascii_alphanumeric())
    {
        return None;
    }
    let (signed, checksum) = text.split_at(text.len() - CHECKSUM_CHARS);
    (base62_fixed(crc32fast::hash(signed.as_bytes())) == checksum).then_some(kind)
}

/// `value` in base62, left-padded with `0` to six characters (62^6 > 2^32).
fn base62_fixed(mut value: u32) -> String {
    let mut digits = [b'0'; CHECKSUM_CHARS];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 is ASCII")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_secrets_are_recognized_with_their_kind() {
        for kind in TokenKind::ALL {
            let secret = Secret::generate(kind);
            assert!(secret.expose().starts_with(kind.prefix()));
            assert_eq!(
                secret.expose().len(),
                kind.prefix().len() + RANDOM_CHARS + CHECKSUM_CHARS
            );
            assert_eq!(recognize(secret.expose()), Some(kind));
            assert_eq!(TokenKind::from_name(kind.as_str()), Some(kind));
        }
    }

    #[test]
    fn a_changed_character_fails_the_checksum() {
        let secret = Secret::generate(TokenKind::Classic);
        let text = secret.expose();
        let i = TokenKind::Classic.prefix().len() + 5;
        let replacement = if &text[i..=i] == "a" { "b" } else { "a" };
        let typo = format!("{}{replacement}{}", &text[..i], &text[i + 1..]);
        assert_eq!(recognize(&typo), None);
    }

    #[test]
    fn passwords_and_foreign_tokens_are_not_recognized() {
        assert_eq!(recognize("hunter2"), None);
        assert_eq!(recognize("ghp_16C7e42F292c6912E7710c838347Ae178B4a"), None);
        assert_eq!(recognize("berthp_short"), None);
    }

    #[test]
    fn secrets_differ_and_debug_redacts() {
        let a = Secret::generate(TokenKind::Job);
        let b = Secret::generate(TokenKind::Job);
        assert_ne!(a, b);
        assert_ne!(a.hash(), b.hash());
        assert!(!format!("{a:?}").contains(a.expose()));
    }
}
