//! The Packages API's operations: packages of an account, one package, its versions, and
//! deleting and restoring both, each checked with [`decide`] for the caller.
//!
//! Called by the fronts through [`crate::services::Services`] with parsed values; uses the access store for
//! packages and the registry for versions, so deleting a version here follows exactly the
//! rules of `DELETE /v2/<name>/manifests/<digest>`.

use crate::access::decide::{decide, readable};
use crate::access::store::{Account, PackageFilter, PackageRecord, SourceRepo};
use crate::access::{
    Access, AccountKind, Action, Decision, ManageError, ManageResult, Principal, Visibility,
};
use crate::error::RegistryError;
use crate::hooks::{Hooks, PackageAction, PackageEvent};
use crate::ids::VersionId;
use crate::labels::{DESCRIPTION, Labels};
use crate::name::RepoName;
use crate::ports::{Millis, VersionRecord, VersionState, now_millis};
use crate::registry::{DeletedVersion, RESTORE_WINDOW, Registry, Restored};

mod pages;
mod policies;

pub use pages::{PackageOverview, RECENT_TAGGED, VersionListing};
pub use policies::{RetainedDeletion, RetentionPlan, RetentionReport};

/// A package with what the API shows beside its record.
#[derive(Debug, Clone)]
pub struct PackageSummary {
    /// The package.
    pub record: PackageRecord,
    /// Its owner.
    pub owner: Account,
    /// Its linked source repository and that repository's owner.
    pub repository: Option<(SourceRepo, Account)>,
    /// Live versions.
    pub version_count: u64,
    /// Last change: the newest version's update, else the package's creation.
    pub updated_at: Millis,
    /// The labels of the newest version (for a multi-arch image, its index's).
    pub labels: Labels,
    /// Downloads of its live versions, added up.
    pub downloads: u64,
}

/// A page of a listing: `page` counts from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    /// 1-based page number.
    pub page: u64,
    /// Items per page (1..=100).
    pub per_page: u64,
}

impl PageRequest {
    fn offset(self) -> u64 {
        (self.page.max(1) - 1).saturating_mul(self.per_page)
    }
}

/// The Packages API over the access model and the registry, queueing the webhook deliveries
/// its deletions fire.
#[derive(Clone)]
pub struct Packages {
    access: Access,
    registry: Registry,
    hooks: Hooks,
}

impl PackageSummary {
    /// The description label of the newest version.
    pub fn description(&self) -> Option<&str> {
        self.labels.get(DESCRIPTION).map(String::as_str)
    }
}

impl Packages {
    /// The operations over `access`, `registry` and `hooks`.
    pub fn new(access: Access, registry: Registry, hooks: Hooks) -> Self {
        Packages {
            access,
            registry,
            hooks,
        }
    }

    /// The packages of `owner` the caller may read (optionally of one visibility), by
    /// name: how many, and one page of them. The store pages and counts them under
    /// [`readable`]'s condition, which admits exactly what [`decide`] lets the caller pull.
    pub async fn list_as(
        &self,
        principal: &Principal,
        owner: &Account,
        visibility: Option<Visibility>,
        page: PageRequest,
    ) -> ManageResult<(u64, Vec<PackageSummary>)> {
        signed_in(principal)?;
        let filter = PackageFilter {
            visibility,
            name_contains: None,
        };
        self.list_readable(principal, owner, &filter, page).await
    }

    /// [`Packages::list_as`] for anyone, signed out included (the web UI shows visitors the
    /// public packages, as GHCR does; the API asks for a token first, as GitHub's does).
    pub async fn list_readable(
        &self,
        principal: &Principal,
        owner: &Account,
        filter: &PackageFilter,
        page: PageRequest,
    ) -> ManageResult<(u64, Vec<PackageSummary>)> {
        let store = self.access.store();
        let org_role = match (owner.kind, principal.user()) {
            (AccountKind::Organization, Some(user)) => store.membership(owner.id, user).await?,
            _ => None,
        };
        let condition = readable(principal, &owner.as_owner(), org_role);
        let (total, records) = store
            .list_packages(owner.id, &condition, filter, page.offset(), page.per_page)
            .await?;
        let mut views = Vec::with_capacity(records.len());
        for record in records {
            views.push(self.view(record, owner.clone()).await?);
        }
        Ok((total, views))
    }

