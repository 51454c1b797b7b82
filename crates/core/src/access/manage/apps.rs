//! Apps: registering them, installing them on an account, and their installation tokens.

use super::{ManageError, ManageResult, actor, invalid, taken, valid_login};
use crate::access::model::{Grant, Principal, Role};
use crate::access::service::Access;
use crate::access::store::{AppId, AppInstallation, Created, InstallationId, NewCredential};
use crate::access::token::{Secret, TokenKind, hash_secret};
use crate::ports::{Millis, now_millis};

/// An installation token just issued to an app.
#[derive(Debug)]
pub struct InstallationToken {
    /// The secret.
    pub secret: Secret,
    /// When it expires.
    pub expires_at: Millis,
    /// The installation it acts for, narrowed to what the request asked.
    pub installation: AppInstallation,
}

impl Access {
    /// Registers app `slug`, owned by the calling user or an organization they own; the
    /// secret it exchanges for installation tokens is returned once.
    pub async fn create_app_as(
        &self,
        principal: &Principal,
        owner: Option<&str>,
        slug: &str,
    ) -> ManageResult<(AppId, Secret)> {
        let actor = actor(principal)?;
        let owner = match owner {
            None => actor.user,
            Some(login) => self.account_administered_by(principal, login).await?.id,
        };
        if !valid_login(slug) {
            return Err(invalid(
                "Integration",
                "slug",
                "invalid",
                format!("app slug `{slug}` is invalid: use letters, digits and single hyphens"),
            ));
        }
        let secret = Secret::generate(TokenKind::AppSecret);
        match self.changed(
            self.store()
                .create_app(owner, slug, &secret.hash(), now_millis())
                .await,
        )? {
            Created::New(id) => Ok((id, secret)),
            Created::Taken => Err(taken("Integration", "slug", slug)),
        }
    }

    /// Installs app `slug` on `account` (the user, or an organization they own) with
    /// selected repositories (`None`: all) and a packages permission.
    pub async fn install_app_as(
        &self,
        principal: &Principal,
        slug: &str,
        account: &str,
        repositories: Option<&[String]>,
        permission: Role,
    ) -> ManageResult<AppInstallation> {
        let account = self.account_administered_by(principal, account).await?;
        let app = self
            .store()
            .app(slug)
            .await?
            .ok_or_else(|| ManageError::NotFound(format!("there is no app named `{slug}`")))?;
        if permission == Role::Admin {
            return Err(invalid(
                "Installation",
                "permissions",
                "invalid",
                "apps get packages: read or write",
            ));
        }
        let repos = match repositories {
            None => None,
            Some(names) => {
                let mut ids = Vec::new();
                for name in names {
                    let short = name.rsplit('/').next().unwrap_or(name);
                    ids.push(self.repo_named(&account.login, short).await?.id);
                }
                Some(ids)
            }
        };
        let id = self.changed(
            self.store()
                .install_app(
                    app.id,
                    account.id,
                    repos.as_deref(),
                    permission,
                    now_millis(),
                )
                .await,
        )?;
        Ok(AppInstallation {
            id,
            app: app.id,
            app_slug: app.slug,
            account: account.id,
            repositories: repos,
            permission,
        })
    }

    /// Exchanges an app's secret for an installation token (GitHub's
    /// `POST /app/installations/{id}/access_tokens`), optionally narrowed to some of the
    /// installation's repositories and a lower permission. It expires after the configured
    /// app token lifetime (one hour by default).
    pub async fn installation_token(
        &self,
        app_secret: &str,
        installation: InstallationId,
        repositories: Option<&[String]>,
        permission: Option<Role>,
    ) -> ManageResult<InstallationToken> {
        let unknown = || {
            ManageError::Unauthenticated(format!(
                "the app secret is not valid for installation {installation}"
            ))
        };
        if crate::access::token::recognize(app_secret) != Some(TokenKind::AppSecret) {
            return Err(unknown());
        }
        let mut found = self
            .store()
            .installation_for_secret(installation, &hash_secret(app_secret))
            .await?
            .ok_or_else(unknown)?;
        if let Some(permission) = permission {
            if permission > found.permission {
                return Err(invalid(
                    "Installation",
                    "permissions",
                    "invalid",
                    "the token cannot have more permission than the installation",
                ));
            }
            found.permission = permission;
        }
        if let Some(names) = repositories {
            let account = self.account_with_id(found.account).await?;
            let mut ids = Vec::new();
            for name in names {
                let short = name.rsplit('/').next().unwrap_or(name);
                let repo = self.repo_named(&account.login, short).await?;
                if found
                    .repositories
                    .as_ref()
                    .is_some_and(|r| !r.contains(&repo.id))
                {
                    return Err(invalid(
                        "Installation",
                        "repositories",
                        "invalid",
                        format!("repository `{short}` is not selected by the installation"),
                    ));
                }
                ids.push(repo.id);
            }
            found.repositories = Some(ids);
        }
        let now = now_millis();
        let expires_at = now + self.lifetimes().app;
        let secret = Secret::generate(TokenKind::App);
        self.changed(
            self.store()
                .create_credential(&NewCredential {
                    kind: TokenKind::App,
                    hash: secret.hash(),
                    user: None,
                    note: found.app_slug.clone(),
                    grant: Grant::App {
                        account: found.account,
                        repositories: found.repositories.clone(),
                        permission: found.permission,
                    },
                    expires_at: Some(expires_at),
                    created_at: now,
                })
                .await,
        )?;
        Ok(InstallationToken {
            secret,
            expires_at,
            installation: found,
        })
    }
}
