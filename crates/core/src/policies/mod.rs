//! Storage policies: immutable tags and retention, set on an account (for all its packages)
//! or on one package. Pure values and rules; the use cases are in
//! [`crate::packages::Packages`] (`packages/policies.rs`), the immutability checks in the
//! registry, the store behind [`crate::ports::PolicyStore`].
//!
//! How the two scopes combine: a package's immutable tags are its own patterns **and** its
//! account's (a package cannot loosen its organization's rule); its retention is its own when
//! it has one, else its account's.

mod input;
pub mod retention;

use globset::{GlobBuilder, GlobMatcher};
use serde::{Deserialize, Serialize};

pub use input::{PolicyInputError, parse_policies};
pub use retention::{DeleteReason, KeepReason, Need, Verdict, VersionFacts, deletion_order, plan};

/// The longest pattern accepted (a tag is at most 128 characters).
pub const MAX_PATTERN_LEN: usize = 128;
/// The most patterns a list may hold.
pub const MAX_PATTERNS: usize = 50;

/// A glob over tag names (`*`, `?`, `[a-z]`, `{a,b}`), validated when parsed: only the
/// characters a tag may hold plus the glob's own, at most [`MAX_PATTERN_LEN`] long.
#[derive(Clone, Debug)]
pub struct TagPattern {
    text: String,
    matcher: GlobMatcher,
}

impl TagPattern {
    /// Parses `text`, saying what is wrong for a person when it is not a pattern.
    pub fn parse(text: &str) -> Result<TagPattern, String> {
        if text.is_empty() {
            return Err("a tag pattern cannot be empty; use `*` for every tag".into());
        }
        if text.len() > MAX_PATTERN_LEN {
            return Err(format!(
                "the tag pattern `{text}` is longer than {MAX_PATTERN_LEN} characters"
            ));
        }
        if let Some(bad) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "._-*?[]{},!^".contains(*c)))
        {
            return Err(format!(
                "the tag pattern `{text}` holds `{bad}`, which no tag contains; patterns use \
                 tag characters (letters, digits, `.`, `_`, `-`) and `*`, `?`, `[…]`, `{{a,b}}`"
            ));
        }
        let glob = GlobBuilder::new(text)
            .literal_separator(false)
            .backslash_escape(false)
            .build()
            .map_err(|e| format!("the tag pattern `{text}` is not a valid glob: {}", e.kind()))?;
        Ok(TagPattern {
            text: text.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }

    /// Whether `tag` matches.
    pub fn matches(&self, tag: &str) -> bool {
        self.matcher.is_match(tag)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl PartialEq for TagPattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for TagPattern {}

impl Serialize for TagPattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for TagPattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        TagPattern::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A retention policy: which versions of a package a pass deletes (see
/// [`retention::plan`] for the order the rules are evaluated in).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Keep the N most recent images (versions nothing else references); delete the older
    /// ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_latest: Option<u32>,
    /// Keep versions with a tag matching one of these, whatever the other rules say.
    #[serde(default)]
    pub keep_tags: Vec<TagPattern>,
    /// Delete versions with no tag, last pushed more than this many days ago.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_untagged_after_days: Option<u32>,
    /// Delete versions neither pulled nor pushed for this many days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delete_unpulled_after_days: Option<u32>,
}

/// The policies set on one account or one package.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policies {
    /// Tags matching one of these cannot be moved to another manifest or deleted once pushed.
    #[serde(default)]
    pub immutable_tags: Vec<TagPattern>,
    /// What retention passes delete; `None`: nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<Retention>,
}

impl Policies {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self.immutable_tags.is_empty() && self.retention.is_none()
    }
}

/// Where a policy is set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyScope<'a> {
    /// An account (user or organization), by id: every package it owns.
    Account(crate::access::AccountId),
    /// One package, by name.
    Package(&'a crate::name::RepoName),
}

/// The policies that apply to one package: its account's and its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PackagePolicies {
    /// The owner's login (the first segment of the package's name).
    pub owner: String,
    /// The package's name.
    pub package: String,
    /// Set on the owning account.
    pub account: Option<Policies>,
    /// Set on the package.
    pub own: Option<Policies>,
}

