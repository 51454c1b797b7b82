//! Retention, pure: given a package's live versions and a policy, which to delete and why.
//!
//! Each version gets the first verdict that applies, in this order:
//! 1. it has an immutable tag → kept;
//! 2. it has a tag matching `keep_tags` → kept;
//! 3. it is one of the `keep_latest` most recent *images* → kept (an image is a version no
//!    other live version needs: not the platform of an index, not a referrer of a live
//!    subject; recency is when it was last pushed or tagged);
//! 4. it has no tag and was last pushed or tagged `delete_untagged_after_days` ago → deleted;
//! 5. it was neither pulled nor pushed for `delete_unpulled_after_days` → deleted;
//! 6. `keep_latest` is set and it is not among the most recent → deleted;
//! 7. otherwise kept (no rule deletes it).
//!
//! Then what is kept protects what it needs, until nothing changes: the platforms (children)
//! of a kept index, the subject of a kept referrer, and the referrers (signatures,
//! attestations) of a kept version. So a policy never breaks a multi-arch image or strips
//! an image of its attestations; what it deletes is only what nothing kept needs.

use std::collections::HashMap;

use super::{PackagePolicies, Retention};
use crate::digest::Digest;
use crate::ids::VersionId;
use crate::ports::Millis;

const DAY: Millis = 86_400_000;

/// What retention needs to know of one live version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VersionFacts {
    /// The version's id.
    pub id: VersionId,
    /// Its manifest's digest.
    pub digest: Digest,
    /// Its tags.
    pub tags: Vec<String>,
    /// When it was last pushed or a tag moved to it.
    pub updated_at: Millis,
    /// When a pull of it was last recorded, if ever.
    pub last_pulled_at: Option<Millis>,
    /// The manifests an index lists (its platforms, attestation manifests).
    pub children: Vec<Digest>,
    /// The manifest it refers to (`subject`), if it is a referrer.
    pub subject: Option<Digest>,
}

/// Why a version is deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeleteReason {
    /// No tag, last pushed `days` or more ago.
    Untagged {
        /// The rule's days.
        days: u32,
    },
    /// Neither pulled nor pushed for `days`.
    NotPulled {
        /// The rule's days.
        days: u32,
    },
    /// Older than the `keep` most recent images.
    BeyondLatest {
        /// The rule's count.
        keep: u32,
    },
}

/// How versions needing each other are related.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// A platform (child) of a kept index.
    PlatformOf,
    /// The subject of a kept referrer.
    SubjectOf,
    /// A referrer of a kept version.
    ReferrerOf,
}

/// Why a version is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeepReason {
    /// It has a tag an immutable-tag rule protects.
    ImmutableTag {
        /// The tag.
        tag: String,
        /// The pattern it matches.
        pattern: String,
    },
    /// It has a tag matching `keep_tags`.
    KeptTag {
        /// The tag.
        tag: String,
        /// The pattern it matches.
        pattern: String,
    },
    /// One of the `keep` most recent images.
    Latest {
        /// The rule's count.
        keep: u32,
    },
    /// A kept version needs it.
    Needed {
        /// The kept version.
        by: Digest,
        /// How.
        how: Need,
    },
    /// No rule deletes it.
    NoRule,
}

/// The outcome for one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Deleted, for this reason.
    Delete(DeleteReason),
    /// Kept, for this reason.
    Keep(KeepReason),
}

impl DeleteReason {
    /// The rule's field name.
    pub fn rule(&self) -> &'static str {
        match self {
            DeleteReason::Untagged { .. } => "delete_untagged_after_days",
            DeleteReason::NotPulled { .. } => "delete_unpulled_after_days",
            DeleteReason::BeyondLatest { .. } => "keep_latest",
        }
    }

    /// For a person.
    pub fn describe(&self) -> String {
        match self {
            DeleteReason::Untagged { days } => {
                format!("untagged, last pushed {days} or more days ago")
            }
            DeleteReason::NotPulled { days } => {
                format!("neither pulled nor pushed for {days} or more days")
            }
            DeleteReason::BeyondLatest { keep } => {
                format!("older than the {keep} most recent images")
            }
        }
    }
}

