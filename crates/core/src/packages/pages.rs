//! What a package's pages show, each in one call: the overview (the package, its recent
//! tagged versions, its downloads, what the viewer may do), a page of versions with their
//! referrers, and whether a viewer may do an action — so a front shows a button exactly when
//! [`decide`] would let the click through.
//!
//! Reads as [`Packages::get_readable`] does (anonymous viewers of public packages included);
//! decides nothing of its own.

use crate::access::decide::decide;
use crate::access::{Action, Decision, ManageResult, Principal};
use crate::digest::Digest;
use crate::ids::VersionId;
use crate::labels::{LICENSES, SOURCE};
use crate::name::RepoName;
use crate::ports::{Referrer, VersionRecord, VersionState};

use super::{PackageSummary, Packages, PageRequest, registry_error};

/// How many tagged versions the overview shows.
pub const RECENT_TAGGED: usize = 5;

/// A package's page: the package and what its overview shows.
#[derive(Debug, Clone)]
pub struct PackageOverview {
    /// The package.
    pub summary: PackageSummary,
    /// The newest tagged versions, newest first (at most [`RECENT_TAGGED`]).
    pub recent_tagged: Vec<VersionRecord>,
    /// Tagged live versions in all.
    pub tagged_count: u64,
    /// Manifest GETs of every live version.
    pub downloads: u64,
    /// The licenses label of the newest version.
    pub licenses: Option<String>,
    /// The source label of the newest version (a repository URL, as pushed).
    pub source_label: Option<String>,
    /// Whether the viewer administers the package (sees its settings).
    pub may_manage: bool,
}

/// A page of a package's versions with what each page row shows.
#[derive(Debug, Clone)]
pub struct VersionListing {
    /// The package.
    pub summary: PackageSummary,
    /// Versions the filter admits in all.
    pub total: u64,
    /// This page's versions, newest first, each with the manifests that refer to it.
    pub versions: Vec<(VersionRecord, Vec<Referrer>)>,
    /// Whether the viewer may delete versions.
    pub may_delete: bool,
    /// Whether the viewer may restore deleted versions.
    pub may_restore: bool,
}

impl Packages {
    /// Whether `principal` (signed in or not) may do `action` on package `name`: what
    /// [`decide`] answers, for a front to show only the controls that would work.
    pub async fn may_as(
        &self,
        principal: &Principal,
        name: &RepoName,
        action: Action,
    ) -> ManageResult<bool> {
        let target = self.access.target(name, principal.user()).await?;
        Ok(decide(principal, &target, action) == Decision::Allow)
    }

    /// The overview of package `name` if the caller may read it.
    pub async fn overview_readable(
        &self,
        principal: &Principal,
        name: &RepoName,
    ) -> ManageResult<PackageOverview> {
        let summary = self.get_readable(principal, name).await?;
        let (tagged_count, recent_tagged) = self
            .registry
            .versions(name, VersionState::Active, Some(true), 0, RECENT_TAGGED)
            .await
            .map_err(registry_error)?;
        let downloads = summary.downloads;
        Ok(PackageOverview {
            may_manage: self.may_as(principal, name, Action::Manage).await?,
            licenses: summary.labels.get(LICENSES).cloned(),
            source_label: summary.labels.get(SOURCE).cloned(),
            recent_tagged,
            tagged_count,
            downloads,
            summary,
        })
    }

    /// A page of the versions of `name` in `state` (given `tagged`, only the tagged or the
    /// untagged ones, filtered in the store), each with its referrers (signatures, SBOMs,
    /// attestations), and whether the caller may delete and restore versions.
    pub async fn version_listing_readable(
        &self,
        principal: &Principal,
        name: &RepoName,
        state: VersionState,
        tagged: Option<bool>,
        page: PageRequest,
    ) -> ManageResult<VersionListing> {
        let summary = self.get_readable(principal, name).await?;
        let (total, records) = self
            .versions_readable(principal, name, state, tagged, page)
            .await?;
        let mut versions = Vec::with_capacity(records.len());
        for version in records {
            let referrers = self.referrers_of(name, &version.digest).await?;
            versions.push((version, referrers));
        }
        Ok(VersionListing {
            may_delete: self.may_as(principal, name, Action::Delete).await?,
            may_restore: self.may_as(principal, name, Action::Manage).await?,
            summary,
            total,
            versions,
        })
    }

    /// Version `id` of `name` (live, or deleted within the restore window) as a one-row
    /// [`VersionListing`]: a version's own page.
    pub async fn version_page_readable(
        &self,
        principal: &Principal,
        name: &RepoName,
        id: VersionId,
    ) -> ManageResult<VersionListing> {
        let summary = self.get_readable(principal, name).await?;
        let version = self.version_readable(principal, name, id).await?;
        let referrers = self.referrers_of(name, &version.digest).await?;
        Ok(VersionListing {
            may_delete: self.may_as(principal, name, Action::Delete).await?,
            may_restore: self.may_as(principal, name, Action::Manage).await?,
            summary,
            total: 1,
            versions: vec![(version, referrers)],
        })
    }

    async fn referrers_of(&self, name: &RepoName, subject: &Digest) -> ManageResult<Vec<Referrer>> {
        self.registry
            .referrer_records(name, subject)
            .await
            .map_err(registry_error)
    }
}