    /// Package `name`, if the caller may read it.
    pub async fn get_as(
        &self,
        principal: &Principal,
        name: &RepoName,
    ) -> ManageResult<PackageSummary> {
        signed_in(principal)?;
        self.get_readable(principal, name).await
    }

    /// [`Packages::get_as`] for anyone, signed out included (the web UI's package page).
    pub async fn get_readable(
        &self,
        principal: &Principal,
        name: &RepoName,
    ) -> ManageResult<PackageSummary> {
        let record = self.readable(principal, name, Action::Pull).await?;
        let owner = self.owner(&record).await?;
        self.view(record, owner).await
    }

    /// Deletes package `name` with all its versions; restorable for 30 days, its name
    /// reserved meanwhile. Needs the admin role and `delete:packages`.
    pub async fn delete_as(&self, principal: &Principal, name: &RepoName) -> ManageResult<()> {
        self.checked(principal, name, Action::Delete).await?;
        self.access.changed(
            self.access
                .store()
                .set_package_deleted(name, Some(now_millis()))
                .await,
        )?;
        Ok(())
    }

    /// Restores deleted package `name`. Needs the admin role and `write:packages`.
    pub async fn restore_as(&self, principal: &Principal, name: &RepoName) -> ManageResult<()> {
        let record = self.checked(principal, name, Action::Manage).await?;
        match record.deleted_at {
            None => Err(ManageError::Invalid {
                resource: "Package",
                field: "name",
                code: "invalid",
                message: format!("package `{name}` is not deleted; there is nothing to restore"),
            }),
            Some(at) if at <= now_millis() - RESTORE_WINDOW => Err(not_found(name)),
            Some(_) => {
                self.access
                    .changed(self.access.store().set_package_deleted(name, None).await)?;
                Ok(())
            }
        }
    }

    /// Versions of `name` in `state` (given `tagged`, only the tagged or only the untagged
    /// ones, filtered in the store), newest first: how many, and one page.
    pub async fn versions_as(
        &self,
        principal: &Principal,
        name: &RepoName,
        state: VersionState,
        tagged: Option<bool>,
        page: PageRequest,
    ) -> ManageResult<(u64, Vec<VersionRecord>)> {
        signed_in(principal)?;
        self.versions_readable(principal, name, state, tagged, page)
            .await
    }

    /// [`Packages::versions_as`] for anyone, signed out included (the web UI).
    pub async fn versions_readable(
        &self,
        principal: &Principal,
        name: &RepoName,
        state: VersionState,
        tagged: Option<bool>,
        page: PageRequest,
    ) -> ManageResult<(u64, Vec<VersionRecord>)> {
        self.readable(principal, name, Action::Pull).await?;
        let limit = usize::try_from(page.per_page).unwrap_or(usize::MAX);
        self.registry
            .versions(name, state, tagged, page.offset(), limit)
            .await
            .map_err(registry_error)
    }

    /// Version `id` of `name`, live or deleted within the restore window.
    pub async fn version_as(
        &self,
        principal: &Principal,
        name: &RepoName,
        id: VersionId,
    ) -> ManageResult<VersionRecord> {
        signed_in(principal)?;
        self.version_readable(principal, name, id).await
    }

    /// [`Packages::version_as`] for anyone, signed out included (the web UI).
    pub async fn version_readable(
        &self,
        principal: &Principal,
        name: &RepoName,
        id: VersionId,
    ) -> ManageResult<VersionRecord> {
        self.readable(principal, name, Action::Pull).await?;
        self.registry
            .version(name, id)
            .await
            .map_err(version_error(name, id))?
            .ok_or_else(|| version_not_found(name, id))
    }

    /// Deletes version `id` of `name` (restorable for 30 days; refused while a tagged index
    /// references it), and queues the `deleted` deliveries of hooks that opted in (`base`:
    /// the URL clients reach Berth at, for the payloads' URLs).
    pub async fn delete_version_as(
        &self,
        principal: &Principal,
        name: &RepoName,
        id: VersionId,
        base: &str,
    ) -> ManageResult<()> {
        self.checked(principal, name, Action::Delete).await?;
        let deleted: DeletedVersion = self
            .registry
            .delete_version(name, id)
            .await
            .map_err(version_error(name, id))?;
        self.hooks
            .package_event(PackageEvent {
                action: PackageAction::Deleted,
                name: name.clone(),
                digest: deleted.version.digest,
                tag: None,
                manifest: deleted.manifest,
                labels: deleted.version.labels,
                sender: principal.clone(),
                base: base.to_owned(),
                version_id: Some(deleted.version.id),
            })
            .await;
        Ok(())
    }