impl KeepReason {
    /// The rule (field) that keeps it, or what does.
    pub fn rule(&self) -> &'static str {
        match self {
            KeepReason::ImmutableTag { .. } => "immutable_tags",
            KeepReason::KeptTag { .. } => "keep_tags",
            KeepReason::Latest { .. } => "keep_latest",
            KeepReason::Needed { .. } => "referenced",
            KeepReason::NoRule => "none",
        }
    }

    /// For a person.
    pub fn describe(&self) -> String {
        match self {
            KeepReason::ImmutableTag { tag, pattern } => {
                format!("tag `{tag}` is immutable (`{pattern}`)")
            }
            KeepReason::KeptTag { tag, pattern } => format!("tag `{tag}` matches `{pattern}`"),
            KeepReason::Latest { keep } => format!("one of the {keep} most recent images"),
            KeepReason::Needed { by, how } => match how {
                Need::PlatformOf => format!("a platform of the kept index {by}"),
                Need::SubjectOf => format!("the subject of the kept referrer {by}"),
                Need::ReferrerOf => format!("a referrer of the kept version {by}"),
            },
            KeepReason::NoRule => "no rule deletes it".into(),
        }
    }
}

/// The verdict on each of `versions` (same order) under `retention`, with the immutable-tag
/// rules of `policies`, at `now`.
pub fn plan(
    policies: &PackagePolicies,
    retention: &Retention,
    versions: &[VersionFacts],
    now: Millis,
) -> Vec<Verdict> {
    let by_digest: HashMap<&Digest, usize> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| (&v.digest, i))
        .collect();
    let needed: Vec<bool> = {
        let mut needed = vec![false; versions.len()];
        for v in versions {
            for child in &v.children {
                if let Some(&i) = by_digest.get(child) {
                    needed[i] = true;
                }
            }
        }
        for (i, v) in versions.iter().enumerate() {
            if v.subject
                .as_ref()
                .is_some_and(|s| by_digest.contains_key(s))
            {
                needed[i] = true;
            }
        }
        needed
    };
    let latest: Vec<bool> = {
        let mut images: Vec<usize> = (0..versions.len()).filter(|&i| !needed[i]).collect();
        images.sort_by_key(|&i| std::cmp::Reverse((versions[i].updated_at, versions[i].id)));
        let keep = retention.keep_latest.map_or(0, |n| n as usize);
        let mut latest = vec![false; versions.len()];
        for &i in images.iter().take(keep) {
            latest[i] = true;
        }
        latest
    };
    let aged = |at: Millis, days: u32| now.saturating_sub(at) >= Millis::from(days) * DAY;
    let mut verdicts: Vec<Verdict> = versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            for tag in &v.tags {
                if let Some(rule) = policies.immutable_rule(tag) {
                    return Verdict::Keep(KeepReason::ImmutableTag {
                        tag: tag.clone(),
                        pattern: rule.pattern,
                    });
                }
            }
            for tag in &v.tags {
                if let Some(pattern) = retention.keep_tags.iter().find(|p| p.matches(tag)) {
                    return Verdict::Keep(KeepReason::KeptTag {
                        tag: tag.clone(),
                        pattern: pattern.as_str().to_owned(),
                    });
                }
            }
            if let Some(keep) = retention.keep_latest
                && latest[i]
            {
                return Verdict::Keep(KeepReason::Latest { keep });
            }
            if let Some(days) = retention.delete_untagged_after_days
                && v.tags.is_empty()
                && aged(v.updated_at, days)
            {
                return Verdict::Delete(DeleteReason::Untagged { days });
            }
            if let Some(days) = retention.delete_unpulled_after_days
                && aged(v.updated_at.max(v.last_pulled_at.unwrap_or(0)), days)
            {
                return Verdict::Delete(DeleteReason::NotPulled { days });
            }
            if let Some(keep) = retention.keep_latest {
                return Verdict::Delete(DeleteReason::BeyondLatest { keep });
            }
            Verdict::Keep(KeepReason::NoRule)
        })
        .collect();
    // What is kept keeps what it needs (and what needs it): a walk from every kept version,
    // each version visited once, so a pass costs the versions plus their links.
    let mut referrers: HashMap<&Digest, Vec<usize>> = HashMap::new();
    for (j, v) in versions.iter().enumerate() {
        if let Some(subject) = &v.subject {
            referrers.entry(subject).or_default().push(j);
        }
    }
    let mut walk: Vec<usize> = (0..versions.len())
        .filter(|&i| matches!(verdicts[i], Verdict::Keep(_)))
        .collect();
    while let Some(i) = walk.pop() {
        let v = &versions[i];
        let children = v
            .children
            .iter()
            .filter_map(|c| by_digest.get(c).map(|&j| (j, Need::PlatformOf)));
        let subject = v
            .subject
            .as_ref()
            .and_then(|s| by_digest.get(s))
            .map(|&j| (j, Need::SubjectOf));
        let referring = referrers
            .get(&v.digest)
            .into_iter()
            .flatten()
            .map(|&j| (j, Need::ReferrerOf));
        for (j, how) in children.chain(subject).chain(referring) {
            if matches!(verdicts[j], Verdict::Delete(_)) {
                verdicts[j] = Verdict::Keep(KeepReason::Needed {
                    by: v.digest.clone(),
                    how,
                });
                walk.push(j);
            }
        }
    }
    verdicts
}

