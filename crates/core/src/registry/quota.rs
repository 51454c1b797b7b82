//! Storage quotas per account: the bytes of the distinct blobs an account's repositories
//! (`owner/…`) link, against the limit a site administrator set.
//!
//! A push is refused with `DENIED` at the first request that can know it would go over:
//! starting an upload when the account is full, a monolithic push or a chunk whose declared
//! length does not fit (before its body is read), a body that streams past what is left, the
//! final `PUT` by its verified size, a mount of a blob the account does not hold yet. Bytes of
//! the account's open uploads count as reserved while they stream (so parallel uploads cannot
//! each take the same room), and the final link is checked again in the transaction that makes
//! it, where the store serializes the account's links: concurrent pushes never take an account
//! over its quota. A blob the account already holds costs nothing.

use bytesize::ByteSize;

use crate::access::AccountId;
use crate::digest::Digest;
use crate::error::{RegistryError, Result};
use crate::ports::{Linked, StorageUsage, StoreResult};

use super::{Registry, now_millis};

/// Usage at or past this share of the quota (in tenths) logs a warning, once per crossing.
const WARN_TENTHS: u64 = 9;

/// How many more bytes a refused push needs.
#[derive(Debug, Clone, Copy)]
pub(super) enum Need {
    /// Unknown: the account has no room at all.
    Unknown,
    /// This many (a declared length, a verified size).
    Exactly(u64),
    /// At least this many (a body that streamed past what was left).
    AtLeast(u64),
}

/// Where an account stands against its quota when a push asks for room.
#[derive(Debug, Clone)]
pub(super) struct Room {
    owner: String,
    /// Bytes linked in the account's repositories.
    used: u64,
    /// Bytes the account's open uploads hold, counted as reserved.
    reserved: u64,
    /// The quota.
    limit: u64,
}

impl Room {
    /// Where `owner` stands with `usage`, counting `reserved` bytes of open uploads; `None`
    /// when it has no quota.
    pub(super) fn of(owner: &str, usage: StorageUsage, reserved: u64) -> Option<Room> {
        usage.limit.map(|limit| Room {
            owner: owner.to_owned(),
            used: usage.used,
            reserved,
            limit,
        })
    }

    /// Bytes a push may still add.
    pub(super) fn left(&self) -> u64 {
        self.limit
            .saturating_sub(self.used)
            .saturating_sub(self.reserved)
    }

    /// The refusal of a push that needs `needs` more bytes, counted in
    /// `berth_storage_quota_refusals_total` under `request`.
    pub(super) fn refuse(&self, request: &'static str, needs: Need) -> RegistryError {
        metrics::counter!("berth_storage_quota_refusals_total", "request" => request).increment(1);
        let held = if self.reserved > 0 {
            format!(" (plus {} held by open uploads)", ByteSize(self.reserved))
        } else {
            String::new()
        };
        let need = match needs {
            Need::Exactly(bytes) => format!("this upload needs {} more", ByteSize(bytes)),
            Need::AtLeast(bytes) => format!(
                "this upload needs at least {} more (nothing of this request was kept)",
                ByteSize(bytes)
            ),
            Need::Unknown => "no upload can start".to_owned(),
        };
        RegistryError::Denied(format!(
            "account {} is at {} of its {} storage quota{held}; {need}: delete package versions it no longer needs, or ask a site administrator to raise the quota",
            self.owner,
            ByteSize(self.used),
            ByteSize(self.limit),
        ))
    }
}

impl Registry {
    /// The storage of account `owner`: usage and quota.
    pub async fn storage_usage(&self, owner: &str) -> StoreResult<StorageUsage> {
        self.meta.storage_usage(owner).await
    }

    /// Sets (or with `None` removes) account `account`'s storage quota, in bytes.
    pub async fn set_storage_quota(
        &self,
        account: AccountId,
        limit: Option<u64>,
    ) -> StoreResult<()> {
        self.meta
            .set_storage_quota(account, limit, now_millis())
            .await
    }

    /// Where `owner` stands against its quota, counting `reserved` bytes of open uploads;
    /// `None` when it has no quota.
    pub(super) async fn room(&self, owner: &str, reserved: u64) -> Result<Option<Room>> {
        let usage = self.meta.storage_usage(owner).await?;
        Ok(Room::of(owner, usage, reserved))
    }

    /// Whether `owner`'s repositories already hold `digest` (it then costs nothing).
    pub(super) async fn account_holds(&self, owner: &str, digest: &Digest) -> Result<bool> {
        Ok(self.meta.account_holds_blob(owner, digest).await?)
    }

    /// Checks that linking blob `digest` of `size` bytes keeps `owner` within its quota (a
    /// blob it holds already costs nothing), not counting open uploads: the last check before
    /// a link, which the store repeats in the link's transaction.
    pub(super) async fn check_link(
        &self,
        owner: &str,
        digest: &Digest,
        size: u64,
        request: &'static str,
    ) -> Result<()> {
        match self.room(owner, 0).await? {
            Some(room) if size > room.left() && !self.account_holds(owner, digest).await? => {
                Err(room.refuse(request, Need::Exactly(size)))
            }
            _ => Ok(()),
        }
    }

    /// What a link's transaction answered: the refusal when it would have gone over the
    /// quota; otherwise a warning when it took the account past 90 % of it.
    pub(super) fn linked(&self, owner: &str, linked: Linked, request: &'static str) -> Result<()> {
        match linked {
            Linked::OverQuota { used, limit, adds } => Err(Room {
                owner: owner.to_owned(),
                used,
                reserved: 0,
                limit,
            }
            .refuse(request, Need::Exactly(adds))),
            Linked::Done {
                before,
                after,
                limit: Some(limit),
            } if crosses_warning(before, after, limit) => {
                metrics::counter!("berth_storage_quota_warnings_total").increment(1);
                tracing::warn!(
                    account = owner,
                    used = after,
                    limit,
                    "account {owner} is at {} of its {} storage quota (over 90 %); pushes that would go over it will be refused",
                    ByteSize(after),
                    ByteSize(limit)
                );
                Ok(())
            }
            Linked::Done { .. } => Ok(()),
        }
    }
}

/// Whether usage going from `before` to `after` crossed 90 % of `limit` upwards.
fn crosses_warning(before: u64, after: u64, limit: u64) -> bool {
    let mark = u128::from(limit) * u128::from(WARN_TENTHS);
    u128::from(before) * 10 < mark && u128::from(after) * 10 >= mark
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warning_fires_on_the_crossing_only() {
        assert!(crosses_warning(0, 90, 100));
        assert!(crosses_warning(89, 95, 100));
        assert!(
            !crosses_warning(90, 95, 100),
            "already past: no second warning"
        );
        assert!(!crosses_warning(10, 89, 100));
        assert!(!crosses_warning(95, 95, 100));
        assert!(crosses_warning(0, u64::MAX, u64::MAX), "no overflow");
    }

    #[test]
    fn a_refusal_gives_usage_and_limit_in_human_units() {
        let room = Room {
            owner: "acme".into(),
            used: 10_522_669_875,
            reserved: 0,
            limit: 10 << 30,
        };
        let RegistryError::Denied(message) =
            room.refuse("upload_put", Need::Exactly(1_288_490_189))
        else {
            panic!("not DENIED");
        };
        assert!(
            message.starts_with(
                "account acme is at 9.8 GiB of its 10.0 GiB storage quota; this upload needs 1.2 GiB more"
            ),
            "{message}"
        );
    }
}
