//! Content digests (`algorithm:hex`), parsed once at the edge.

use std::fmt;
use std::str::FromStr;

use sha2::Digest as _;

/// A digest algorithm Berth accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Algorithm {
    /// SHA-256, the default and the one every upload is hashed with while it streams.
    Sha256,
    /// SHA-512, accepted for blobs and manifests pushed under a `sha512:` digest.
    Sha512,
}

impl Algorithm {
    /// The algorithm's name as it appears in a digest string.
    pub fn as_str(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Sha512 => 128,
        }
    }
}

/// A validated content digest such as `sha256:e3b0…`. Cannot hold an invalid value.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    algorithm: Algorithm,
    /// `algorithm:hex`, kept whole so formatting and storage never allocate.
    full: String,
}

/// Why a string is not a digest Berth accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    /// No `algorithm:` prefix.
    #[error("digest `{0}` has no `algorithm:` prefix (expected e.g. `sha256:<64 hex chars>`)")]
    Malformed(String),
    /// An algorithm other than sha256 or sha512.
    #[error("digest algorithm `{0}` is not supported; use sha256 or sha512")]
    UnsupportedAlgorithm(String),
    /// Wrong length or characters other than lowercase hex.
    #[error(
        "digest `{0}` must be the algorithm name, a colon and lowercase hex of the right length"
    )]
    BadEncoding(String),
}

impl Digest {
    /// The digest's algorithm.
    pub fn algorithm(&self) -> Algorithm {
        self.algorithm
    }

    /// The hex-encoded part after the colon.
    pub fn hex(&self) -> &str {
        &self.full[self.algorithm.as_str().len() + 1..]
    }

    /// The whole `algorithm:hex` string.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The digest of `bytes` under `algorithm`.
    pub fn of(algorithm: Algorithm, bytes: &[u8]) -> Digest {
        let hex = match algorithm {
            Algorithm::Sha256 => hex::encode(sha2::Sha256::digest(bytes)),
            Algorithm::Sha512 => hex::encode(sha2::Sha512::digest(bytes)),
        };
        Digest::from_parts(algorithm, &hex)
    }

    /// The SHA-256 digest of `bytes`.
    pub fn sha256(bytes: &[u8]) -> Digest {
        Digest::of(Algorithm::Sha256, bytes)
    }

    pub(crate) fn from_parts(algorithm: Algorithm, hex: &str) -> Digest {
        Digest {
            algorithm,
            full: format!("{}:{hex}", algorithm.as_str()),
        }
    }
}

impl FromStr for Digest {
    type Err = DigestError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (alg, hex) = s
            .split_once(':')
            .ok_or_else(|| DigestError::Malformed(s.to_owned()))?;
        let algorithm = match alg {
            "sha256" => Algorithm::Sha256,
            "sha512" => Algorithm::Sha512,
            other if !other.is_empty() => {
                return Err(DigestError::UnsupportedAlgorithm(other.to_owned()));
            }
            _ => return Err(DigestError::Malformed(s.to_owned())),
        };
        let well_formed = hex.len() == algorithm.hex_len()
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(DigestError::BadEncoding(s.to_owned()));
        }
        Ok(Digest {
            algorithm,
            full: s.to_owned(),
        })
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.full)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sha256_and_sha512() {
        let d: Digest = Digest::sha256(b"").to_string().parse().unwrap();
        assert_eq!(
            d.as_str(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(d.hex().len(), 64);
        let long = Digest::of(Algorithm::Sha512, b"x");
        assert_eq!(long.to_string().parse::<Digest>().unwrap(), long);
    }

    #[test]
    fn rejects_bad_digests() {
        assert!(matches!(
            "abc".parse::<Digest>(),
            Err(DigestError::Malformed(_))
        ));
        assert!(matches!(
            "md5:00".parse::<Digest>(),
            Err(DigestError::UnsupportedAlgorithm(_))
        ));
        assert!(matches!(
            "sha256:ABC".parse::<Digest>(),
            Err(DigestError::BadEncoding(_))
        ));
        let upper = format!("sha256:{}", "A".repeat(64));
        assert!(upper.parse::<Digest>().is_err());
        let short = format!("sha256:{}", "a".repeat(63));
        assert!(short.parse::<Digest>().is_err());
    }
}
