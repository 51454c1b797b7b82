//! Repository names, tags and manifest references, by the distribution spec's grammar.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

use crate::digest::{Digest, DigestError};

/// The spec's `<name>` grammar: path components separated by `/`, nested to any depth.
static NAME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$")
        .expect("static regex")
});

/// The spec's `<reference>` grammar for tags.
static TAG: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$").expect("static regex"));

/// Longest repository name accepted; clients prepend a host and stay under 255 characters.
pub const MAX_NAME_LEN: usize = 255;

/// A validated repository name such as `acme/api/worker`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RepoName(String);

/// Why a string is not a repository name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "repository name `{0}` is invalid: use lowercase letters, digits and single separators (`.`, `_`, `__`, `-`) in `/`-separated components, at most 255 characters"
)]
pub struct NameError(pub String);

impl RepoName {
    /// The name as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The owning account: the first path component (`acme` for `acme/api/worker`).
    pub fn owner(&self) -> &str {
        self.0.split('/').next().unwrap_or(&self.0)
    }
}

impl FromStr for RepoName {
    type Err = NameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_NAME_LEN || !NAME.is_match(s) {
            return Err(NameError(s.to_owned()));
        }
        Ok(RepoName(s.to_owned()))
    }
}

impl fmt::Display for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for RepoName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A validated tag such as `v1.2.3` or `latest`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(String);

/// Why a string is not a tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "tag `{0}` is invalid: start with a letter, digit or `_`, then up to 127 letters, digits, `_`, `.` or `-`"
)]
pub struct TagError(pub String);

impl Tag {
    /// The tag as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for Tag {
    type Err = TagError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !TAG.is_match(s) {
            return Err(TagError(s.to_owned()));
        }
        Ok(Tag(s.to_owned()))
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a manifest is addressed: by tag or by digest.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Reference {
    /// A mutable tag.
    Tag(Tag),
    /// An immutable content digest.
    Digest(Digest),
}

/// Why a string is neither a tag nor a digest.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    /// Looks like a digest (has a colon) but is not a valid one.
    #[error(transparent)]
    Digest(#[from] DigestError),
    /// Not a valid tag.
    #[error(transparent)]
    Tag(#[from] TagError),
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.contains(':') {
            Ok(Reference::Digest(s.parse()?))
        } else {
            Ok(Reference::Tag(s.parse()?))
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Tag(t) => t.fmt(f),
            Reference::Digest(d) => d.fmt(f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_nest_to_any_depth() {
        for ok in [
            "a",
            "acme/api",
            "acme/api/worker/sub/path",
            "a.b_c__d-e---f/x9",
            "0/1",
        ] {
            assert!(ok.parse::<RepoName>().is_ok(), "{ok}");
        }
        for bad in [
            "", "A", "a/", "/a", "a//b", "a..b", "a___b", "-a", "a-", "a/B", "a b",
        ] {
            assert!(bad.parse::<RepoName>().is_err(), "{bad}");
        }
        assert!("a".repeat(256).parse::<RepoName>().is_err());
        assert_eq!(
            "acme/api/worker".parse::<RepoName>().unwrap().owner(),
            "acme"
        );
    }

    #[test]
    fn tags_follow_the_spec() {
        for ok in ["latest", "v1.2.3", "_x", "A-b.c_d", &"a".repeat(128)] {
            assert!(ok.parse::<Tag>().is_ok(), "{ok}");
        }
        for bad in ["", ".x", "-x", "a/b", "a:b", &"a".repeat(129)] {
            assert!(bad.parse::<Tag>().is_err(), "{bad}");
        }
    }

    #[test]
    fn references_split_on_colon() {
        assert!(matches!(
            "latest".parse::<Reference>(),
            Ok(Reference::Tag(_))
        ));
        let d = Digest::sha256(b"x").to_string();
        assert!(matches!(d.parse::<Reference>(), Ok(Reference::Digest(_))));
        assert!(matches!(
            "sha256:zz".parse::<Reference>(),
            Err(ReferenceError::Digest(_))
        ));
    }
}
