//! Storage quotas as people manage them: an account's owners (the user themself, an
//! organization's owners) and site administrators read its usage and quota; site
//! administrators set and clear quotas, through the API or `berth admin`. The quota is
//! enforced by the registry (`registry/quota.rs`) on every push; this module only reads and
//! sets it. Who may do what is asked of the access model's checks, never decided here.

use crate::access::store::Account;
use crate::access::{Access, ManageResult, Principal};
use crate::ports::StorageUsage;
use crate::registry::Registry;
use crate::services::Services;

/// An account's storage: its usage and quota.
#[derive(Debug, Clone)]
pub struct StorageQuota {
    /// The account.
    pub account: Account,
    /// Its usage and quota.
    pub usage: StorageUsage,
}

impl Services {
    /// Account `login`'s storage, for the user themself, the organization's owners and site
    /// administrators.
    pub async fn storage_quota_as(
        &self,
        principal: &Principal,
        login: &str,
    ) -> ManageResult<StorageQuota> {
        let account = self
            .access
            .account_administered_by(principal, login)
            .await?;
        storage(&self.registry, account).await
    }

    /// Sets (or with `None` clears) account `login`'s quota, in bytes (site administrators).
    pub async fn set_storage_quota_as(
        &self,
        principal: &Principal,
        login: &str,
        limit: Option<u64>,
    ) -> ManageResult<StorageQuota> {
        self.access.site_admin(principal)?;
        set_storage_quota(&self.access, &self.registry, login, limit).await
    }
}

/// Account `login`'s storage (the operator's, behind `berth admin`: no caller to check).
pub async fn storage_quota(
    access: &Access,
    registry: &Registry,
    login: &str,
) -> ManageResult<StorageQuota> {
    let account = access.account(login, None).await?;
    storage(registry, account).await
}

/// Sets (or with `None` clears) account `login`'s quota, in bytes, and answers its storage
/// after (the operator's, and the API's once the caller is checked).
pub async fn set_storage_quota(
    access: &Access,
    registry: &Registry,
    login: &str,
    limit: Option<u64>,
) -> ManageResult<StorageQuota> {
    let account = access.account(login, None).await?;
    registry.set_storage_quota(account.id, limit).await?;
    storage(registry, account).await
}

async fn storage(registry: &Registry, account: Account) -> ManageResult<StorageQuota> {
    // Repository names are lowercase; logins compare case-insensitively.
    let usage = registry
        .storage_usage(&account.login.to_ascii_lowercase())
        .await?;
    Ok(StorageQuota { account, usage })
}
