//! The storage-policy use cases: reading and setting the policies of an account or a package,
//! the retention dry run, and the retention pass `berth serve` runs on a schedule.
//!
//! Who may: a package's policies are read by whoever may pull it and set by its admins; an
//! account's by the user themselves or the organization's owners. The pass deletes through
//! [`Registry::delete_version`] (restorable for 30 days, the same refusals as the API) and
//! queues the `deleted` webhooks like any deletion.

use crate::access::store::Account;
use crate::access::{Action, ManageError, ManageResult, Principal, Readable};
use crate::digest::Digest;
use crate::hooks::{PackageAction, PackageEvent};
use crate::ids::VersionId;
use crate::name::RepoName;
use crate::policies::{
    DeleteReason, PackagePolicies, Policies, PolicyScope, Retention, Verdict, VersionFacts,
    deletion_order, plan,
};
use crate::ports::{Millis, now_millis};

use super::{Packages, registry_error};

/// What a retention policy decides for a package's versions.
#[derive(Debug, Clone)]
pub struct RetentionPlan {
    /// The package.
    pub name: RepoName,
    /// The retention policy evaluated (`None`: no policy applies; everything is kept).
    pub retention: Option<Retention>,
    /// Each live version and its verdict.
    pub versions: Vec<(VersionFacts, Verdict)>,
}

/// A version a retention pass deleted.
#[derive(Debug, Clone)]
pub struct RetainedDeletion {
    /// Its id.
    pub id: VersionId,
    /// Its digest.
    pub digest: Digest,
    /// Why.
    pub reason: DeleteReason,
}

/// What a retention pass did to one package.
#[derive(Debug, Clone)]
pub struct RetentionReport {
    /// The package.
    pub name: RepoName,
    /// What it deleted.
    pub deleted: Vec<RetainedDeletion>,
    /// What it meant to delete but the store refused, and why (e.g. a tag pushed meanwhile).
    pub refused: Vec<(VersionId, String)>,
}

impl Packages {
    /// The policies set on account `login` (the user themselves, or the organization's owners).
    pub async fn account_policies_as(
        &self,
        principal: &Principal,
        login: &str,
    ) -> ManageResult<(Account, Policies)> {
        let account = self
            .access
            .account_administered_by(principal, login)
            .await?;
        let policies = self
            .registry
            .meta()
            .policies(PolicyScope::Account(account.id))
            .await?;
        Ok((account, policies.unwrap_or_default()))
    }

    /// Replaces the policies of account `login`; empty policies remove them.
    pub async fn set_account_policies_as(
        &self,
        principal: &Principal,
        login: &str,
        policies: &Policies,
    ) -> ManageResult<(Account, Policies)> {
        let account = self
            .access
            .account_administered_by(principal, login)
            .await?;
        self.set_policies(PolicyScope::Account(account.id), policies)
            .await?;
        tracing::info!(account = %account.login, ?policies, "account storage policies set");
        Ok((account, policies.clone()))
    }

    /// The policies applying to package `name` (its own and its account's), for whoever may
    /// pull it.
    pub async fn package_policies_as(
        &self,
        principal: &Principal,
        name: &RepoName,
    ) -> ManageResult<PackagePolicies> {
        self.checked(principal, name, Action::Pull).await?;
        Ok(self.registry.meta().package_policies(name).await?)
    }

    /// Replaces the policies of package `name` (its admins); empty policies remove them.
    pub async fn set_package_policies_as(
        &self,
        principal: &Principal,
        name: &RepoName,
        policies: &Policies,
    ) -> ManageResult<PackagePolicies> {
        let record = self.checked(principal, name, Action::Manage).await?;
        if record.deleted_at.is_some() {
            return Err(ManageError::Conflict(format!(
                "package `{name}` is deleted; restore it before changing its policies"
            )));
        }
        self.set_policies(PolicyScope::Package(name), policies)
            .await?;
        tracing::info!(package = %name, ?policies, "package storage policies set");
        Ok(self.registry.meta().package_policies(name).await?)
    }

    /// Sets the policies of `scope` with no caller to check (`berth admin`); empty policies
    /// remove them.
    pub async fn set_policies(
        &self,
        scope: PolicyScope<'_>,
        policies: &Policies,
    ) -> ManageResult<()> {
        let stored = (!policies.is_empty()).then_some(policies);
        self.registry
            .meta()
            .set_policies(scope, stored, now_millis())
            .await
            .map_err(|e| match e.kind() {
                crate::StoreErrorKind::NotFound => ManageError::NotFound(e.to_string()),
                _ => ManageError::Store(e),
            })
    }

    /// What retention would delete from package `name` now, and why (its admins). With
    /// `proposed`, as if the package's own policies were those.
    pub async fn retention_dry_run_as(
        &self,
        principal: &Principal,
        name: &RepoName,
        proposed: Option<Policies>,
    ) -> ManageResult<RetentionPlan> {
        self.checked(principal, name, Action::Manage).await?;
        self.retention_plan(name, proposed, now_millis()).await
    }

