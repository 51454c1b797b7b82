//! The access service: resolves presented secrets into principals and enforces [`decide`]
//! on registry requests, creating a package on its first authorized push.
//!
//! Called by the HTTP layer with parsed values; calls the [`AccessStore`] port only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::cache::AccessCache;
use super::decide::{Decision, decide, sees};
use super::forge::Forge;
use super::model::{
    AccountId, Action, CredentialId, Grant, Principal, RepoId, Scopes, Target, Visibility,
};
use super::store::{AccessStore, NewCredential, Resolved};
use super::token::{Secret, TokenKind, hash_secret, recognize};
use crate::error::{RegistryError, Result};
use crate::name::RepoName;
use crate::ports::{Millis, StoreResult};
use crate::registry::now_millis;

/// What a registry request presented, as the HTTP layer parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presented {
    /// No `Authorization` header.
    Nothing,
    /// A secret (from Basic `user:secret`, or a Bearer token that is a raw or base64 secret).
    Secret(String),
    /// The credential behind a registry token Berth signed (`None`: an anonymous one).
    RegistryToken(Option<CredentialId>),
}

/// How long the tokens Berth issues itself live, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenLifetimes {
    /// App installation tokens (GitHub: one hour).
    pub app: Millis,
    /// The longest a job token may live (and its default).
    pub job: Millis,
}

impl Default for TokenLifetimes {
    fn default() -> Self {
        TokenLifetimes {
            app: 3_600_000,
            job: 3_600_000,
        }
    }
}

/// Resolves principals and checks permissions.
#[derive(Clone)]
pub struct Access {
    pub(super) store: Arc<dyn AccessStore>,
    cache: Arc<AccessCache>,
    pub(super) forge: Arc<Forge>,
    uses: Arc<Mutex<HashMap<CredentialId, Millis>>>,
    lifetimes: TokenLifetimes,
}

impl Access {
    /// The service over `store`, linking packages to repositories of GitHub.
    pub fn new(store: Arc<dyn AccessStore>) -> Self {
        Access {
            store,
            cache: Arc::new(AccessCache::new(Duration::ZERO, None)),
            forge: Arc::new(Forge::github()),
            uses: Arc::default(),
            lifetimes: TokenLifetimes::default(),
        }
    }

    /// The same service, remembering credential and target reads in `cache`.
    pub fn with_cache(mut self, cache: Arc<AccessCache>) -> Self {
        self.cache = cache;
        self
    }

    /// The service with other token lifetimes.
    pub fn with_lifetimes(mut self, lifetimes: TokenLifetimes) -> Self {
        self.lifetimes = lifetimes;
        self
    }

    /// How long issued tokens live.
    pub fn lifetimes(&self) -> TokenLifetimes {
        self.lifetimes
    }

    /// The same service, linking packages to repositories of `forge` instead (the source
    /// URLs of pushed images are compared with it; see [`Access::link_source`]).
    pub fn with_forge(mut self, forge: Forge) -> Self {
        self.forge = Arc::new(forge);
        self
    }

    /// The forge whose repositories packages link to.
    pub fn forge(&self) -> &Forge {
        &self.forge
    }

    /// The store. Reads only: a write goes through [`Access::changed`], so the cache forgets
    /// what it outdates.
    pub fn store(&self) -> &Arc<dyn AccessStore> {
        &self.store
    }

    /// Passes on the outcome of an access write made through [`Access::store`], after making
    /// the cache forget every read from before it (the next request sees the change).
    pub fn changed<T>(&self, done: StoreResult<T>) -> StoreResult<T> {
        self.cache.forget();
        done
    }

    /// The [`Target`] of package `name` for `user`, through the cache.
    pub async fn target(&self, name: &RepoName, user: Option<AccountId>) -> StoreResult<Target> {
        self.cache.target(&*self.store, name, user).await
    }

    /// The principal behind what a request presented. A password or anything that is not a
    /// live Berth token is refused with a message saying what to use instead.
    pub async fn principal(&self, presented: &Presented) -> Result<Principal> {
        let now = now_millis();
        let resolved = match presented {
            Presented::Nothing | Presented::RegistryToken(None) => {
                return Ok(Principal::Anonymous);
            }
            Presented::RegistryToken(Some(id)) => {
                self.cache
                    .resolve_credential(&*self.store, *id, now)
                    .await?
            }
            Presented::Secret(secret) => {
                match recognize(secret) {
                    Some(TokenKind::Session) => {
                        return Err(RegistryError::Unauthorized(
                            "that is a web session's cookie, not a token: create a personal access token".into(),
                        ));
                    }
                    None => {
                        return Err(RegistryError::Unauthorized(
                            "Berth accepts tokens only, never passwords: create a personal access token (scope read:packages to pull, write:packages to push) and use it as the password".into(),
                        ));
                    }
                    Some(_) => {}
                }
                self.cache
                    .resolve_secret(&*self.store, &hash_secret(secret), now)
                    .await?
            }
        };
        match resolved {
            Resolved::Valid(principal) => {
                if let Principal::Token(credential) = &principal {
                    self.record_use(credential.id, now);
                }
                Ok(principal)
            }
            Resolved::Expired(at) => Err(RegistryError::Unauthorized(format!(
                "the token expired {}; create a new one",
                ago(now - at)
            ))),
            Resolved::Revoked => Err(RegistryError::Unauthorized(
                "the token was revoked; create a new one".into(),
            )),
            Resolved::Unknown => Err(RegistryError::Unauthorized(
                "the token is not valid on this registry (mistyped, or deleted)".into(),
            )),
        }
    }