    /// Restores deleted version `id` of `name` with its tags (those still free).
    pub async fn restore_version_as(
        &self,
        principal: &Principal,
        name: &RepoName,
        id: VersionId,
    ) -> ManageResult<Restored> {
        self.checked(principal, name, Action::Manage).await?;
        self.registry
            .restore_version(name, id)
            .await
            .map_err(version_error(name, id))
    }

    /// Removes for good the packages deleted more than 30 days before `now`.
    pub async fn purge_deleted(&self, now: Millis) -> ManageResult<u64> {
        Ok(self.access.changed(
            self.access
                .store()
                .purge_deleted_packages(now - RESTORE_WINDOW)
                .await,
        )?)
    }

    /// The package record of `name` when `principal` may do `action` on it.
    async fn checked(
        &self,
        principal: &Principal,
        name: &RepoName,
        action: Action,
    ) -> ManageResult<PackageRecord> {
        signed_in(principal)?;
        self.readable(principal, name, action).await
    }

    /// The package record of `name` when `principal`, signed in or not, may do `action`.
    async fn readable(
        &self,
        principal: &Principal,
        name: &RepoName,
        action: Action,
    ) -> ManageResult<PackageRecord> {
        let target = self.access.target(name, principal.user()).await?;
        match decide(principal, &target, action) {
            Decision::Allow => {}
            Decision::Denied(why) => return Err(ManageError::Forbidden(why)),
            Decision::Unauthenticated => {
                return Err(ManageError::Unauthenticated(
                    "Requires authentication".into(),
                ));
            }
            Decision::NotFound | Decision::Create { .. } => return Err(not_found(name)),
        }
        self.access
            .store()
            .package_record(name)
            .await?
            .ok_or_else(|| not_found(name))
    }

    async fn owner(&self, record: &PackageRecord) -> ManageResult<Account> {
        self.access
            .store()
            .account_by_id(record.owner)
            .await?
            .ok_or_else(|| not_found(&record.name))
    }

    async fn view(&self, record: PackageRecord, owner: Account) -> ManageResult<PackageSummary> {
        let (version_count, newest) = self
            .registry
            .versions(&record.name, VersionState::Active, None, 0, 1)
            .await
            .map_err(registry_error)?;
        let newest = newest.into_iter().next();
        let downloads = self
            .registry
            .downloads(&record.name)
            .await
            .map_err(registry_error)?;
        let repository = match record.linked_repo {
            None => None,
            Some(id) => match self.access.store().repo_by_id(id).await? {
                None => None,
                Some(repo) => self
                    .access
                    .store()
                    .account_by_id(repo.owner)
                    .await?
                    .map(|owner| (repo, owner)),
            },
        };
        Ok(PackageSummary {
            updated_at: newest
                .as_ref()
                .map_or(record.created_at, |v| v.updated_at.max(record.created_at)),
            labels: newest.map(|v| v.labels).unwrap_or_default(),
            version_count,
            downloads,
            repository,
            owner,
            record,
        })
    }
}

fn signed_in(principal: &Principal) -> ManageResult<()> {
    match principal {
        Principal::Anonymous => Err(ManageError::Unauthenticated(
            "Requires authentication: send a personal access token with read:packages".into(),
        )),
        Principal::Token(_) => Ok(()),
    }
}

fn not_found(name: &RepoName) -> ManageError {
    ManageError::NotFound(format!(
        "Package not found: there is no package `{name}` you can see"
    ))
}

fn version_not_found(name: &RepoName, id: VersionId) -> ManageError {
    ManageError::NotFound(format!(
        "Package version not found: `{name}` has no version {id}"
    ))
}

/// How a refusal about version `id` of `name` reads on the API.
fn version_error(name: &RepoName, id: VersionId) -> impl Fn(RegistryError) -> ManageError + '_ {
    move |error| match error {
        RegistryError::ManifestUnknown(_) => version_not_found(name, id),
        RegistryError::Unsupported(message) => ManageError::Invalid {
            resource: "PackageVersion",
            field: "id",
            code: "invalid",
            message,
        },
        other => registry_error(other),
    }
}

fn registry_error(error: RegistryError) -> ManageError {
    match error {
        RegistryError::Store(e) => ManageError::Store(e),
        RegistryError::Denied(why) => ManageError::Conflict(why),
        other => ManageError::Conflict(other.to_string()),
    }
}