/// An immutable-tag rule a tag matched.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImmutableRule {
    /// The pattern.
    pub pattern: String,
    /// Where it is set, for a person: "organization/user `acme`" or "package `acme/app`".
    pub set_on: String,
}

impl ImmutableRule {
    /// Why `tag` cannot be moved or deleted, naming the rule.
    pub fn refusal(&self, tag: &str, what: &str) -> String {
        format!(
            "tag `{tag}` is immutable: it matches `{}`, the immutable-tag rule of {}; it cannot \
             be {what} (push a new tag instead, or have an administrator change the rule)",
            self.pattern, self.set_on
        )
    }
}

impl PackagePolicies {
    /// The immutable-tag rule `tag` matches, if any (the package's own first).
    pub fn immutable_rule(&self, tag: &str) -> Option<ImmutableRule> {
        let own = self
            .own
            .iter()
            .flat_map(|p| &p.immutable_tags)
            .map(|p| (p, format!("package `{}`", self.package)));
        let account = self
            .account
            .iter()
            .flat_map(|p| &p.immutable_tags)
            .map(|p| (p, format!("account `{}`", self.owner)));
        own.chain(account)
            .find(|(pattern, _)| pattern.matches(tag))
            .map(|(pattern, set_on)| ImmutableRule {
                pattern: pattern.as_str().to_owned(),
                set_on,
            })
    }

    /// Whether any immutable-tag rule applies.
    pub fn has_immutable_tags(&self) -> bool {
        self.own
            .iter()
            .chain(self.account.iter())
            .any(|p| !p.immutable_tags.is_empty())
    }

    /// The retention policy that applies: the package's own, else its account's.
    pub fn retention(&self) -> Option<&Retention> {
        match &self.own {
            Some(own) if own.retention.is_some() => own.retention.as_ref(),
            _ => self.account.as_ref().and_then(|p| p.retention.as_ref()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(list: &[&str]) -> Vec<TagPattern> {
        list.iter().map(|p| TagPattern::parse(p).unwrap()).collect()
    }

    #[test]
    fn patterns_match_tags_and_refuse_what_no_tag_holds() {
        let v = TagPattern::parse("v*").unwrap();
        assert!(v.matches("v1") && v.matches("v1.2.3-rc.1") && !v.matches("latest"));
        let set = TagPattern::parse("release-{a,b}").unwrap();
        assert!(set.matches("release-a") && !set.matches("release-c"));
        assert!(TagPattern::parse("").unwrap_err().contains("empty"));
        assert!(TagPattern::parse("a/b").unwrap_err().contains("`/`"));
        assert!(
            TagPattern::parse("v[")
                .unwrap_err()
                .contains("not a valid glob")
        );
        assert!(TagPattern::parse(&"a".repeat(129)).is_err());
    }

    #[test]
    fn package_rules_add_to_the_accounts_and_retention_overrides() {
        let account = Policies {
            immutable_tags: patterns(&["v*"]),
            retention: Some(Retention {
                keep_latest: Some(3),
                ..Retention::default()
            }),
        };
        let own = Policies {
            immutable_tags: patterns(&["stable"]),
            retention: Some(Retention {
                delete_untagged_after_days: Some(1),
                ..Retention::default()
            }),
        };
        let both = PackagePolicies {
            owner: "acme".into(),
            package: "acme/app".into(),
            account: Some(account.clone()),
            own: Some(own),
        };
        let rule = both.immutable_rule("v2").unwrap();
        assert_eq!(rule.set_on, "account `acme`");
        assert_eq!(
            both.immutable_rule("stable").unwrap().set_on,
            "package `acme/app`"
        );
        assert!(both.immutable_rule("latest").is_none());
        assert_eq!(
            both.retention().unwrap().delete_untagged_after_days,
            Some(1)
        );
        let inherited = PackagePolicies {
            own: Some(Policies::default()),
            ..both
        };
        assert_eq!(inherited.retention(), account.retention.as_ref());
    }
}