/// The indexes of the versions to delete, in an order the store accepts: an index before the
/// manifests it lists (a tagged index's platforms cannot be deleted while it stands).
pub fn deletion_order(versions: &[VersionFacts], verdicts: &[Verdict]) -> Vec<usize> {
    let doomed = |i: usize| matches!(verdicts[i], Verdict::Delete(_));
    let by_digest: HashMap<&Digest, usize> = versions
        .iter()
        .enumerate()
        .filter(|&(i, _)| doomed(i))
        .map(|(i, v)| (&v.digest, i))
        .collect();
    // How many doomed indexes list each doomed version: it goes once they have (Kahn).
    let mut listed_by = vec![0usize; versions.len()];
    for (i, v) in versions.iter().enumerate().filter(|&(i, _)| doomed(i)) {
        for child in &v.children {
            if let Some(&j) = by_digest.get(child)
                && j != i
            {
                listed_by[j] += 1;
            }
        }
    }
    let mut ready: Vec<usize> = (0..versions.len())
        .rev()
        .filter(|&i| doomed(i) && listed_by[i] == 0)
        .collect();
    let mut order = Vec::with_capacity(by_digest.len());
    let mut placed = vec![false; versions.len()];
    while let Some(i) = ready.pop() {
        order.push(i);
        placed[i] = true;
        for child in &versions[i].children {
            if let Some(&j) = by_digest.get(child)
                && j != i
            {
                listed_by[j] -= 1;
                if listed_by[j] == 0 {
                    ready.push(j);
                }
            }
        }
    }
    // A cycle cannot be pushed (an index lists manifests already stored); should one appear
    // anyway, its versions go last, in id order.
    order.extend((0..versions.len()).filter(|&i| doomed(i) && !placed[i]));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policies::{Policies, TagPattern};

    const NOW: Millis = 1_000 * DAY;

    fn digest(n: u8) -> Digest {
        format!("sha256:{}", format!("{n:02x}").repeat(32))
            .parse()
            .unwrap()
    }

    fn version(n: u8, tags: &[&str], age_days: i64) -> VersionFacts {
        VersionFacts {
            id: VersionId(i64::from(n)),
            digest: digest(n),
            tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            updated_at: NOW - age_days * DAY,
            last_pulled_at: None,
            children: Vec::new(),
            subject: None,
        }
    }

    fn none() -> PackagePolicies {
        PackagePolicies::default()
    }

    fn deleted(verdicts: &[Verdict]) -> Vec<usize> {
        (0..verdicts.len())
            .filter(|&i| matches!(verdicts[i], Verdict::Delete(_)))
            .collect()
    }

    fn untagged(days: u32) -> Retention {
        Retention {
            delete_untagged_after_days: Some(days),
            ..Retention::default()
        }
    }

    #[test]
    fn untagged_versions_go_once_old_enough_and_tagged_ones_stay() {
        let versions = [
            version(1, &[], 10),
            version(2, &[], 2),
            version(3, &["latest"], 30),
        ];
        let verdicts = plan(&none(), &untagged(7), &versions, NOW);
        assert_eq!(deleted(&verdicts), [0]);
        assert_eq!(
            verdicts[0],
            Verdict::Delete(DeleteReason::Untagged { days: 7 })
        );
        assert_eq!(verdicts[2], Verdict::Keep(KeepReason::NoRule));
    }

    #[test]
    fn a_multi_arch_image_and_its_attestation_survive_untagged_cleanup() {
        let mut index = version(1, &["v1"], 40);
        let amd = version(2, &[], 40);
        let arm = version(3, &[], 40);
        index.children = vec![amd.digest.clone(), arm.digest.clone()];
        let mut attestation = version(4, &[], 40);
        attestation.subject = Some(arm.digest.clone());
        let orphan = version(5, &[], 40);
        let mut orphan_sig = version(6, &[], 40);
        orphan_sig.subject = Some(orphan.digest.clone());
        let mut dangling = version(7, &[], 40);
        dangling.subject = Some(digest(99));
        let versions = [index, amd, arm, attestation, orphan, orphan_sig, dangling];
        let verdicts = plan(&none(), &untagged(1), &versions, NOW);
        assert_eq!(deleted(&verdicts), [4, 5, 6]);
        assert!(matches!(
            verdicts[1],
            Verdict::Keep(KeepReason::Needed {
                how: Need::PlatformOf,
                ..
            })
        ));
        assert!(matches!(
            verdicts[3],
            Verdict::Keep(KeepReason::Needed {
                how: Need::ReferrerOf,
                ..
            })
        ));
    }

    #[test]
    fn a_kept_referrer_keeps_its_subject() {
        let subject = version(1, &[], 40);
        let mut sbom = version(2, &["sbom"], 40);
        sbom.subject = Some(subject.digest.clone());
        let verdicts = plan(&none(), &untagged(1), &[subject, sbom], NOW);
        assert_eq!(
            verdicts[0],
            Verdict::Keep(KeepReason::Needed {
                by: digest(2),
                how: Need::SubjectOf
            })
        );
    }

    #[test]
    fn keep_latest_keeps_the_newest_images_and_deletes_the_rest() {
        let versions = [
            version(1, &["a"], 5),
            version(2, &["b"], 4),
            version(3, &["c"], 3),
            version(4, &["release-1"], 9),
        ];
        let policy = Retention {
            keep_latest: Some(2),
            keep_tags: vec![TagPattern::parse("release-*").unwrap()],
            ..Retention::default()
        };
        let verdicts = plan(&none(), &policy, &versions, NOW);
        assert_eq!(deleted(&verdicts), [0]);
        assert_eq!(
            verdicts[0],
            Verdict::Delete(DeleteReason::BeyondLatest { keep: 2 })
        );
        assert_eq!(verdicts[2], Verdict::Keep(KeepReason::Latest { keep: 2 }));
        assert!(matches!(
            verdicts[3],
            Verdict::Keep(KeepReason::KeptTag { .. })
        ));
    }

    #[test]
    fn a_pull_keeps_a_version_from_the_unpulled_rule() {
        let mut pulled = version(1, &["a"], 100);
        pulled.last_pulled_at = Some(NOW - DAY);
        let stale = version(2, &["b"], 100);
        let fresh = version(3, &["c"], 1);
        let policy = Retention {
            delete_unpulled_after_days: Some(30),
            ..Retention::default()
        };
        let verdicts = plan(&none(), &policy, &[pulled, stale, fresh], NOW);
        assert_eq!(deleted(&verdicts), [1]);
        assert_eq!(
            verdicts[1],
            Verdict::Delete(DeleteReason::NotPulled { days: 30 })
        );
    }

    #[test]
    fn immutable_tags_are_never_deleted() {
        let policies = PackagePolicies {
            own: Some(Policies {
                immutable_tags: vec![TagPattern::parse("v*").unwrap()],
                retention: None,
            }),
            ..PackagePolicies::default()
        };
        let policy = Retention {
            delete_unpulled_after_days: Some(0),
            ..Retention::default()
        };
        let verdicts = plan(&policies, &policy, &[version(1, &["v1"], 9)], NOW);
        assert!(matches!(
            verdicts[0],
            Verdict::Keep(KeepReason::ImmutableTag { .. })
        ));
    }

    #[test]
    fn a_large_package_is_planned_in_linear_time() {
        // 20 000 versions: 5 000 tagged indexes of two platforms and a signature each.
        let mut versions = Vec::new();
        for n in 0..5_000u32 {
            let d = |k: u32| -> Digest { format!("sha256:{:064x}", n * 4 + k).parse().unwrap() };
            let facts = |k: u32, tags: &[&str]| VersionFacts {
                id: VersionId(i64::from(n * 4 + k)),
                digest: d(k),
                tags: tags.iter().map(|t| (*t).to_owned()).collect(),
                updated_at: NOW - 9 * DAY,
                last_pulled_at: None,
                children: Vec::new(),
                subject: None,
            };
            let mut index = facts(0, if n % 2 == 0 { &["t"] } else { &[] });
            index.children = vec![d(1), d(2)];
            let mut signature = facts(3, &[]);
            signature.subject = Some(d(1));
            versions.extend([index, facts(1, &[]), facts(2, &[]), signature]);
        }
        let started = std::time::Instant::now();
        let verdicts = plan(&none(), &untagged(1), &versions, NOW);
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert_eq!(
            deleted(&verdicts).len(),
            10_000,
            "the untagged half goes whole"
        );
    }

    #[test]
    fn an_index_is_deleted_before_its_platforms() {
        let child = version(1, &[], 9);
        let mut index = version(2, &["old"], 9);
        index.children = vec![child.digest.clone()];
        let versions = [child, index];
        let policy = Retention {
            delete_unpulled_after_days: Some(1),
            ..Retention::default()
        };
        let verdicts = plan(&none(), &policy, &versions, NOW);
        assert_eq!(deletion_order(&versions, &verdicts), [1, 0]);
    }
}