    /// What retention decides for package `name` at `now` (with `proposed` standing in for
    /// the package's own policies).
    pub async fn retention_plan(
        &self,
        name: &RepoName,
        proposed: Option<Policies>,
        now: Millis,
    ) -> ManageResult<RetentionPlan> {
        let mut policies = self.registry.meta().package_policies(name).await?;
        if let Some(proposed) = proposed {
            policies.own = Some(proposed);
        }
        self.plan_under(name, &policies, now).await
    }

    /// What retention would delete now from every live package of account `login`, and why
    /// (the user, or the organization's owners). With `proposed`, as if those were the
    /// account's policies (a package's own retention still overrides them).
    pub async fn account_retention_dry_run_as(
        &self,
        principal: &Principal,
        login: &str,
        proposed: Option<Policies>,
    ) -> ManageResult<(Account, Vec<RetentionPlan>)> {
        let account = self
            .access
            .account_administered_by(principal, login)
            .await?;
        let now = now_millis();
        let mut plans = Vec::new();
        let mut offset = 0;
        loop {
            let (_, page) = self
                .access
                .store()
                .list_packages(
                    account.id,
                    &Readable::Everything,
                    &Default::default(),
                    offset,
                    100,
                )
                .await?;
            if page.is_empty() {
                break;
            }
            offset += page.len() as u64;
            for record in page.into_iter().filter(|r| r.deleted_at.is_none()) {
                let mut policies = self.registry.meta().package_policies(&record.name).await?;
                if let Some(proposed) = &proposed {
                    policies.account = Some(proposed.clone());
                }
                plans.push(self.plan_under(&record.name, &policies, now).await?);
            }
        }
        Ok((account, plans))
    }

    async fn plan_under(
        &self,
        name: &RepoName,
        policies: &PackagePolicies,
        now: Millis,
    ) -> ManageResult<RetentionPlan> {
        let retention = policies.retention().cloned();
        let facts = self.registry.meta().retention_facts(name).await?;
        let verdicts = match &retention {
            Some(retention) => plan(policies, retention, &facts, now),
            None => vec![Verdict::Keep(crate::policies::KeepReason::NoRule); facts.len()],
        };
        Ok(RetentionPlan {
            name: name.clone(),
            retention,
            versions: facts.into_iter().zip(verdicts).collect(),
        })
    }

    /// One retention pass over every package a policy applies to: deletes what each plan
    /// says (restorable for 30 days), queues the `deleted` webhooks (sent as the package's
    /// owner), and logs each deletion with its reason. `base`: the URL clients reach Berth at.
    pub async fn run_retention(
        &self,
        now: Millis,
        base: &str,
    ) -> ManageResult<Vec<RetentionReport>> {
        let mut reports = Vec::new();
        for name in self.registry.meta().retained_packages().await? {
            match self.retain(&name, now, base).await {
                Ok(report) => reports.push(report),
                Err(err) => {
                    tracing::warn!(package = %name, error = %err, "retention pass failed for package");
                }
            }
        }
        Ok(reports)
    }

    /// One retention pass over package `name` alone (`berth admin retention --package`).
    pub async fn run_retention_of(
        &self,
        name: &RepoName,
        now: Millis,
        base: &str,
    ) -> ManageResult<Vec<RetentionReport>> {
        Ok(vec![self.retain(name, now, base).await?])
    }

    async fn retain(
        &self,
        name: &RepoName,
        now: Millis,
        base: &str,
    ) -> ManageResult<RetentionReport> {
        let plan = self.retention_plan(name, None, now).await?;
        let (facts, verdicts): (Vec<VersionFacts>, Vec<Verdict>) =
            plan.versions.into_iter().unzip();
        let mut report = RetentionReport {
            name: name.clone(),
            deleted: Vec::new(),
            refused: Vec::new(),
        };
        for i in deletion_order(&facts, &verdicts) {
            let Verdict::Delete(reason) = &verdicts[i] else {
                continue;
            };
            let version = &facts[i];
            match self.registry.delete_version(name, version.id).await {
                Ok(deleted) => {
                    tracing::info!(
                        package = %name, version = %version.id, digest = %version.digest,
                        rule = reason.rule(), reason = %reason.describe(),
                        "retention deleted a version"
                    );
                    self.hooks
                        .package_event(PackageEvent {
                            action: PackageAction::Deleted,
                            name: name.clone(),
                            digest: deleted.version.digest,
                            tag: None,
                            manifest: deleted.manifest,
                            labels: deleted.version.labels,
                            sender: Principal::Anonymous,
                            base: base.to_owned(),
                            version_id: Some(deleted.version.id),
                        })
                        .await;
                    report.deleted.push(RetainedDeletion {
                        id: version.id,
                        digest: version.digest.clone(),
                        reason: reason.clone(),
                    });
                }
                Err(err) => {
                    let why = registry_error(err).to_string();
                    tracing::warn!(
                        package = %name, version = %version.id, error = %why,
                        "retention left a version it meant to delete"
                    );
                    report.refused.push((version.id, why));
                }
            }
        }
        Ok(report)
    }
}