    /// Checks `principal` may do `action` on `name`, creating the package when this is its
    /// first push. Refusals: `Unauthorized` (anonymous), `NameUnknown` (may not know it
    /// exists), `Denied` (sees it, may not act).
    pub async fn authorize(
        &self,
        principal: &Principal,
        name: &RepoName,
        action: Action,
    ) -> Result<()> {
        let target = self.target(name, principal.user()).await?;
        match decide(principal, &target, action) {
            Decision::Allow => Ok(()),
            Decision::Create { visibility, link } => {
                self.create_package_for(principal, &target, name, visibility, link)
                    .await?;
                Ok(())
            }
            Decision::Unauthenticated => Err(RegistryError::Unauthorized(format!(
                "authentication required to {} `{name}`: log in with a token",
                action.verb()
            ))),
            Decision::NotFound => Err(RegistryError::NameUnknown(name.to_string())),
            Decision::Denied(why) => Err(RegistryError::Denied(why)),
        }
    }

    /// Creates package `name` under `target`'s owner, as [`decide`] allowed `principal` to;
    /// as on GHCR, whoever creates a package administers it.
    pub(super) async fn create_package_for(
        &self,
        principal: &Principal,
        target: &Target,
        name: &RepoName,
        visibility: Visibility,
        link: Option<RepoId>,
    ) -> StoreResult<()> {
        let owner = target
            .owner
            .as_ref()
            .expect("decide creates only under an existing owner");
        self.changed(
            self.store
                .create_package(
                    name,
                    owner.id,
                    visibility,
                    link,
                    principal.user(),
                    now_millis(),
                )
                .await,
        )?;
        Ok(())
    }

    /// Whether `principal` may do `action` on `name`, without side effects.
    pub async fn permits(
        &self,
        principal: &Principal,
        name: &RepoName,
        action: Action,
    ) -> StoreResult<bool> {
        Ok(!self.allowed(principal, name, &[action]).await?.is_empty())
    }

    /// Which of `actions` `principal` may do on `name` (one store read), without side effects.
    pub async fn allowed(
        &self,
        principal: &Principal,
        name: &RepoName,
        actions: &[Action],
    ) -> StoreResult<Vec<Action>> {
        let target = self.target(name, principal.user()).await?;
        Ok(permitted(principal, &target, actions))
    }

    /// Which of `actions` a registry token for `name` grants (`GET /token`): what
    /// [`Access::allowed`] answers, except that a package the principal may not see is
    /// answered as the free name it looks like to them. Otherwise a member of the owning
    /// organization, who may create packages there, is granted pull and push on a free name
    /// and nothing on a hidden package, and learns which names are taken. The grant opens
    /// nothing: every request made with the token is still decided on its own, and a hidden
    /// package answers 404 there.
    pub async fn grantable(
        &self,
        principal: &Principal,
        name: &RepoName,
        actions: &[Action],
    ) -> StoreResult<Vec<Action>> {
        let mut target = self.target(name, principal.user()).await?;
        if target.package.is_some() && !sees(principal, &target) {
            target = target.as_missing();
        }
        Ok(permitted(principal, &target, actions))
    }

    /// Creates a classic personal access token for `user`; the secret is returned once.
    pub async fn create_classic_token(
        &self,
        user: AccountId,
        note: &str,
        scopes: Scopes,
        expires_at: Option<Millis>,
    ) -> StoreResult<(CredentialId, Secret)> {
        let secret = Secret::generate(TokenKind::Classic);
        let id = self.changed(
            self.store
                .create_credential(&NewCredential {
                    kind: TokenKind::Classic,
                    hash: secret.hash(),
                    user: Some(user),
                    note: note.to_owned(),
                    grant: Grant::Classic {
                        scopes,
                        sso_authorized: Vec::new(),
                    },
                    expires_at,
                    created_at: now_millis(),
                })
                .await,
        )?;
        Ok((id, secret))
    }

    /// What a secret's hash resolves to now, through the cache, recording the use of a
    /// valid credential (the web UI's sessions).
    pub(crate) async fn resolve_hash(&self, hash: &[u8]) -> StoreResult<Resolved> {
        let now = now_millis();
        let resolved = self.cache.resolve_secret(&*self.store, hash, now).await?;
        if let Resolved::Valid(Principal::Token(credential)) = &resolved {
            self.record_use(credential.id, now);
        }
        Ok(resolved)
    }

    fn record_use(&self, id: CredentialId, now: Millis) {
        let mut uses = self.uses.lock().unwrap_or_else(|e| e.into_inner());
        uses.insert(id, now);
    }

    /// Writes the last-used times recorded since the previous flush (called periodically
    /// and at shutdown, so a token use never waits on a write).
    pub async fn flush_uses(&self) -> StoreResult<()> {
        let uses: Vec<(CredentialId, Millis)> = {
            let mut uses = self.uses.lock().unwrap_or_else(|e| e.into_inner());
            uses.drain().collect()
        };
        if uses.is_empty() {
            return Ok(());
        }
        self.store.touch_credentials(&uses).await
    }
}

fn ago(millis: Millis) -> String {
    let secs = millis.max(0) / 1000;
    match secs {
        0..=119 => format!("{secs} seconds ago"),
        120..=7199 => format!("{} minutes ago", secs / 60),
        7200..=172_799 => format!("{} hours ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}

/// The `actions` that `decide` allows `principal` on `target` (creating it counts).
fn permitted(principal: &Principal, target: &Target, actions: &[Action]) -> Vec<Action> {
    actions
        .iter()
        .copied()
        .filter(|action| {
            matches!(
                decide(principal, target, *action),
                Decision::Allow | Decision::Create { .. }
            )
        })
        .collect()
}
